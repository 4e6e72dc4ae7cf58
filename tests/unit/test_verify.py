"""Verify: registry and catalog agree, check selection, greeting parsers, result lines, runner."""

import json
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from osdeploy import verify
from osdeploy.catalog import load_catalog
from osdeploy.cloud import CloudSettings
from osdeploy.errors import InputError
from osdeploy.verify import core, infra
from osdeploy.verify.compute import _wait
from osdeploy.verify.core import CheckFailed, CheckResult, format_result, format_totals
from osdeploy.verify.identity import catalog_endpoints, identity_problems
from osdeploy.verify.infra import parse_amqp_start, parse_memcached_version, parse_mysql_greeting
from osdeploy.verify.net import is_swift_info, is_version_document, root_url
from osdeploy.verify.run import check_graph, check_names, run_graph

SETTINGS = CloudSettings(auth_url="http://10.89.231.11:5000/v3")


def plan(*names: str, hosts: tuple[str, ...] = ("ctl1",)) -> Any:
    return SimpleNamespace(services=tuple(SimpleNamespace(name=n, hosts=hosts) for n in names))


def test_check_names_follow_the_catalog_in_plan_order() -> None:
    catalog = load_catalog()
    names = check_names(plan("mariadb", "memcached", "keystone"), catalog)
    expected = [*catalog["mariadb"].verify, *catalog["memcached"].verify]
    assert names == expected + list(catalog["keystone"].verify)
    assert all(name in verify.CHECKS for name in names)


def test_a_check_anchored_after_another_runs_right_after_it() -> None:
    catalog = load_catalog()
    names = check_names(plan("ceph", "nova", "cinder"), catalog)
    at = names.index("compute_ssh")
    cinder = list(catalog["cinder"].verify)
    # The volume checks use the compute scenario's servers: after its SSH
    # step, in their own order, before the step that deletes the servers.
    assert names[at + 1 : at + 1 + len(cinder)] == cinder
    assert names[-1] == "compute_lifecycle"
    # Without Nova, plan order.
    assert check_names(plan("ceph", "cinder"), catalog) == ["ceph_health", *cinder]


def test_checks_wait_for_their_service_and_for_what_they_use() -> None:
    catalog = load_catalog()
    services = ("mariadb", "rabbitmq", "ceph", "keystone", "glance", "neutron", "nova")
    the_plan = plan(*services, "cinder", "swift")
    names = check_names(the_plan, catalog)
    graph = check_graph(names, the_plan, catalog)
    # One service's checks one after the other.
    assert graph["keystone_token_demo"] == {"keystone_token_admin"}
    # A service's first check: after the services it depends on and the
    # infrastructure (a broker or cluster still coming up holds it back).
    assert graph["nova_services"] == {
        "mariadb_handshake",
        "rabbitmq_amqp",
        "ceph_health",
        "keystone_endpoints",
        "glance_metadefs",
        "neutron_agents",
    }
    # Swift's and Cinder's first checks do not wait for the compute scenario.
    first = {"mariadb_handshake", "rabbitmq_amqp", "ceph_health", "keystone_endpoints"}
    assert graph["swift_objects"] == graph["cinder_services"] == first
    # needs and before: the volume checks use the scenario's servers and
    # network; the steps that move or remove them wait.
    assert graph["volume_boot"] == {"compute_servers"}
    assert graph["volume_attach_across_hosts"] == {"compute_ssh"}
    assert graph["compute_live_migration"] == {"compute_ssh", "volume_attach_across_hosts"}
    assert graph["compute_lifecycle"] == {"compute_live_migration", "volume_boot"}
    assert graph["volume_cleanup"] == {"volume_snapshot_extend_backup", "volume_boot"}
    # A skipped check is no one's wait.
    skipped = [n for n in names if n != "volume_boot"]
    assert check_graph(skipped, the_plan, catalog)["compute_lifecycle"] == {
        "compute_live_migration"
    }


def test_checks_run_side_by_side_and_report_in_order() -> None:
    started = {name: threading.Event() for name in "abc"}
    ended: list[str] = []

    def run(name: str) -> CheckResult:
        started[name].set()
        if name == "a":
            # c runs meanwhile: it waits for nothing.
            assert started["c"].wait(10), "c did not start beside a"
        if name == "b":
            assert "a" in ended, "b started before a ended"
        ended.append(name)
        return CheckResult(name, True, "", 0.0)

    reported: list[str] = []
    graph: dict[str, set[str]] = {"a": set(), "b": {"a"}, "c": set()}
    results = run_graph(["a", "b", "c"], graph, run, lambda r: reported.append(r.name), lanes=2)
    assert [r.name for r in results] == reported == ["a", "b", "c"]
    circle: Any = {
        "a": SimpleNamespace(needs=("b",), before=()),
        "b": SimpleNamespace(needs=("a",), before=()),
    }
    with pytest.raises(ValueError, match="in a circle: a, b"):
        check_graph(["a", "b"], plan(), {}, circle)


def test_catalog_and_registry_name_the_same_checks() -> None:
    """Each deployable service's checks are registered; each registered check is listed."""
    catalog = load_catalog()
    named = {name for service in catalog.services for name in service.verify}
    deployable = {
        name for service in catalog.services if service.deployable for name in service.verify
    }
    # Services still to come (deployable: false) may list checks not written yet.
    assert deployable <= set(verify.CHECKS), deployable - set(verify.CHECKS)
    assert set(verify.CHECKS) <= named, f"no service lists {set(verify.CHECKS) - named}"


def test_a_check_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="'keystone_catalog' is defined twice"):
        core.check("keystone_catalog")(lambda ctx: "")


def test_result_lines() -> None:
    ok = CheckResult("keystone_token_admin", True, "token issued for admin", 0.2134)
    bad = CheckResult("keystone_catalog", False, "no identity — try x", 1.0)
    width = len("keystone_token_admin")
    assert format_result(ok, width) == "PASS keystone_token_admin  token issued for admin (0.21 s)"
    assert format_result(bad, width) == "FAIL keystone_catalog      no identity — try x (1.00 s)"
    assert format_totals([ok, bad]) == "verify: 1 passed, 1 failed"
    assert format_totals([]) == "verify: 0 passed, 0 failed"


@pytest.mark.parametrize(
    ("status", "body", "ok"),
    [
        (200, b'{"version": {"id": "v3.14", "status": "stable"}}', True),
        (300, b'{"versions": {"values": []}}', True),
        (300, b'{"versions": []}', True),
        (401, b'{"error": {"code": 401}}', False),
        (200, b"<html>hello</html>", False),
        (200, b'{"other": 1}', False),
        (200, b"[1, 2]", False),
    ],
)
def test_version_document(status: int, body: bytes, ok: bool) -> None:
    assert is_version_document(status, body) is ok


@pytest.mark.parametrize(
    ("status", "body", "ok"),
    [
        (200, b'{"swift": {"version": "2.35.1", "max_file_size": 5368709122}, "slo": {}}', True),
        (404, b'{"swift": {"version": "2.35.1"}}', False),
        (200, b'{"swift": "2.35.1"}', False),
        (200, b"<html>Not Found</html>", False),
    ],
)
def test_swift_info(status: int, body: bytes, ok: bool) -> None:
    assert is_swift_info(status, body) is ok


def test_root_url() -> None:
    assert root_url("http://10.0.0.1:8776/v3/abc123") == "http://10.0.0.1:8776/"
    assert root_url("https://[fd00::1]:5000/v3") == "https://[fd00::1]:5000/"


CATALOG = [
    {
        "type": "identity",
        "name": "keystone",
        "endpoints": [
            {"interface": "public", "region_id": "RegionOne", "url": "http://pub:5000/v3"},
            {"interface": "internal", "region": "RegionOne", "url": "http://int:5000/v3"},
            {"interface": "admin", "region_id": "RegionOne", "url": "http://adm:5000/v3"},
        ],
    },
    {
        "type": "image",
        "endpoints": [{"interface": "public", "region_id": "RegionOne", "url": "http://pub:9292"}],
    },
]


def test_catalog_endpoints_public_and_internal() -> None:
    assert catalog_endpoints(CATALOG) == [
        ("identity", "internal", "http://int:5000/v3"),
        ("identity", "public", "http://pub:5000/v3"),
        ("image", "public", "http://pub:9292"),
    ]


def test_identity_problems() -> None:
    assert identity_problems(CATALOG, "RegionOne") == []
    assert identity_problems(CATALOG[1:], "RegionOne") == ["no identity service in the catalog"]
    only_public = [{**CATALOG[0], "endpoints": CATALOG[0]["endpoints"][:1]}]
    assert identity_problems(only_public, "RegionOne") == ["identity has no internal endpoint"]
    assert identity_problems(CATALOG, "RegionTwo") == [
        "identity public endpoint is not in region RegionTwo",
        "identity internal endpoint is not in region RegionTwo",
    ]


def test_memcached_version() -> None:
    assert parse_memcached_version(b"VERSION 1.6.38\r\n") == "1.6.38"
    with pytest.raises(CheckFailed, match="unexpected answer"):
        parse_memcached_version(b"ERROR\r\n")


def _amqp_table(fields: dict[str, str]) -> bytes:
    out = b""
    for key, value in fields.items():
        raw = value.encode()
        out += bytes([len(key)]) + key.encode() + b"S" + struct.pack(">I", len(raw)) + raw
    return out


def amqp_start(props: dict[str, str]) -> bytes:
    caps = b"\x0fpublisher_confirmst\x01"
    table = (
        b"\x0ccapabilitiesF"
        + struct.pack(">I", len(caps))
        + caps
        + _amqp_table(props)
        + b"\x04sizeI\x00\x00\x00\x01"
    )
    payload = struct.pack(">HHBB", 10, 10, 0, 9) + struct.pack(">I", len(table)) + table
    payload += struct.pack(">I", 5) + b"PLAIN" + struct.pack(">I", 5) + b"en_US"
    return struct.pack(">BHI", 1, 0, len(payload)) + payload + b"\xce"


def test_amqp_connection_start() -> None:
    frame = amqp_start({"product": "RabbitMQ", "version": "4.0.5", "platform": "Erlang"})
    assert parse_amqp_start(frame) == "RabbitMQ 4.0.5"


def test_amqp_other_answers() -> None:
    with pytest.raises(CheckFailed, match="refused AMQP 0-9-1"):
        parse_amqp_start(b"AMQP\x01\x01\x00\x0a")
    with pytest.raises(CheckFailed, match=r"no AMQP Connection\.Start"):
        parse_amqp_start(b"HTTP/1.1 400 Bad Request\r\n")
    bad_method = bytearray(amqp_start({}))
    bad_method[10] = 11
    with pytest.raises(CheckFailed, match=r"unexpected AMQP method 10\.11"):
        parse_amqp_start(bytes(bad_method))


def mysql_packet(payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + b"\x00" + payload


def test_mysql_greeting() -> None:
    greeting = mysql_packet(b"\x0a5.5.5-11.8.3-MariaDB-deb13\x00\x01\x00\x00\x00abcdefgh\x00")
    assert parse_mysql_greeting(greeting) == "server 11.8.3-MariaDB-deb13"
    refusal = mysql_packet(
        b"\xff\x6a\x04Host '10.89.231.1' is not allowed to connect to this MariaDB server"
    )
    assert parse_mysql_greeting(refusal).startswith(
        "server answers, refuses this machine (error 1130: Host '10.89.231.1'"
    )
    with pytest.raises(CheckFailed):
        parse_mysql_greeting(b"")


def test_explain_common_errors() -> None:
    class ConnectFailure(Exception):
        pass

    class Unauthorized(Exception):
        pass

    class HttpError(Exception):
        status_code = 403

    reason = core.explain(ConnectFailure(), SETTINGS)
    assert "cannot reach http://10.89.231.11:5000/v3 (" in reason
    assert "rejected (HTTP 401)" in core.explain(Unauthorized("x"), SETTINGS)
    assert "HTTP 403" in core.explain(HttpError("nope"), SETTINGS)
    assert core.explain(ValueError("odd\nsecond line"), SETTINGS) == "ValueError: odd"


# -- the runner of checks ----------------------------------------------------------------


def ctx(tmp_path: Path, **kw: Any) -> core.VerifyContext:
    config = SimpleNamespace(
        path=tmp_path / "osdeploy.yml",
        public_address="127.0.0.1",
        host=lambda name: SimpleNamespace(name=name, address="127.0.0.1"),
    )
    values: dict[str, Any] = {
        "deploy_dir": tmp_path,
        "config": config,
        "plan": plan("memcached", "rabbitmq", "mariadb"),
        "catalog": load_catalog(),
        "passwords": {"keystone_admin_password": "pw"},
        "settings": SETTINGS,
    }
    values.update(kw)
    return core.VerifyContext(**values)


def test_run_check_catches_failures_and_errors(tmp_path: Path) -> None:
    def good(_: Any) -> str:
        return "fine"

    def bad(_: Any) -> str:
        raise CheckFailed("broken — fix it")

    def crash(_: Any) -> str:
        raise RuntimeError("surprise")

    checks = {"good": good, "bad": bad, "crash": crash}
    c = ctx(tmp_path)
    assert core.run_check("good", c, checks).ok
    assert core.run_check("bad", c, checks).detail == "broken — fix it"
    assert core.run_check("crash", c, checks).detail == "RuntimeError: surprise"
    missing = core.run_check("nope", c, checks)
    assert not missing.ok
    assert "no such check" in missing.detail


def test_missing_password_is_a_failure(tmp_path: Path) -> None:
    with pytest.raises(CheckFailed, match="no keystone_demo_password"):
        ctx(tmp_path).password("keystone_demo_password")


@pytest.fixture
def fake_server() -> Iterator[Any]:
    """A loopback TCP server answering each connection with a fixed reply."""
    servers: list[socket.socket] = []

    def start(reply: bytes, wait_for_input: bool = True) -> int:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        servers.append(srv)

        def serve() -> None:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                if wait_for_input:
                    conn.recv(1024)
                conn.sendall(reply)

        threading.Thread(target=serve, daemon=True).start()
        return int(srv.getsockname()[1])

    yield start
    for srv in servers:
        srv.close()


def test_memcached_check_over_loopback(tmp_path: Path, fake_server: Any) -> None:
    port = fake_server(b"VERSION 1.6.38\r\n")
    c = ctx(tmp_path)
    c.port = lambda *_: port  # type: ignore[method-assign]
    assert infra.check_memcached_version(c) == f"ctl1: memcached 1.6.38 on 127.0.0.1:{port}"


def test_rabbitmq_check_over_loopback(tmp_path: Path, fake_server: Any) -> None:
    port = fake_server(amqp_start({"product": "RabbitMQ", "version": "4.0.5"}))
    c = ctx(tmp_path)
    c.port = lambda *_: port  # type: ignore[method-assign]
    assert infra.check_rabbitmq_amqp(c).startswith("ctl1: RabbitMQ 4.0.5 speaks AMQP 0-9-1")


def test_mariadb_check_over_loopback(tmp_path: Path, fake_server: Any) -> None:
    port = fake_server(mysql_packet(b"\x0a11.8.3-MariaDB\x00rest"), wait_for_input=False)
    c = ctx(tmp_path)
    c.port = lambda *_: port  # type: ignore[method-assign]
    assert infra.check_mariadb_handshake(c) == f"ctl1: server 11.8.3-MariaDB on 127.0.0.1:{port}"


def test_closed_port_names_host_and_fix(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    c = ctx(tmp_path)
    c.port = lambda *_: port  # type: ignore[method-assign]
    with pytest.raises(CheckFailed, match=r"ctl1: 127\.0\.0\.1:\d+ unreachable .* listening"):
        infra.check_memcached_version(c)


def test_run_verify_prints_one_line_per_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "passwords.yml").write_text(
        "keystone_admin_password: topsecretvalue\n", encoding="utf-8"
    )
    (tmp_path / "passwords.yml").chmod(0o600)
    fake_catalog: Any = {
        "keystone": SimpleNamespace(
            verify=("a_check", "b_check"),
            depends=(),
            kind="openstack",
            ports={"public": 5000},
            endpoints=(SimpleNamespace(type="identity", port="public", path=""),),
        ),
    }
    monkeypatch.setattr(
        core,
        "CHECKS",
        {"a_check": lambda c: "all good", "b_check": lambda c: c.password("nope")},
    )
    config: Any = SimpleNamespace(path=tmp_path / "osdeploy.yml", public_address="10.0.0.1")
    rc = verify.run_verify(tmp_path, config, plan("keystone"), fake_catalog)
    out = capsys.readouterr().out
    assert rc == 1
    lines = out.splitlines()
    assert lines[0].startswith("PASS a_check  all good (")
    assert lines[1].startswith("FAIL b_check  passwords.yml has no nope")
    assert lines[2] == "verify: 1 passed, 1 failed"
    assert "topsecretvalue" not in out
    # --skip leaves a check out; a name that is no planned check is an error.
    assert verify.run_verify(tmp_path, config, plan("keystone"), fake_catalog, ["b_check"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "verify: 1 passed, 0 failed"
    with pytest.raises(InputError, match=r"--skip b_chek: not a check .* did you mean b_check"):
        verify.run_verify(tmp_path, config, plan("keystone"), fake_catalog, ["b_chek"])


def test_check_functions_are_registered_once() -> None:
    assert len(set(verify.CHECKS.values())) == len(verify.CHECKS)
    json.dumps(sorted(verify.CHECKS))


def test_a_dropped_connection_is_tried_once_more() -> None:
    from keystoneauth1.exceptions import ConnectFailure

    calls: list[int] = []

    def flaky(ctx: Any) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectFailure("Connection aborted")
        return "fine"

    ctx = SimpleNamespace(reset=lambda: None, settings=SETTINGS)
    result = core.run_check("flaky", ctx, {"flaky": flaky})  # type: ignore[arg-type]
    assert (result.ok, result.detail, len(calls)) == (True, "fine", 2)


def test_a_service_that_stays_down_still_fails() -> None:
    from keystoneauth1.exceptions import ConnectFailure

    def down(ctx: Any) -> str:
        raise ConnectFailure("Connection refused")

    ctx = SimpleNamespace(reset=lambda: None, settings=SETTINGS)
    result = core.run_check("down", ctx, {"down": down})  # type: ignore[arg-type]
    assert not result.ok
    assert "cannot reach" in result.detail


def test_a_check_that_changes_the_cloud_is_never_run_twice() -> None:
    from keystoneauth1.exceptions import ConnectFailure

    calls: list[int] = []

    @core.one_attempt
    def stop_then_start(ctx: Any) -> str:
        calls.append(1)
        raise ConnectFailure("Connection aborted")

    ctx = SimpleNamespace(reset=lambda: None, settings=SETTINGS)
    result = core.run_check("lifecycle", ctx, {"lifecycle": stop_then_start})  # type: ignore[arg-type]
    assert (result.ok, len(calls)) == (False, 1)


def test_an_api_refusal_is_reported_in_the_service_s_words() -> None:
    from openstack.exceptions import ConflictException

    exc = ConflictException(
        "409: Client Error for url: http://10.89.231.11:8774/v2.1/servers/abc/action, ...",
        details="Cannot 'stop' instance abc while it is in task_state powering-on",
    )
    exc.status_code = 409
    exc.method, exc.url = "POST", "http://10.89.231.11:8774/v2.1/servers/abc/action"
    assert core.explain(exc, SETTINGS) == (
        "ConflictException: HTTP 409 to POST /v2.1/servers/abc/action: "
        "Cannot 'stop' instance abc while it is in task_state powering-on"
    )


def test_a_wait_that_times_out_says_what_explain_makes_of_it() -> None:
    seen = []
    with pytest.raises(CheckFailed, match=r"^detach \(waited 0 s\)$"):
        _wait("detach", 0, lambda: seen.append(1), interval=0)
    with pytest.raises(CheckFailed, match=r"^volume detach \(waited 0 s\) — see nova-compute.log$"):
        _wait("detach", 0, lambda: None, explain=lambda m: f"volume {m} — see nova-compute.log")

    # A probe's own failure is not rewritten; a value ends the wait.
    def broken() -> None:
        raise CheckFailed("volume is error")

    with pytest.raises(CheckFailed, match=r"^volume is error$"):
        _wait("volume", 60, broken, explain=lambda m: f"{m}: it is error")
    assert _wait("volume", 0, lambda: "ok") == "ok"
    assert seen == [1]
