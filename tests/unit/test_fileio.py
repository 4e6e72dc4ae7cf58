"""Atomic writes: the whole new text, with its mode, or the old file untouched."""

import stat
from pathlib import Path

import pytest

from osdeploy.fileio import write_atomic


def test_replaces_a_world_readable_file_with_a_private_one(tmp_path: Path) -> None:
    target = tmp_path / "clouds.yaml"
    target.write_text("old")
    target.chmod(0o644)
    write_atomic(target, "new", 0o600)
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_creates_missing_directories_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "inventory" / "hosts.yml"
    write_atomic(target, "all: {}\n", 0o644)
    assert target.read_text() == "all: {}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["hosts.yml"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "passwords.yml"
    target.write_text("old")

    def refuse(self: Path, other: Path) -> Path:
        raise OSError("disk full")

    monkeypatch.setattr(Path, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new", 0o600)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["passwords.yml"]
