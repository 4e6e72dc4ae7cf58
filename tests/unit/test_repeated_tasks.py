"""tools/repeated_tasks.py: task logic that two roles both carry."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from osdeploy import PROJECT_ROOT

FIXTURES = Path(__file__).parent / "fixtures" / "repeated_tasks"


def _load() -> ModuleType:
    path = PROJECT_ROOT / "tools" / "repeated_tasks.py"
    spec = importlib.util.spec_from_file_location("repeated_tasks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: dataclasses look their module up while it loads.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


MODULE = _load()


def test_a_copy_with_the_role_renamed_is_found(capsys: pytest.CaptureFixture[str]) -> None:
    roles = FIXTURES / "repeated" / "roles"
    # One report for the whole run, from the task name to delegate_to (8 lines
    # once blank and comment lines are left out), with file:line of both.
    [repeat] = MODULE.find_repeats(roles)
    assert (repeat.first.path, repeat.first.number) == (roles / "glance/tasks/bootstrap.yml", 3)
    assert (repeat.second.path, repeat.second.number) == (roles / "placement/tasks/service.yml", 8)
    assert repeat.length == 8
    assert repeat.first.text == "- name: Check whether the ROLE schema needs a migration"

    assert MODULE.main([str(roles)]) == 1
    [line] = capsys.readouterr().out.splitlines()
    assert "glance/tasks/bootstrap.yml:3: " in line
    assert "placement/tasks/service.yml:8: 8 lines repeated" in line


def test_includes_and_short_runs_are_not_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert MODULE.main([str(FIXTURES / "distinct" / "roles")]) == 0
    assert capsys.readouterr().out == ""


def test_a_lower_threshold_finds_the_short_run() -> None:
    repeats = MODULE.find_repeats(FIXTURES / "distinct" / "roles", min_lines=5)
    assert [(r.first.number, r.second.number, r.length) for r in repeats] == [(22, 20, 5)]


def test_the_role_name_is_normalized_as_a_name_part_only() -> None:
    assert MODULE.normalize('  argv: ["{{ _nova_user }}", nova-manage]', "nova") == (
        'argv: ["{{ _ROLE_user }}", ROLE-manage]'
    )
    assert MODULE.normalize("- name: Start Nova and novalike", "nova") == (
        "- name: Start ROLE and novalike"
    )
