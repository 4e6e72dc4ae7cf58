"""Shared pytest-testinfra fixtures of the roles' molecule scenarios (verify step).

pytest finds this file because it lies between the rootdir (the repository,
pyproject.toml) and every roles/<role>/molecule/<scenario>/tests/ directory.
"""

import json

import pytest


@pytest.fixture(scope="module")
def address(host):
    """osdeploy_address of molecule's inventory: the address on lo outside 127/8
    (.config/molecule/prepare.yml puts it there)."""
    addresses = host.interface("lo").addresses
    return next(a for a in addresses if ":" not in a and not a.startswith("127."))


@pytest.fixture(scope="module")
def curl(host):
    """call(*args): HTTP status code and body of a curl call run on the host
    (args: curl options and the URL, shell-quoted by the caller)."""

    def call(*args):
        cmd = host.run("curl -sS -o /tmp/molecule-body -w '%{http_code}' " + " ".join(args))
        assert cmd.rc == 0, cmd.stderr
        return int(cmd.stdout), host.file("/tmp/molecule-body").content_string

    return call


@pytest.fixture(scope="module")
def openstack_admin(host):
    """call(*args, json_output=True): the openstack CLI on the host as Keystone's
    admin (the admin cloud the keystone role writes to /etc/openstack/clouds.yaml,
    internal endpoints); JSON output parsed unless json_output is false."""

    def call(*args, json_output=True):
        fmt = " -f json" if json_output else ""
        cmd = host.run(f"openstack --os-cloud osdeploy-admin {' '.join(args)}{fmt}")
        assert cmd.rc == 0, cmd.stderr
        return json.loads(cmd.stdout) if json_output else cmd.stdout

    return call


@pytest.fixture(scope="module")
def listens_only_on_address(host, address):
    """check(port): the port listens on the host's address, not on all addresses or loopback."""

    def check(port):
        assert host.socket(f"tcp://{address}:{port}").is_listening
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
        assert not host.socket(f"tcp://127.0.0.1:{port}").is_listening

    return check


@pytest.fixture(scope="module")
def enabled_and_running(host):
    """check(*units): each systemd unit is enabled and running."""

    def check(*units):
        for unit in units:
            service = host.service(unit)
            assert service.is_enabled, f"{unit} is not enabled"
            assert service.is_running, f"{unit} is not running"

    return check


@pytest.fixture(scope="module")
def service_config_lines(host):
    """lines(path, group): the INI file is root:<group> 0640 (it holds
    passwords: never world-readable); returns its lines, stripped."""

    def lines(path, group):
        conf = host.file(path)
        assert (conf.user, conf.group, conf.mode) == ("root", group, 0o640), path
        return [line.strip() for line in conf.content_string.splitlines()]

    return lines


@pytest.fixture(scope="module")
def schema_at_head(host):
    """check(manage, migrations, version): `<manage> <version>` (default
    "db version") names the newest alembic head of the package's migrations
    directory."""

    def check(manage, migrations, version="db version"):
        version = host.check_output(f"{manage} {version}")
        heads = host.check_output(
            "python3 -c 'from alembic.script import ScriptDirectory as S; "
            f'print(*S("{migrations}").get_heads())\''
        )
        assert version.strip().splitlines()[-1] == heads.strip()

    return check
