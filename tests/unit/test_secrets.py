"""passwords.yml: 0600, never overwritten, new names added, sorted."""

import base64
import stat
import struct
import uuid
from pathlib import Path

import pytest
import yaml

from osdeploy.errors import OsdeployError
from osdeploy.secrets import PASSWORD_LENGTH, ensure_passwords, load_passwords


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_created_with_mode_0600(tmp_path: Path) -> None:
    passwords = ensure_passwords(tmp_path, ["b_password", "a_password"])
    path = tmp_path / "passwords.yml"
    assert mode(path) == 0o600
    assert sorted(passwords) == ["a_password", "b_password"]
    assert all(len(v) == PASSWORD_LENGTH and v.isalnum() for v in passwords.values())
    assert passwords["a_password"] != passwords["b_password"]
    assert load_passwords(tmp_path) == passwords
    assert [p.name for p in tmp_path.iterdir()] == ["passwords.yml"]  # no temp file left


def test_existing_values_never_change_and_new_names_are_added(tmp_path: Path) -> None:
    first = ensure_passwords(tmp_path, ["a_password"])
    path = tmp_path / "passwords.yml"
    text = path.read_text()
    assert ensure_passwords(tmp_path, ["a_password"]) == first
    assert path.read_text() == text  # untouched when nothing is missing
    second = ensure_passwords(tmp_path, ["c_password", "b_password"])
    assert second["a_password"] == first["a_password"]
    assert set(second) == {"a_password", "b_password", "c_password"}
    assert mode(path) == 0o600


def test_keys_are_sorted_and_hand_edits_kept(tmp_path: Path) -> None:
    path = tmp_path / "passwords.yml"
    path.write_text("z_password: chosen-by-me\n")
    path.chmod(0o600)
    ensure_passwords(tmp_path, ["m_password", "a_password"])
    data = yaml.safe_load(path.read_text())
    assert list(data) == ["a_password", "m_password", "z_password"]
    assert data["z_password"] == "chosen-by-me"


def test_refuses_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "passwords.yml"
    path.write_text("a_password: x\n")
    path.chmod(0o644)
    with pytest.raises(OsdeployError, match=f"chmod 600 {path}"):
        ensure_passwords(tmp_path, ["a_password"])


def test_rejects_non_string_values(tmp_path: Path) -> None:
    path = tmp_path / "passwords.yml"
    path.write_text("a_password: [1]\n")
    path.chmod(0o600)
    with pytest.raises(OsdeployError, match="string values"):
        load_passwords(tmp_path)


def test_load_without_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(OsdeployError, match="osdeploy deploy"):
        load_passwords(tmp_path)


def test_secrets_take_the_form_their_name_asks_for(tmp_path: Path) -> None:
    names = ["ceph_fsid", "cinder_rbd_secret_uuid", "ceph_admin_key", "glance_keystone_password"]
    values = ensure_passwords(tmp_path, names)
    assert str(uuid.UUID(values["ceph_fsid"])) == values["ceph_fsid"]
    assert str(uuid.UUID(values["cinder_rbd_secret_uuid"])) == values["cinder_rbd_secret_uuid"]
    key = base64.b64decode(values["ceph_admin_key"], validate=True)
    # cephx: type 1 (AES), seconds, nanoseconds, length 16, then the 16 key bytes.
    kind, _seconds, _nanos, length = struct.unpack("<HIIH", key[:12])
    assert (len(values["ceph_admin_key"]), kind, length, len(key)) == (40, 1, 16, 28)
    assert len(values["glance_keystone_password"]) == PASSWORD_LENGTH


def test_an_encryption_key_has_exactly_32_characters(tmp_path: Path) -> None:
    values = ensure_passwords(tmp_path, ["heat_auth_encryption_key"])
    assert len(values["heat_auth_encryption_key"]) == 32
    path = tmp_path / "passwords.yml"
    path.write_text("heat_auth_encryption_key: tooshort\n")
    path.chmod(0o600)
    with pytest.raises(OsdeployError, match="has 8 characters, but must have exactly 32"):
        ensure_passwords(tmp_path, ["heat_auth_encryption_key"])


def test_a_signing_key_is_long_enough_for_django(tmp_path: Path) -> None:
    values = ensure_passwords(tmp_path, ["horizon_secret_key", "keystone_admin_password"])
    assert len(values["horizon_secret_key"]) == 64
    assert len(values["keystone_admin_password"]) == 32
