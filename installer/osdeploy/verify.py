"""Check a deployed cloud from the deploy machine with real protocol and API calls.

Each check is a function in `CHECKS` (name -> function); the catalog lists,
per service, the names to run (`verify:`), and `run_verify` runs those of the
planned services in plan order. A check returns a one-line description of
what it saw, or raises `CheckFailed` with what is wrong and what to try.
Output is one line per check, then `verify: N passed, M failed`. Passwords
and tokens are never printed.

The small parsers and decisions (version documents, AMQP / MySQL /
memcached greetings, catalog contents) are pure and unit-tested; sockets,
HTTP and openstacksdk are the edges.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osdeploy.catalog import Catalog, load_catalog
from osdeploy.cloud import CloudSettings, cloud_settings, format_host
from osdeploy.secrets import load_passwords

if TYPE_CHECKING:
    from osdeploy.config import Config
    from osdeploy.plan import Plan

#: Seconds for one TCP connection or HTTP request.
NET_TIMEOUT = 5.0
#: Seconds for one OpenStack API call (through openstacksdk).
API_TIMEOUT = 15
ENDPOINT_INTERFACES = ("public", "internal")
#: Tries of a check that failed on a dropped connection.
CONNECT_ATTEMPTS = 2
#: Times openstacksdk sends a request again after a connection-level failure.
CONNECT_RETRIES = 2
DEMO_NAME = "demo"
DEMO_ROLE = "member"
DEMO_PASSWORD_KEY = "keystone_demo_password"  # noqa: S105 (a key name in passwords.yml)
ADMIN_PASSWORD_KEY = "keystone_admin_password"  # noqa: S105 (a key name in passwords.yml)


class CheckFailed(Exception):
    """A check saw something wrong; the message says what and what to try."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    seconds: float


# -- pure helpers -------------------------------------------------------------


def check_names(plan: Plan, catalog: Catalog) -> list[str]:
    """The catalog's checks of the planned services, in plan order, each once."""
    names: list[str] = []
    for service in plan.services:
        for name in catalog[service.name].verify:
            if name not in names:
                names.append(name)
    return names


def format_result(result: CheckResult, width: int = 0) -> str:
    status = "PASS" if result.ok else "FAIL"
    return f"{status} {result.name.ljust(width)}  {result.detail} ({result.seconds:.2f} s)"


def format_totals(results: Sequence[CheckResult]) -> str:
    passed = sum(1 for r in results if r.ok)
    return f"verify: {passed} passed, {len(results) - passed} failed"


def is_version_document(status: int, body: bytes) -> bool:
    """An OpenStack API root/version answer: 200 or 300 with JSON version data."""
    if status not in (200, 300):
        return False
    try:
        data = json.loads(body.decode("utf-8", errors="replace"))
    except ValueError:
        return False
    return isinstance(data, dict) and ("version" in data or "versions" in data)


def root_url(url: str) -> str:
    """scheme://host:port/ of an endpoint URL (where the versions list lives)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/", "", ""))


def catalog_endpoints(
    catalog: Iterable[Mapping[str, Any]], interfaces: Sequence[str] = ENDPOINT_INTERFACES
) -> list[tuple[str, str, str]]:
    """(service type, interface, url) of every catalog endpoint on the interfaces."""
    found: list[tuple[str, str, str]] = []
    for service in catalog:
        stype = str(service.get("type", "?"))
        for endpoint in service.get("endpoints", []) or []:
            interface = str(endpoint.get("interface", ""))
            url = endpoint.get("url")
            if interface in interfaces and isinstance(url, str) and url:
                found.append((stype, interface, url))
    return sorted(set(found))


def identity_problems(catalog: Iterable[Mapping[str, Any]], region: str) -> list[str]:
    """What is missing from the identity entry of a token's catalog (empty = fine)."""
    identity = [s for s in catalog if s.get("type") == "identity"]
    if not identity:
        return ["no identity service in the catalog"]
    problems: list[str] = []
    endpoints = [e for s in identity for e in (s.get("endpoints") or [])]
    for interface in ENDPOINT_INTERFACES:
        matching = [e for e in endpoints if e.get("interface") == interface]
        if not matching:
            problems.append(f"identity has no {interface} endpoint")
        elif not any((e.get("region_id") or e.get("region")) == region for e in matching):
            problems.append(f"identity {interface} endpoint is not in region {region}")
    return problems


def parse_memcached_version(reply: bytes) -> str:
    """The version from memcached's `VERSION x.y.z` reply."""
    line = reply.split(b"\r\n", 1)[0].decode("ascii", errors="replace").strip()
    if not line.startswith("VERSION "):
        raise CheckFailed(f"unexpected answer to 'version': {line[:80]!r}")
    return line.removeprefix("VERSION ").strip()


AMQP_091_HEADER = b"AMQP\x00\x00\x09\x01"


def _amqp_table(data: bytes) -> dict[str, str]:
    """String fields of an AMQP 0-9-1 field table (others are skipped or end parsing)."""
    fields: dict[str, str] = {}
    pos = 0
    fixed = {"t": 1, "b": 1, "B": 1, "s": 2, "u": 2, "I": 4, "i": 4, "l": 8, "T": 8, "f": 4}
    fixed.update({"d": 8, "D": 5, "V": 0})
    while pos < len(data):
        size = data[pos]
        name = data[pos + 1 : pos + 1 + size].decode("utf-8", errors="replace")
        pos += 1 + size
        kind = chr(data[pos])
        pos += 1
        if kind in ("S", "F", "A", "x"):
            (length,) = struct.unpack_from(">I", data, pos)
            pos += 4
            if kind == "S":
                fields[name] = data[pos : pos + length].decode("utf-8", errors="replace")
            pos += length
        elif kind in fixed:
            pos += fixed[kind]
        else:
            break
    return fields


def parse_amqp_start(reply: bytes) -> str:
    """'<product> <version>' from a broker's Connection.Start frame."""
    if reply.startswith(b"AMQP"):
        raise CheckFailed(
            f"broker refused AMQP 0-9-1 and offers protocol {reply[4:8].hex()} — "
            "is this really RabbitMQ?"
        )
    if len(reply) < 11 or reply[0] != 1:
        raise CheckFailed("no AMQP Connection.Start frame from the broker")
    class_id, method_id = struct.unpack_from(">HH", reply, 7)
    if (class_id, method_id) != (10, 10):
        raise CheckFailed(f"unexpected AMQP method {class_id}.{method_id} (want 10.10)")
    try:
        (table_len,) = struct.unpack_from(">I", reply, 13)
        props = _amqp_table(reply[17 : 17 + table_len])
    except (struct.error, IndexError):
        props = {}
    product = props.get("product", "AMQP broker")
    version = props.get("version", "")
    return f"{product} {version}".strip()


def parse_mysql_greeting(reply: bytes) -> str:
    """What the server's first MySQL-protocol packet says (version, or its refusal)."""
    if len(reply) < 5:
        raise CheckFailed("no MySQL protocol greeting")
    payload = reply[4:]
    if payload[0] == 10:
        version = payload[1:].split(b"\0", 1)[0].decode("ascii", errors="replace")
        # MariaDB announces itself as "5.5.5-<real version>" to old clients
        return "server " + version.removeprefix("5.5.5-")
    if payload[0] == 0xFF and len(payload) >= 3:
        (code,) = struct.unpack_from("<H", payload, 1)
        text = payload[3:].decode("utf-8", errors="replace")
        if text.startswith("#"):
            text = text[6:]
        return f"server answers, refuses this machine (error {code}: {text.strip()[:120]})"
    raise CheckFailed(f"unexpected first packet (type {payload[0]})")


def explain(exc: BaseException, settings: CloudSettings) -> str:
    """A one-line reason for an openstacksdk/keystoneauth error, with what to try."""
    # openstacksdk wraps keystoneauth's errors (SDKException from ConnectFailure):
    # judge by the most specific error in the chain, report its first line.
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    names = {type(e).__name__ for e in chain}
    status = next(
        (
            code
            for e in chain
            if (code := getattr(e, "status_code", None) or getattr(e, "http_status", None))
        ),
        None,
    )
    name = type(exc).__name__
    text = (str(exc).strip().splitlines() or [""])[0][:200]
    if names & {"ConnectFailure", "ConnectTimeout", "ConnectionError", "DiscoveryFailure"}:
        deepest = (str(chain[-1]).strip().splitlines() or [""])[0][:200]
        return (
            f"cannot reach {settings.auth_url} ({type(chain[-1]).__name__}: {deepest}) — is "
            "keystone running (`osdeploy deploy --services keystone`) and the public address "
            "reachable from here?"
        )
    if status == 401 or "Unauthorized" in names:
        return (
            f"credentials of {settings.username} rejected (HTTP 401) — passwords.yml and keystone "
            "disagree; re-run `osdeploy deploy --services keystone`"
        )
    if status == 403 or "Forbidden" in names:
        return f"{settings.username} is not allowed to do this (HTTP 403): {text}"
    answer = next((e for e in chain if getattr(e, "details", None)), None)
    if status and answer is not None:
        # An API's answer (409 "Cannot 'stop' instance ... while it is in
        # task_state powering-on"): the service's own words, not the URL.
        path = urllib.parse.urlsplit(getattr(answer, "url", None) or "").path
        request = " ".join(p for p in (getattr(answer, "method", None), path) if p)
        where = f" to {request}" if request else ""
        return f"{name}: HTTP {status}{where}: {str(getattr(answer, 'details', '')).strip()[:300]}"
    return f"{name}: {text}" if text else name


# -- context and edges ----------------------------------------------------------


@dataclass
class VerifyContext:
    deploy_dir: Path
    config: Config
    plan: Plan
    catalog: Catalog
    passwords: Mapping[str, str]
    settings: CloudSettings
    _admin: Any = field(default=None, repr=False)
    #: What one check leaves for the next (the compute scenario's resources).
    scratch: dict[str, Any] = field(default_factory=dict, repr=False)

    def password(self, key: str) -> str:
        value = self.passwords.get(key)
        if not value:
            raise CheckFailed(f"passwords.yml has no {key} — run `osdeploy deploy` first")
        return value

    def connect(self, settings: CloudSettings, password_key: str) -> Any:
        import openstack  # slow import: only when a check needs it

        quiet_sdk_logging()

        return openstack.connect(
            load_yaml_config=False,
            load_envvars=False,
            auth_type="password",
            auth_url=settings.auth_url,
            username=settings.username,
            password=self.password(password_key),
            project_name=settings.project_name,
            user_domain_name=settings.user_domain_name,
            project_domain_name=settings.project_domain_name,
            region_name=settings.region_name,
            interface=settings.interface,
            identity_api_version="3",
            api_timeout=API_TIMEOUT,
            # A request sent on a keep-alive connection the server closes in
            # that instant fails without reaching the service: send it again.
            connect_retries=CONNECT_RETRIES,
        )

    def reset(self) -> None:
        """Drop the admin connection, so the next call opens fresh ones."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def admin(self) -> Any:
        if self._admin is None:
            self._admin = self.connect(self.settings, ADMIN_PASSWORD_KEY)
        return self._admin

    def service_hosts(self, service: str) -> list[tuple[str, str]]:
        """(host name, address) of the hosts running a planned service."""
        for planned in self.plan.services:
            if planned.name == service:
                return [(name, self.config.host(name).address) for name in planned.hosts]
        return []

    def port(self, service: str, key: str, default: int) -> int:
        if service not in self.catalog:
            return default
        return int(self.catalog[service].ports.get(key, default))


def quiet_sdk_logging() -> None:
    """Keep keystoneauth/openstacksdk warnings off the console: each check reports."""
    for name in ("keystoneauth", "keystoneauth1", "openstack", "urllib3"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())
        logger.propagate = False


def tcp_exchange(address: str, port: int, send: bytes, want: int = 1024) -> bytes:
    """Connect, send, and read the first answer (up to `want` bytes)."""
    try:
        with socket.create_connection((address, port), timeout=NET_TIMEOUT) as sock:
            if send:
                sock.sendall(send)
            chunks: list[bytes] = []
            received = 0
            while received < want:
                try:
                    chunk = sock.recv(want - received)
                except TimeoutError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
                # the greeting has started: give the rest of it a short moment only
                sock.settimeout(0.3)
            return b"".join(chunks)
    except OSError as exc:
        raise CheckFailed(
            f"{address}:{port} unreachable ({exc.strerror or exc}) — is the service running "
            "and listening on that address?"
        ) from exc


def http_get(url: str) -> tuple[int, bytes]:
    """Status and body of an unauthenticated GET (HTTP errors are answers too)."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise CheckFailed(f"{url}: not an http(s) URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 (scheme checked above)
    try:
        with urllib.request.urlopen(request, timeout=NET_TIMEOUT) as response:  # noqa: S310
            return int(response.status), response.read(65536)
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(65536)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CheckFailed(f"{url}: unreachable ({reason})") from exc


# -- checks ---------------------------------------------------------------------


def check_keystone_token_admin(ctx: VerifyContext) -> str:
    ctx.admin().authorize()
    return f"token issued for {ctx.settings.username} in project {ctx.settings.project_name}"


def _ensure_demo(ctx: VerifyContext) -> list[str]:
    """Project demo, user demo (member of it); returns what had to be created."""
    identity = ctx.admin().identity
    created: list[str] = []
    domain = identity.find_domain(ctx.settings.user_domain_name, ignore_missing=False)
    project = identity.find_project(DEMO_NAME, domain_id=domain.id)
    if project is None:
        project = identity.create_project(
            name=DEMO_NAME, domain_id=domain.id, description="osdeploy verify: demo project"
        )
        created.append("project")
    user = identity.find_user(DEMO_NAME, domain_id=domain.id)
    if user is None:
        user = identity.create_user(
            name=DEMO_NAME,
            domain_id=domain.id,
            password=ctx.password(DEMO_PASSWORD_KEY),
            default_project_id=project.id,
            description="osdeploy verify: demo user",
        )
        created.append("user")
    role = identity.find_role(DEMO_ROLE)
    if role is None:
        raise CheckFailed(
            f"role {DEMO_ROLE!r} does not exist — keystone-manage bootstrap creates it; "
            "re-run `osdeploy deploy --services keystone`"
        )
    if not identity.validate_user_has_project_role(project, user, role):
        identity.assign_project_role_to_user(project, user, role)
        created.append("role assignment")
    return created


def check_keystone_token_demo(ctx: VerifyContext) -> str:
    created = _ensure_demo(ctx)
    demo = CloudSettings(
        auth_url=ctx.settings.auth_url,
        username=DEMO_NAME,
        project_name=DEMO_NAME,
        user_domain_name=ctx.settings.user_domain_name,
        project_domain_name=ctx.settings.project_domain_name,
        region_name=ctx.settings.region_name,
        interface=ctx.settings.interface,
    )
    conn = ctx.connect(demo, DEMO_PASSWORD_KEY)
    try:
        conn.authorize()
    except Exception as exc:
        raise CheckFailed(explain(exc, demo)) from exc
    finally:
        conn.close()
    note = f" (created {', '.join(created)})" if created else ""
    return f"token issued for {DEMO_NAME} with role {DEMO_ROLE} in project {DEMO_NAME}{note}"


def token_catalog(ctx: VerifyContext) -> list[dict[str, Any]]:
    conn = ctx.admin()
    access = conn.session.auth.get_access(conn.session)
    return list(access.service_catalog.catalog or [])


def check_keystone_catalog(ctx: VerifyContext) -> str:
    catalog = token_catalog(ctx)
    problems = identity_problems(catalog, ctx.settings.region_name)
    if problems:
        raise CheckFailed(
            "; ".join(problems) + " — re-run `osdeploy deploy --services keystone` "
            "(keystone-manage bootstrap registers the identity endpoints)"
        )
    types = sorted({str(s.get("type")) for s in catalog})
    return f"catalog has {len(catalog)} entries: {', '.join(types)}"


def probe_endpoint(url: str) -> str | None:
    """None when the URL (or its root) answers with a version document, else why not."""
    status, body = http_get(url)
    if is_version_document(status, body):
        return None
    root = root_url(url)
    if root != url:
        root_status, root_body = http_get(root)
        if is_version_document(root_status, root_body):
            return None
    return f"{url}: HTTP {status}, no version document"


def check_keystone_endpoints(ctx: VerifyContext) -> str:
    targets = catalog_endpoints(token_catalog(ctx))
    if not targets:
        raise CheckFailed("the catalog has no public or internal endpoints")
    problems: list[str] = []
    for _stype, _interface, url in targets:
        try:
            problem = probe_endpoint(url)
        except CheckFailed as exc:
            problem = str(exc)
        if problem:
            problems.append(problem)
    if problems:
        raise CheckFailed(
            "; ".join(problems) + " — check the service and the address in the endpoint "
            "(network.public_address / internal_address)"
        )
    return f"{len(targets)} endpoints answer with a version document"


def _each_host(ctx: VerifyContext, service: str, probe: Callable[[str], str]) -> str:
    hosts = ctx.service_hosts(service)
    if not hosts:
        raise CheckFailed(f"no host runs {service} in this plan")
    seen = []
    for name, address in hosts:
        try:
            seen.append(f"{name}: {probe(address)}")
        except CheckFailed as exc:
            raise CheckFailed(f"{name}: {exc}") from exc
    return "; ".join(seen)


def _protocol_check(
    ctx: VerifyContext,
    service: str,
    port: tuple[str, int],
    hello: bytes,
    want: int,
    describe: Callable[[bytes], str],
) -> str:
    """Send `hello` to the service's port on each of its hosts; describe the answer."""
    number = ctx.port(service, *port)

    def probe(address: str) -> str:
        reply = tcp_exchange(address, number, hello, want=want)
        return f"{describe(reply)} on {format_host(address)}:{number}"

    return _each_host(ctx, service, probe)


def check_memcached_version(ctx: VerifyContext) -> str:
    return _protocol_check(
        ctx,
        "memcached",
        ("memcached", 11211),
        b"version\r\n",
        128,
        lambda reply: f"memcached {parse_memcached_version(reply)}",
    )


def check_rabbitmq_amqp(ctx: VerifyContext) -> str:
    return _protocol_check(
        ctx,
        "rabbitmq",
        ("amqp", 5672),
        AMQP_091_HEADER,
        4096,
        lambda reply: f"{parse_amqp_start(reply)} speaks AMQP 0-9-1",
    )


def check_mariadb_handshake(ctx: VerifyContext) -> str:
    return _protocol_check(ctx, "mariadb", ("mysql", 3306), b"", 512, parse_mysql_greeting)


Check = Callable[[VerifyContext], str]


def one_attempt(check: Check) -> Check:
    """Mark a check that changes the cloud as it goes (stop a server, then start it):
    run_check never runs it twice, since its second run would meet the first one's
    half-done state. Its requests are still sent again on a dropped connection
    (``connect_retries``)."""
    check.__dict__["one_attempt"] = True
    return check


#: Every check osdeploy knows; catalog.yml `verify:` entries name these.
CHECKS: dict[str, Check] = {
    "keystone_token_admin": check_keystone_token_admin,
    "keystone_token_demo": check_keystone_token_demo,
    "keystone_catalog": check_keystone_catalog,
    "keystone_endpoints": check_keystone_endpoints,
    "mariadb_handshake": check_mariadb_handshake,
    "rabbitmq_amqp": check_rabbitmq_amqp,
    "memcached_version": check_memcached_version,
}


def all_checks() -> dict[str, Check]:
    """Every check: this module's and the compute scenario's (osdeploy.verify_compute)."""
    from osdeploy.verify_compute import COMPUTE_CHECKS

    return {**CHECKS, **COMPUTE_CHECKS}


def run_check(
    name: str, ctx: VerifyContext, checks: Mapping[str, Check] | None = None
) -> CheckResult:
    started = time.monotonic()
    check = (all_checks() if checks is None else checks).get(name)
    if check is None:
        return CheckResult(
            name, False, "no such check in osdeploy.verify — fix the catalog's verify list", 0.0
        )
    attempts = 1 if getattr(check, "one_attempt", False) else CONNECT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            detail = check(ctx)
            ok = True
        except CheckFailed as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # sdk/keystoneauth errors: explain them, never crash
            if attempt < attempts and is_dropped_connection(exc):
                # uwsgi closes idle keep-alive connections; a request sent on
                # one in that instant fails without reaching keystone. Try
                # again on fresh connections; a service that is down fails again.
                ctx.reset()
                time.sleep(1)
                continue
            detail, ok = explain(exc, ctx.settings), False
        break
    return CheckResult(name, ok, detail, time.monotonic() - started)


def is_dropped_connection(exc: BaseException) -> bool:
    """True when a connection-level error (not an HTTP answer) is in the chain."""
    current: BaseException | None = exc
    seen: list[BaseException] = []
    while current is not None and current not in seen:
        if type(current).__name__ in {"ConnectFailure", "ConnectionError", "RemoteDisconnected"}:
            return True
        seen.append(current)
        current = current.__cause__ or current.__context__
    return False


def run_verify(deploy_dir: Path, config: Config, plan: Plan, catalog: Catalog | None = None) -> int:
    """Run the planned services' checks; 0 when all pass, else 1."""
    catalog = catalog if catalog is not None else load_catalog()
    names = check_names(plan, catalog)
    ctx = VerifyContext(
        deploy_dir=deploy_dir,
        config=config,
        plan=plan,
        catalog=catalog,
        passwords=load_passwords(deploy_dir),
        settings=cloud_settings(config, catalog),
    )
    width = max((len(n) for n in names), default=0)
    results: list[CheckResult] = []
    try:
        for name in names:
            result = run_check(name, ctx)
            results.append(result)
            print(format_result(result, width), flush=True)
    finally:
        if ctx._admin is not None:
            ctx._admin.close()
    print(format_totals(results), flush=True)
    return 0 if all(r.ok for r in results) else 1
