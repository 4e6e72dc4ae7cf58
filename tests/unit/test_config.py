"""Config validation: every bad fixture gives exit 2 and one precise line; examples are valid."""

import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import BASE_CONFIG, FIXTURES, KEY_NAME, undeployable, write_key

from osdeploy import PROJECT_ROOT, cli
from osdeploy.catalog import Catalog, load_catalog
from osdeploy.cli import main
from osdeploy.config import Config, load_config
from osdeploy.errors import ConfigError, InputError

BAD = sorted((FIXTURES / "bad").glob("*.yml"))
EXAMPLES = sorted((PROJECT_ROOT / "inventory" / "examples").glob("*.yml"))


def expected(fixture: Path) -> str:
    """Each bad fixture says on its first line what the error line must contain."""
    first = fixture.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{fixture.name} lacks an '# expect:' line"
    return first.removeprefix("# expect: ")


def no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError("validate must not touch a host")


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd = tmp_path, no $OSDEPLOY_DIR, and no sockets or subprocesses allowed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OSDEPLOY_DIR", raising=False)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(subprocess, "Popen", no_network)
    return tmp_path


def test_there_are_enough_bad_fixtures() -> None:
    assert len(BAD) >= 12


@pytest.mark.parametrize("fixture", BAD, ids=[path.stem for path in BAD])
def test_bad_config_gives_one_line_and_exit_2(
    fixture: Path,
    isolated: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if fixture.stem == "not-deployable":
        # Every service of the real catalog is deployable: the fixture's is made not.
        monkeypatch.setattr(cli, "load_catalog", lambda: undeployable(load_catalog(), "ceilometer"))
    shutil.copy(fixture, isolated / "osdeploy.yml")
    write_key(isolated)
    before = sorted(isolated.rglob("*"))

    code = main(["validate"])

    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("osdeploy.yml")
    assert expected(fixture) in lines[0]
    assert sorted(isolated.rglob("*")) == before  # nothing written


def test_good_fixture_is_valid(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(FIXTURES / "good.yml", isolated / "osdeploy.yml")
    write_key(isolated)
    assert main(["validate"]) == 0
    assert "valid" in capsys.readouterr().out
    assert sorted(p.name for p in isolated.iterdir()) == ["id_test", "osdeploy.yml"]


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_examples_are_valid(
    example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, catalog: Catalog
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_key(tmp_path / "home" / ".ssh", "id_ed25519")
    write_key(tmp_path / "lab", "id_ed25519")
    path = tmp_path / "osdeploy.yml"
    shutil.copy(example, path)
    config = load_config(path, catalog)
    assert config.control_hosts
    assert config.ssh.key.is_absolute() and config.ssh.key.is_file()


def test_examples_cover_aio_and_three_nodes(catalog: Catalog) -> None:
    aio = load_config(PROJECT_ROOT / "inventory/examples/aio.yml", catalog, check_files=False)
    assert [h.roles for h in aio.hosts] == [("control", "network", "compute", "storage")]
    three = load_config(
        PROJECT_ROOT / "inventory/examples/three-node.yml", catalog, check_files=False
    )
    assert [(h.name, h.roles) for h in three.hosts] == [
        ("ctl1", ("control", "network")),
        ("cmp1", ("compute",)),
        ("cmp2", ("compute",)),
    ]


def test_defaults(make_config: Callable[..., Config], tmp_path: Path) -> None:
    config = make_config()
    assert config.ssh.port == 22
    assert config.ssh.host_key_checking is True
    assert config.ssh.key == tmp_path / KEY_NAME
    assert config.internal_address == "10.0.0.5"  # first control host
    assert config.public_address == "10.0.0.5"
    assert config.apt_mirror == "http://deb.debian.org/debian"
    assert config.apt_proxy is None
    assert config.overrides == {}
    assert config.services == ("keystone",)
    assert config.host("cmp1").roles == ("compute",)
    assert [h.name for h in config.control_hosts] == ["ctl1"]


def test_explicit_settings(make_config: Callable[..., Config]) -> None:
    config = make_config(
        "[rabbitmq, keystone]",
        "network: {internal_address: 10.0.0.100, public_address: 203.0.113.5}\n"
        "apt: {proxy: 'http://cache:3142'}\n"
        "overrides: {keystone_log_debug: true}\n",
    )
    assert config.internal_address == "10.0.0.100"
    assert config.public_address == "203.0.113.5"
    assert config.apt_proxy == "http://cache:3142"
    assert config.overrides == {"keystone_log_debug": True}


def test_unknown_host_names_the_known_ones(make_config: Callable[..., Config]) -> None:
    with pytest.raises(InputError, match="did you mean cmp1"):
        make_config().host("cmp2")


def test_all_problems_are_reported_at_once(
    write_config: Callable[[str], Path], catalog: Catalog
) -> None:
    text = (
        "name: Bad_Name\n"
        "ssh: {port: 0}\n"
        "hosts:\n"
        "  - {name: a, address: 10.0.0.1, roles: [control]}\n"
        "  - {name: a, address: 10.0.0.1, roles: [control]}\n"
        "services: [ceilometer, keystone]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(text), undeployable(catalog, "ceilometer"))
    paths = [problem.path for problem in caught.value.problems]
    assert paths == [
        "name",
        "ssh.key",
        "ssh.port",
        "hosts[1].name",
        "hosts[1].address",
        "services[0]",
    ]
    assert [problem.line for problem in caught.value.problems] == [1, 2, 2, 5, 5, 6]


def test_key_readable_by_others(write_config: Callable[[str], Path], catalog: Catalog) -> None:
    path = write_config(f"{BASE_CONFIG}services: [keystone]\n")
    (path.parent / KEY_NAME).chmod(0o644)
    with pytest.raises(ConfigError, match="1 problem") as caught:
        load_config(path, catalog)
    assert "chmod 600" in str(caught.value.problems[0])
    assert load_config(path, catalog, check_files=False).ssh.port == 22


def test_missing_file_says_run_init(tmp_path: Path, catalog: Catalog) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "osdeploy.yml", catalog)
    assert "osdeploy init" in str(caught.value.problems[0])


def test_service_needing_a_missing_host_role(
    write_config: Callable[[str], Path], catalog: Catalog
) -> None:
    text = (
        "ssh: {key: id_test}\n"
        "hosts:\n"
        "  - {name: ctl1, address: 10.0.0.5, roles: [control]}\n"
        "services: [nova]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(text), catalog)
    assert [(p.path, p.line, p.message) for p in caught.value.problems] == [
        ("hosts", 2, "no host has role network or compute, needed by ovn_controller (neutron)"),
        (
            "hosts",
            2,
            "no host has role compute, needed by neutron_ovn_metadata (neutron), "
            "nova_compute (nova)",
        ),
    ]
    assert "add compute to the roles of a host" in caught.value.problems[1].fix


def test_dependency_not_deployable(write_config: Callable[[str], Path], catalog: Catalog) -> None:
    blocked = Catalog(
        tuple(
            replace(s, deployable=s.name != "memcached") if s.name != "glance" else s
            for s in catalog.services
        )
    )
    text = f"{BASE_CONFIG}services: [keystone]\n"
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(text), blocked)
    message = str(caught.value.problems[0])
    assert "keystone needs memcached, not deployable yet in this release" in message
