"""The frame every verify check runs in: context, registry, runner, result lines.

A check is a function of a `VerifyContext` that returns a one-line
description of what it saw, or raises `CheckFailed` with what is wrong and
what to try. `@check("name")` registers it in `CHECKS` under the name that
catalog.yml's `verify:` lists use. `run_check` runs one by name: it tries a
check once more after a dropped connection (unless the check changes the
cloud as it goes: `one_attempt`), and turns any openstacksdk/keystoneauth
error into a one-line reason (`explain`). Passwords and tokens are never
printed.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osdeploy.catalog import Catalog
from osdeploy.cloud import API_TIMEOUT as API_TIMEOUT  # the areas' clients read it here
from osdeploy.cloud import CloudSettings, connect

if TYPE_CHECKING:
    from osdeploy.config import Config
    from osdeploy.plan import Plan

#: Tries of a check that failed on a dropped connection.
CONNECT_ATTEMPTS = 2
ADMIN_PASSWORD_KEY = "keystone_admin_password"  # noqa: S105 (a key name in passwords.yml)
#: Name prefix of everything a check creates in the cloud (leftovers are found by it).
PREFIX = "osdeploy-verify"


class CheckFailed(Exception):
    """A check saw something wrong; the message says what and what to try."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    seconds: float


# -- result lines --------------------------------------------------------------


def format_result(result: CheckResult, width: int = 0) -> str:
    status = "PASS" if result.ok else "FAIL"
    return f"{status} {result.name.ljust(width)}  {result.detail} ({result.seconds:.2f} s)"


def format_totals(results: Sequence[CheckResult]) -> str:
    passed = sum(1 for r in results if r.ok)
    return f"verify: {passed} passed, {len(results) - passed} failed"


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


# -- context -------------------------------------------------------------------


@dataclass
class VerifyContext:
    deploy_dir: Path
    config: Config
    plan: Plan
    catalog: Catalog
    passwords: Mapping[str, str]
    settings: CloudSettings
    #: Each thread's admin connection (checks run side by side, `run.run_verify`):
    #: an openstacksdk connection is not shared between threads.
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _opened: list[Any] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: What one check leaves for the next (the compute scenario's resources);
    #: a check reads a key only after the check that writes it (its ``needs``).
    scratch: dict[str, Any] = field(default_factory=dict, repr=False)
    #: What `close` ends besides the connections (a check's browser).
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def password(self, key: str) -> str:
        value = self.passwords.get(key)
        if not value:
            raise CheckFailed(f"passwords.yml has no {key} — run `osdeploy deploy` first")
        return value

    def connect(self, settings: CloudSettings, password_key: str) -> Any:
        return connect(settings, self.password(password_key))

    def reset(self) -> None:
        """Drop this thread's admin connection, so its next call opens fresh ones."""
        conn = getattr(self._local, "admin", None)
        if conn is not None:
            self._local.admin = None
            with self._lock:
                self._opened.remove(conn)
            conn.close()

    def admin(self) -> Any:
        conn = getattr(self._local, "admin", None)
        if conn is None:
            conn = self._local.admin = self.connect(self.settings, ADMIN_PASSWORD_KEY)
            with self._lock:
                self._opened.append(conn)
        return conn

    def on_close(self, closer: Callable[[], None]) -> None:
        """Have `close` call ``closer`` too (once), e.g. to end a browser a check left open."""
        with self._lock:
            self._closers.append(closer)

    def close(self) -> None:
        """Close every thread's admin connection and call what `on_close` was given."""
        with self._lock:
            opened, self._opened[:] = list(self._opened), []
            closers, self._closers[:] = list(self._closers), []
        for conn in opened:
            conn.close()
        for closer in closers:
            with contextlib.suppress(Exception):  # ending what is already gone
                closer()

    def service_hosts(self, service: str) -> list[tuple[str, str]]:
        """(host name, address) of the hosts running a planned service."""
        for planned in self.plan.services:
            if planned.name == service:
                return [(name, self.config.host(name).address) for name in planned.hosts]
        return []

    def group_hosts(self, service: str, group: str) -> list[str]:
        """Names of the hosts in a catalog group of a planned service (config
        order); none when it is not planned or the group has no hosts (the
        Ceph daemons' with an existing cluster)."""
        if service not in self.plan:
            return []
        return list(self.plan.service(service).groups.get(group, ()))

    def port(self, service: str, key: str) -> int:
        """A port of the service, from the catalog (the only place that knows it)."""
        return int(self.catalog[service].ports[key])


# -- registry and runner -------------------------------------------------------


Check = Callable[[VerifyContext], str]

#: Every check osdeploy knows, by name: catalog.yml `verify:` entries name these.
#: Filled by `@check` as the area modules (osdeploy.verify.infra, ...) are imported.
CHECKS: dict[str, Check] = {}


def one_attempt(func: Check) -> Check:
    """Mark a check that changes the cloud as it goes (stop a server, then start it):
    run_check never runs it twice, since its second run would meet the first one's
    half-done state. Its requests are still sent again on a dropped connection
    (``connect_retries``)."""
    func.__dict__["one_attempt"] = True
    return func


_mark_one_attempt = one_attempt  # check()'s keyword of the same name hides it there


def check(
    name: str,
    *,
    one_attempt: bool = False,
    after: str | None = None,
    needs: Sequence[str] | None = None,
    before: Sequence[str] = (),
) -> Callable[[Check], Check]:
    """Register the decorated function in `CHECKS` as `name`.

    ``one_attempt=True`` marks it as `one_attempt` does: never run twice.
    ``after``: when that check runs too, this one is reported right after it
    (and after the others anchored there before it) instead of in plan
    order: a later service's checks that use an earlier scenario's
    resources before its last step removes them (`run.check_names`).

    When it starts (`run.check_graph`; checks run side by side): by default
    after the check before it of the same service (an anchored one: after
    the check reported before it). ``needs``: instead, once these have
    ended (none: at once). ``before``: these wait for this one (they would
    remove what it uses). Names of checks that do not run are ignored.
    """

    def register(func: Check) -> Check:
        if name in CHECKS:
            raise ValueError(f"verify check {name!r} is defined twice: rename one")
        CHECKS[name] = _mark_one_attempt(func) if one_attempt else func
        func.__dict__["after"] = after
        func.__dict__["needs"] = None if needs is None else tuple(needs)
        func.__dict__["before"] = tuple(before)
        return func

    return register


def run_check(
    name: str, ctx: VerifyContext, checks: Mapping[str, Check] | None = None
) -> CheckResult:
    started = time.monotonic()
    func = (CHECKS if checks is None else checks).get(name)
    if func is None:
        return CheckResult(
            name, False, "no such check in osdeploy.verify — fix the catalog's verify list", 0.0
        )
    attempts = 1 if getattr(func, "one_attempt", False) else CONNECT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            detail = func(ctx)
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


def credential_access(blob: str) -> str:
    """The access key of an EC2 credential's blob ("" when not one)."""
    try:
        access = json.loads(blob).get("access")
    except (ValueError, AttributeError):
        return ""
    return access if isinstance(access, str) else ""


def new_ec2_credential(conn: Any, prefix: str) -> tuple[str, str]:
    """A new EC2 credential of the connection's user in its project, for an
    AWS client: (access, secret); the access key starts with ``prefix``, so
    that ``remove_ec2_credentials`` finds it again."""
    access, secret = f"{prefix}-{secrets.token_hex(8)}", secrets.token_hex(20)
    conn.identity.create_credential(
        type="ec2",
        blob=json.dumps({"access": access, "secret": secret}),
        project_id=conn.current_project_id,
        user_id=conn.current_user_id,
    )
    return access, secret


def remove_ec2_credentials(conn: Any, prefix: str) -> None:
    """Delete the connection user's EC2 credentials whose access key starts with ``prefix``."""
    identity = conn.identity
    for credential in identity.credentials(user_id=conn.current_user_id, type="ec2"):
        if credential_access(credential.blob or "").startswith(prefix):
            identity.delete_credential(credential)
