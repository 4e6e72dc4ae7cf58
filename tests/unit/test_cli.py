"""The CLI: init, dispatch, option parsing and exit codes.

The side-effect modules (runner, precheck, verify, openrc, lab) are replaced by
fakes; these tests never import them.
"""

import contextlib
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import BASE_CONFIG, write_key

import osdeploy
from osdeploy import __version__
from osdeploy.cli import main, parse_host_spec
from osdeploy.errors import InputError, OsdeployError
from osdeploy.runner import DeployOptions


@pytest.fixture
def deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A deployment dir given through $OSDEPLOY_DIR, with a valid config and key."""
    monkeypatch.setenv("OSDEPLOY_DIR", str(tmp_path))
    write_key(tmp_path)
    (tmp_path / "osdeploy.yml").write_text(f"{BASE_CONFIG}services: [rabbitmq, keystone]\n")
    return tmp_path


def _lock(directory: Path) -> contextlib.AbstractContextManager[int]:
    """The fake runner's deployment lock: nothing to hold."""
    return contextlib.nullcontext(7)


def _run_ok(directory: Path, plan: Any, opts: Any) -> int:
    return 0


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Callable[..., types.SimpleNamespace]:
    """Install a fake ``osdeploy.<name>`` module recording calls; returns its namespace."""

    def install(name: str, **functions: Any) -> types.SimpleNamespace:
        calls: list[tuple[str, tuple[Any, ...]]] = []
        module = types.ModuleType(f"osdeploy.{name}")
        for attr, value in functions.items():
            if callable(value) and not isinstance(value, type):

                def record(
                    *args: Any, _attr: str = attr, _value: Any = value, **kwargs: Any
                ) -> Any:
                    calls.append((_attr, args))
                    return _value(*args)

                setattr(module, attr, record)
            else:
                setattr(module, attr, value)
        monkeypatch.setitem(sys.modules, f"osdeploy.{name}", module)
        monkeypatch.setattr(osdeploy, name, module, raising=False)
        return types.SimpleNamespace(module=module, calls=calls)

    return install


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"osdeploy {__version__}"


def test_init_writes_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "new" / "osdeploy.yml"
    assert main(["--dir", str(tmp_path / "new"), "init"]) == 0
    text = target.read_text()
    assert "hosts:" in text and text.startswith("#")
    target.write_text("edited\n")
    assert main(["init", "--dir", str(tmp_path / "new")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert target.read_text() == "edited\n"
    assert main(["init", "--dir", str(tmp_path / "new"), "--force", "--lab"]) == 0
    assert "lab/id_ed25519" in target.read_text()


def test_config_option(deploy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "elsewhere.yml"
    other.write_text((deploy / "osdeploy.yml").read_text())
    assert main(["validate", "-c", str(other)]) == 0
    assert f"{other}: valid" in capsys.readouterr().out


def test_plan_command(deploy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--services", "keystone, mariadb"]) == 0
    out = capsys.readouterr().out
    assert "added: dependency of keystone" in out
    assert out.splitlines()[-2] == "4 services on 1 host; this run deploys 2: mariadb, keystone"
    assert out.splitlines()[-1] == "this run adds: mariadb (new), keystone (new)"


def test_plan_shows_what_a_run_adds_to_a_deployed_cloud(
    deploy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (deploy / "deployed.yml").write_text("mariadb: [ctl1]\nmemcached: [ctl1]\n")
    assert main(["plan"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "this run adds: rabbitmq (new), keystone (new)"
    row = next(line for line in out.splitlines() if " mariadb " in line)
    assert row.endswith("deployed")


def test_plan_unknown_run_service(deploy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--services", "glance"]) == 2
    assert capsys.readouterr().err.startswith("error: --services: glance is not in the plan")


def test_render_command(deploy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render"]) == 0
    assert (deploy / "inventory" / "hosts.yml").is_file()
    assert (deploy / "passwords.yml").is_file()
    assert main(["render"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("no files updated")


# The real options type: a frozen dataclass, pure, safe to use unfaked.
FakeOptions = DeployOptions


def test_deploy_runs_the_steps_in_order(
    deploy: Path, fake: Callable[..., types.SimpleNamespace], capsys: pytest.CaptureFixture[str]
) -> None:
    precheck = fake("precheck", run_precheck=lambda config, plan: 0)
    runner = fake("runner", DeployOptions=FakeOptions, deployment_lock=_lock, run_deploy=_run_ok)
    openrc = fake("openrc", write_openrc=lambda d, config, plan: [d / "admin-openrc.sh"])

    argv = ["deploy", "--services", "keystone", "-l", "ctl1", "-t", "keystone-config"]
    assert main([*argv, "-D", "-e", "a=1", "-e", "b=2", "-vv"]) == 0

    assert [name for name, _ in precheck.calls] == ["run_precheck"]
    assert [name for name, _ in runner.calls] == ["deployment_lock", "run_deploy"]
    assert runner.calls[0][1] == (deploy,)
    (_, (directory, plan, opts)) = runner.calls[1]
    assert directory == deploy
    assert plan.names() == ("mariadb", "rabbitmq", "memcached", "keystone")
    assert opts == FakeOptions(
        services=("keystone",),
        limit="ctl1",
        tags="keystone-config",
        diff=True,
        extra_vars=("a=1", "b=2"),
        verbose=2,
    )
    assert [name for name, _ in openrc.calls] == ["write_openrc"]
    assert "admin-openrc.sh" in capsys.readouterr().out
    assert (deploy / "inventory" / "group_vars" / "all" / "osdeploy.yml").is_file()
    assert "keystone_admin_password" in (deploy / "passwords.yml").read_text()


def test_deploy_stops_when_precheck_fails(
    deploy: Path, fake: Callable[..., types.SimpleNamespace]
) -> None:
    fake("precheck", run_precheck=lambda config, plan: 3)
    runner = fake("runner", DeployOptions=FakeOptions, deployment_lock=_lock, run_deploy=_run_ok)
    assert main(["deploy"]) == 3
    assert [name for name, _ in runner.calls] == ["deployment_lock"]


def test_deploy_check_mode_skips_precheck_and_openrc(
    deploy: Path, fake: Callable[..., types.SimpleNamespace]
) -> None:
    precheck = fake("precheck", run_precheck=lambda config, plan: 1)
    runner = fake("runner", DeployOptions=FakeOptions, deployment_lock=_lock, run_deploy=_run_ok)
    openrc = fake("openrc", write_openrc=lambda d, config, plan: [])
    assert main(["deploy", "--skip-precheck", "-C"]) == 0
    assert precheck.calls == [] and openrc.calls == []
    assert runner.calls[1][1][2] == FakeOptions(check=True)


def test_bad_config_stops_deploy_before_anything(
    deploy: Path, fake: Callable[..., types.SimpleNamespace], capsys: pytest.CaptureFixture[str]
) -> None:
    precheck = fake("precheck", run_precheck=lambda config, plan: 0)
    (deploy / "osdeploy.yml").write_text(f"{BASE_CONFIG}services: [keystne]\n")
    assert main(["deploy"]) == 2
    assert precheck.calls == []
    assert not (deploy / "inventory").exists() and not (deploy / "passwords.yml").exists()
    assert "did you mean keystone?" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "function", "code"),
    [(["precheck"], "run_precheck", 4), (["verify"], "run_verify", 1), (["openrc"], None, 0)],
)
def test_simple_commands(
    deploy: Path,
    fake: Callable[..., types.SimpleNamespace],
    command: list[str],
    function: str | None,
    code: int,
) -> None:
    precheck = fake("precheck", run_precheck=lambda config, plan: 4)
    verify = fake("verify", run_verify=lambda d, config, plan: 1)
    openrc = fake("openrc", write_openrc=lambda d, config, plan: [])
    assert main(command) == code
    calls = precheck.calls + verify.calls + openrc.calls
    assert [name for name, _ in calls] == [function or "write_openrc"]


def test_lab_commands(
    tmp_path: Path, fake: Callable[..., types.SimpleNamespace], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OSDEPLOY_DIR", raising=False)
    lab = fake(
        "lab",
        cmd_up=lambda *args: 0,
        cmd_down=lambda *args: 0,
        cmd_status=lambda *args: 5,
        cmd_ssh=lambda *args: 7,
        cmd_image=lambda *args: 0,
    )
    assert main(["lab", "up", "--hosts", "ctl1:control,network", "cmp1:compute"]) == 0
    assert main(["lab", "up", "--add", "cmp2:compute", "--services", "keystone"]) == 0
    assert main(["lab", "up"]) == 0
    assert main(["lab", "down"]) == 0
    assert main(["lab", "status"]) == 5
    assert main(["lab", "ssh", "ctl1", "--", "ls", "-l"]) == 7
    assert main(["lab", "image", "--force"]) == 0
    assert lab.calls == [
        (
            "cmd_up",
            (tmp_path, [("ctl1", ("control", "network")), ("cmp1", ("compute",))], False, None),
        ),
        ("cmd_up", (tmp_path, [("cmp2", ("compute",))], True, ["keystone"])),
        ("cmd_up", (tmp_path, [], False, None)),
        ("cmd_down", (tmp_path,)),
        ("cmd_status", (tmp_path,)),
        ("cmd_ssh", (tmp_path, "ctl1", ["ls", "-l"])),
        ("cmd_image", (True,)),
    ]


def test_lab_without_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab"]) == 2
    assert "name a command" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ctl1", "write NAME:ROLE"),
        ("ctl1:", "write NAME:ROLE"),
        ("Ctl_1:control", "invalid host name 'Ctl_1'"),
        ("ctl1:contrl", "unknown host role contrl; did you mean control?"),
    ],
)
def test_bad_host_spec(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_host_spec(spec, "--hosts")


def test_host_spec_roles_are_normalised() -> None:
    assert parse_host_spec("aio1:storage,control", "--hosts") == ("aio1", ("control", "storage"))


def test_duplicate_lab_host(
    tmp_path: Path, fake: Callable[..., types.SimpleNamespace], capsys: pytest.CaptureFixture[str]
) -> None:
    fake("lab", cmd_up=lambda *args: 0)
    assert main(["--dir", str(tmp_path), "lab", "up", "--hosts", "a:control", "a:compute"]) == 2
    assert capsys.readouterr().err == "error: --hosts: host a is given twice; give each host once\n"


def test_errors_and_interrupts_map_to_exit_codes(
    deploy: Path, fake: Callable[..., types.SimpleNamespace], capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(*args: Any) -> int:
        raise OsdeployError("ctl1: unreachable; check the address")

    def interrupt(*args: Any) -> int:
        raise KeyboardInterrupt

    fake("verify", run_verify=fail)
    assert main(["verify"]) == 1
    assert capsys.readouterr().err == "error: ctl1: unreachable; check the address\n"
    fake("verify", run_verify=interrupt)
    assert main(["verify"]) == 130


def test_usage_without_gnocchi_says_how_to_get_it(
    deploy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["usage", "--project", "demo", "--since", "1h"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: gnocchi is not in this deployment's plan: add ceilometer to services in "
        "osdeploy.yml and deploy\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "yesterday"], "--since yesterday: write a duration before now"),
        (["--since", "1h", "--until", "2h"], "--since 1h is not before --until 2h"),
    ],
)
def test_usage_bad_window(
    deploy: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["usage", "--project", "demo", *argv]) == 2
    assert message in capsys.readouterr().err
