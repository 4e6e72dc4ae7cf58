"""Verify checks of Horizon: over plain HTTP, then as the demo user in a real browser.

- `horizon_login_page`: on every horizon host, the login page answers 200
  with Horizon's title, and every stylesheet and script it references under
  the static URL answers 200 (a stale or missing offline manifest shows
  here first).
- `horizon_demo_project`: what the demo user will look at, made through the
  APIs as the demo user (project demo): a network and a server on it (Nova),
  a volume (Cinder), a container with an object (Swift), a stack (Heat),
  each only when that service is planned; an earlier run's are removed
  first. Everything is named ``osdeploy-dash*``.
- The browser steps, in headless Chromium (`osdeploy.verify.browser`), at
  the first horizon host: `horizon_browser_login` (log in as demo; the
  Overview shows the project's usage), `horizon_browser_pages` (Instances
  lists the server with its address; Volumes, Containers, Stacks show
  what `horizon_demo_project` made), `horizon_browser_launch` (a server
  launched through the Launch Instance dialog reaches Active),
  `horizon_browser_logout` (log out; a wrong password gets Horizon's own
  error). Every page load must record no response >= 400 from the
  dashboard and no JavaScript error. Screenshots of every step go to
  ``<deployment>/logs/verify-horizon/NN-<step>.png`` (the last run's). The
  last step removes what the demo project got.
"""

from __future__ import annotations

import re
import shutil
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from osdeploy.cloud import dashboard_url
from osdeploy.verify.browser import Browser
from osdeploy.verify.compute import FLAVOR, IMAGE_NAME, POLL
from osdeploy.verify.core import CheckFailed, VerifyContext, check
from osdeploy.verify.identity import DEMO_NAME, DEMO_PASSWORD_KEY, demo_settings
from osdeploy.verify.net import http_get
from osdeploy.verify.object_storage import remove_containers
from osdeploy.verify.orchestration import _remove_stacks, _settle

SERVICE = "horizon"
LOGIN_TITLE = "Login - OpenStack Dashboard"
OVERVIEW_TITLE = "Instance Overview - OpenStack Dashboard"
#: Name prefix of what the dashboard checks make in the demo project.
DASH = "osdeploy-dash"
NET_CIDR = "192.168.76.0/24"
STACK_TEMPLATE = {
    "heat_template_version": "2021-04-16",
    "description": "osdeploy verify: a stack the dashboard lists",
    "resources": {"token": {"type": "OS::Heat::RandomString", "properties": {"length": 16}}},
}
#: Seconds for the demo project's server (and the dialog's) to become
#: ACTIVE, its volume available, its stack complete.
READY_TIMEOUT = 300
DELETE_TIMEOUT = 180
SHOTS = "verify-horizon"

_TITLE = re.compile(rb"<title>\s*(.*?)\s*</title>", re.S)
_ASSET = re.compile(rb'(?:href|src)="(/[^"]*static/[^"]+\.(?:css|js))"')
_USED = re.compile(r"Instances\s+Used\s+(\d+)\s+of\s+(\d+)")


# -- pure helpers --------------------------------------------------------------


def page_title(body: bytes) -> str | None:
    """The page's <title>, stripped; None when it has none."""
    found = _TITLE.search(body)
    return found.group(1).decode("utf-8", "replace") if found else None


def static_assets(body: bytes) -> list[str]:
    """Paths of the stylesheets and scripts under static/ a page references (once each)."""
    seen: dict[str, None] = {}
    for match in _ASSET.finditer(body):
        seen.setdefault(match.group(1).decode(), None)
    return list(seen)


def instances_used(text: str) -> tuple[int, int] | None:
    """(used, limit) from the Overview's "Instances Used N of M" chart; None when absent."""
    found = _USED.search(text)
    return (int(found.group(1)), int(found.group(2))) if found else None


# -- checks over HTTP ----------------------------------------------------------


@check("horizon_login_page")
def check_horizon_login_page(ctx: VerifyContext) -> str:
    hosts = ctx.service_hosts(SERVICE)
    if not hosts:
        raise CheckFailed("no horizon host in the plan")
    counted = 0
    for name, address in hosts:
        login = f"{dashboard_url(ctx.config, ctx.plan, ctx.catalog, address)}auth/login/"
        status, body = http_get(login)
        title = page_title(body)
        if status != 200 or title != LOGIN_TITLE:
            raise CheckFailed(
                f"{name}: {login} answered HTTP {status}, title {title!r} — "
                "see /var/log/openstack-dashboard/error.log there"
            )
        assets = static_assets(body)
        if not assets:
            raise CheckFailed(f"{name}: the login page references no static CSS or JS")
        broken = [(path, http_get(urllib.parse.urljoin(login, path))[0]) for path in assets]
        broken = [(path, code) for path, code in broken if code != 200]
        if broken:
            raise CheckFailed(
                f"{name}: static files missing: {broken[:3]} — rerun `osdeploy deploy --recheck`"
            )
        counted += len(assets)
    return f"login page and {counted} static files answer on {len(hosts)} host(s)"


# -- the demo project ----------------------------------------------------------


def _demo(ctx: VerifyContext) -> Any:
    return ctx.connect(demo_settings(ctx), DEMO_PASSWORD_KEY)


def remove_named(ctx: VerifyContext, conn: Any, prefix: str) -> list[str]:
    """Remove the connection's project's servers, volumes, containers and
    networks named ``prefix``*; what went. Servers before volumes (one may be
    attached), both before the network."""

    def ours(resource: Any) -> bool:
        return str(getattr(resource, "name", "") or "").startswith(prefix)

    removed: list[str] = []
    for service, proxy, listing, delete in (
        ("nova", conn.compute, "servers", "delete_server"),
        ("cinder", conn.block_storage, "volumes", "delete_volume"),
    ):
        if service not in ctx.plan:
            continue
        found = [r for r in getattr(proxy, listing)() if ours(r)]
        for resource in found:
            getattr(proxy, delete)(resource)
        for resource in found:
            proxy.wait_for_delete(resource, interval=POLL, wait=DELETE_TIMEOUT)
        removed += [r.name for r in found]
    if "swift" in ctx.plan:
        containers = [c.name for c in conn.object_store.containers(prefix=prefix)]
        remove_containers(conn, prefix)
        removed += containers
    if "neutron" in ctx.plan:
        own = conn.network.networks(project_id=conn.current_project_id)
        networks = [n for n in own if ours(n)]
        for network in networks:
            conn.network.delete_network(network)
        removed += [n.name for n in networks]
    return removed


def _sweep(ctx: VerifyContext, conn: Any) -> list[str]:
    """Remove everything named osdeploy-dash* from the demo project; what went."""
    removed: list[str] = []
    if "heat" in ctx.plan:
        removed += _remove_stacks(conn, lambda name: name.startswith(DASH))
    return removed + remove_named(ctx, conn, DASH)


def _server_address(server: Any) -> str:
    for addresses in (server.addresses or {}).values():
        for entry in addresses:
            if entry.get("version") == 4:
                return str(entry["addr"])
    raise CheckFailed(f"server {server.name} has no IPv4 address")


@check(
    "horizon_demo_project",
    one_attempt=True,
    needs=("horizon_login_page", "keystone_token_demo", "compute_servers"),
)
def check_horizon_demo_project(ctx: VerifyContext) -> str:
    conn = _demo(ctx)
    made: dict[str, str] = {}
    try:
        removed = _sweep(ctx, conn)
        pending: list[Callable[[], None]] = []
        if "neutron" in ctx.plan:
            network = conn.network.create_network(name=f"{DASH}-net")
            conn.network.create_subnet(
                name=f"{DASH}-subnet", network_id=network.id, ip_version=4, cidr=NET_CIDR
            )
            made["network"] = network.name
            ctx.scratch["dash_network"] = network.id
        if "nova" in ctx.plan and "neutron" in ctx.plan:
            image = conn.image.find_image(IMAGE_NAME)
            flavor = conn.compute.find_flavor(FLAVOR["name"])
            if image is None or flavor is None:
                raise CheckFailed(
                    f"skipped: no image {IMAGE_NAME} or flavor {FLAVOR['name']} — "
                    "compute_servers makes them"
                )
            server = conn.compute.create_server(
                name=f"{DASH}-server",
                image_id=image.id,
                flavor_id=flavor.id,
                networks=[{"uuid": ctx.scratch["dash_network"]}],
            )

            def server_ready() -> None:
                ready = conn.compute.wait_for_server(
                    server, status="ACTIVE", failures=["ERROR"], interval=POLL, wait=READY_TIMEOUT
                )
                made["server"] = ready.name
                made["address"] = _server_address(ready)

            pending.append(server_ready)
        if "cinder" in ctx.plan:
            volume = conn.block_storage.create_volume(name=f"{DASH}-volume", size=1)

            def volume_ready() -> None:
                conn.block_storage.wait_for_status(
                    volume, "available", failures=["error"], interval=POLL, wait=READY_TIMEOUT
                )
                made["volume"] = volume.name

            pending.append(volume_ready)
        if "swift" in ctx.plan:
            container = f"{DASH}-container"
            conn.object_store.create_container(name=container)
            conn.object_store.upload_object(container=container, name="hello.txt", data=b"hi\n")
            made["container"] = container
        if "heat" in ctx.plan:
            stack = conn.orchestration.create_stack(name=f"{DASH}-stack", template=STACK_TEMPLATE)
            stack.name = f"{DASH}-stack"

            def stack_ready() -> None:
                _settle(conn, stack, "CREATE", READY_TIMEOUT)
                made["stack"] = stack.name

            pending.append(stack_ready)
        for ready in pending:
            ready()
    finally:
        ctx.scratch["dash"] = made
        conn.close()
    note = f" (an earlier run's {len(removed)} removed first)" if removed else ""
    return f"as {DEMO_NAME}: " + ", ".join(f"{k} {v}" for k, v in made.items()) + note


# -- the browser ---------------------------------------------------------------


def _dashboard_url(ctx: VerifyContext) -> str:
    url = dashboard_url(ctx.config, ctx.plan, ctx.catalog)
    if url is None:
        raise CheckFailed("no horizon host in the plan")
    return url


def _browser(ctx: VerifyContext) -> Browser:
    """The run's browser (started by the first browser step, shots cleared)."""
    browser = ctx.scratch.get("browser")
    if browser is None:
        shots = ctx.deploy_dir / "logs" / SHOTS
        shutil.rmtree(shots, ignore_errors=True)
        browser = Browser(_dashboard_url(ctx), shots)
        ctx.scratch["browser"] = browser
        ctx.on_close(browser.quit)
    return browser


def _by(kind: str) -> Any:
    from selenium.webdriver.common.by import By

    return getattr(By, kind)


def _text_present(browser: Browser, text: str) -> Callable[[Any], bool]:
    def present(driver: Any) -> bool:
        try:
            return text in driver.find_element(_by("TAG_NAME"), "body").text
        except Exception:  # the page is being replaced
            return False

    return present


def _login(browser: Browser, username: str, password: str) -> None:
    browser.open("auth/login/")
    form = browser.wait(
        lambda d: d.find_elements(_by("ID"), "id_username"), "the login form's user name field"
    )
    form[0].clear()
    form[0].send_keys(username)
    field = browser.driver.find_element(_by("ID"), "id_password")
    field.clear()
    field.send_keys(password)
    browser.driver.find_element(_by("ID"), "loginBtn").click()


def _logged_in(ctx: VerifyContext) -> Browser:
    """The browser, logged in as demo (again, when an earlier step failed before it)."""
    browser = _browser(ctx)
    if not ctx.scratch.get("browser_logged_in"):
        _login(browser, DEMO_NAME, ctx.password(DEMO_PASSWORD_KEY))
        browser.wait(lambda d: d.title == OVERVIEW_TITLE, f"the page titled {OVERVIEW_TITLE!r}")
        ctx.scratch["browser_logged_in"] = True
    return browser


def _page(browser: Browser, path: str, step: str, *texts: str) -> None:
    """Open a page, wait until it shows every one of ``texts``, screenshot it, judge its loads."""
    browser.open(path)
    for text in texts:
        browser.wait(_text_present(browser, text), f"{step}: {text!r}")
    browser.screenshot(step)
    browser.clean(step)


@check("horizon_browser_login", needs=("horizon_demo_project",))
def check_horizon_browser_login(ctx: VerifyContext) -> str:
    browser = _browser(ctx)
    browser.open("auth/login/")
    browser.wait(lambda d: d.title == LOGIN_TITLE, f"the page titled {LOGIN_TITLE!r}")
    browser.screenshot("login-page")
    browser.clean("login page")
    ctx.scratch.pop("browser_logged_in", None)
    browser = _logged_in(ctx)
    title = browser.driver.title
    made = ctx.scratch.get("dash", {})
    shown = ["Limit Summary", "Usage"]
    if "server" in made:
        shown.append(made["server"])
    _page(browser, "project/", "overview", *shown)
    used = instances_used(browser.driver.find_element(_by("TAG_NAME"), "body").text)
    if "nova" in ctx.plan and (used is None or used[0] < (1 if "server" in made else 0)):
        raise CheckFailed(f"Overview: the Instances chart shows {used}, not the demo's server")
    usage = f"Instances used {used[0]} of {used[1]}" if used else "usage"
    listed = f" and {made['server']} in its usage" if "server" in made else ""
    return (
        f"{DEMO_NAME} logged in at {browser.base}: title {title!r}; Overview shows {usage}{listed}"
    )


@check("horizon_browser_pages")
def check_horizon_browser_pages(ctx: VerifyContext) -> str:
    browser = _logged_in(ctx)
    made = ctx.scratch.get("dash", {})
    seen: list[str] = []
    if "nova" in ctx.plan:
        if "server" not in made:
            raise CheckFailed("skipped: horizon_demo_project made no server")
        _page(browser, "project/instances/", "instances", made["server"], made["address"])
        seen.append(f"Instances {made['server']} at {made['address']}")
    for service, key, path, label in (
        ("cinder", "volume", "project/volumes/", "Volumes"),
        ("swift", "container", "project/containers/", "Containers"),
        ("heat", "stack", "project/stacks/", "Stacks"),
    ):
        if service not in ctx.plan:
            continue
        if key not in made:
            raise CheckFailed(f"skipped: horizon_demo_project made no {key}")
        _page(browser, path, label.lower(), made[key])
        seen.append(f"{label} {made[key]}")
    return "; ".join(seen) + " (no failed load, no console error)" if seen else "no service pages"


@check("horizon_browser_launch", one_attempt=True)
def check_horizon_browser_launch(ctx: VerifyContext) -> str:
    if "nova" not in ctx.plan:
        return "skipped: Nova is not planned"
    browser = _logged_in(ctx)
    name = f"{DASH}-launched"
    started = time.monotonic()
    _launch_dialog(browser, name, f"{DASH}-net", volume_choice="cinder" in ctx.plan)
    browser.wait(
        _row_status(name, "Active"), f"{name} Active in the Instances table", READY_TIMEOUT
    )
    took = time.monotonic() - started
    browser.screenshot("launched-active")
    browser.clean("instances after the launch")
    conn = _demo(ctx)
    try:  # what the page says, as Nova says it
        server = conn.compute.find_server(name, ignore_missing=False)
        server = conn.compute.get_server(server.id)
        address = _server_address(server)
    finally:
        conn.close()
    if server.status != "ACTIVE":
        raise CheckFailed(f"the dashboard shows {name} Active, Nova says {server.status}")
    return (
        f"{name} launched through the Launch Instance dialog, Active after {took:.0f} s "
        f"(Nova: ACTIVE, address {address} on {DASH}-net)"
    )


def _row_status(name: str, status: str) -> Callable[[Any], bool]:
    """The Instances table's row of ``name`` shows ``status``."""

    def shown(driver: Any) -> bool:
        try:
            rows = driver.find_elements(_by("CSS_SELECTOR"), "table#instances tbody tr")
            return any(name in row.text and status in row.text for row in rows)
        except Exception:  # rows replaced by the table's refresh
            return False

    return shown


def _visible(driver: Any, css: str) -> list[Any]:
    return [e for e in driver.find_elements(_by("CSS_SELECTOR"), css) if e.is_displayed()]


def _allocate(browser: Browser, step: str, name: str) -> None:
    """In the dialog's current step, move the row named ``name`` from Available
    to Allocated (its arrow-up button), unless it is allocated already."""

    def allocated(driver: Any) -> bool:
        for row in _visible(driver, ".modal-dialog tr"):
            cells = [c.text.strip() for c in row.find_elements(_by("TAG_NAME"), "td")]
            if name not in cells:
                continue
            if row.find_elements(_by("CSS_SELECTOR"), "button.fa-arrow-down"):
                return True
            for button in row.find_elements(_by("CSS_SELECTOR"), "button.fa-arrow-up"):
                button.click()  # allocated at the next look
        return False

    browser.wait(allocated, f"launch dialog, {step}: {name!r} allocated")


def _launch_dialog(browser: Browser, name: str, network: str, volume_choice: bool) -> None:
    """Fill the Launch Instance dialog: name, the test image (no new volume),
    the verify flavor, the demo network; then launch."""

    def next_step(driver: Any) -> list[Any]:
        return _visible(driver, ".modal-dialog button.next")

    browser.open("project/instances/")
    browser.click(
        lambda d: _visible(d, "#instances__action_launch-ng"), "the Launch Instance button"
    )
    field = browser.wait(lambda d: _visible(d, ".modal-dialog input#name"), "the dialog's name")
    field[0].send_keys(name)
    browser.click(next_step, "launch dialog: Next (Source)")
    _allocate(browser, "Source", IMAGE_NAME)
    if volume_choice:  # With Cinder: a new volume for the root disk? Not here.
        browser.click(
            lambda d: [b for b in _visible(d, "label#vol-create") if b.text.strip() == "No"],
            "launch dialog, Source: Create New Volume 'No'",
        )
    browser.click(next_step, "launch dialog: Next (Flavor)")
    _allocate(browser, "Flavor", str(FLAVOR["name"]))
    browser.click(next_step, "launch dialog: Next (Networks)")
    _allocate(browser, "Networks", network)
    browser.screenshot("launch-dialog")
    browser.click(
        lambda d: [b for b in _visible(d, ".modal-dialog button.finish") if b.is_enabled()],
        "launch dialog: the Launch Instance button enabled",
    )
    browser.wait(lambda d: not _visible(d, ".modal-dialog"), "launch dialog: closed after launch")


@check("horizon_browser_logout", one_attempt=True)
def check_horizon_browser_logout(ctx: VerifyContext) -> str:
    conn = None
    try:
        browser = _browser(ctx)
        browser.open("auth/logout/")
        browser.wait(lambda d: d.title == LOGIN_TITLE, "the login page after logging out")
        ctx.scratch.pop("browser_logged_in", None)
        browser.screenshot("logged-out")
        browser.clean("logout")
        _login(browser, DEMO_NAME, "not-" + ctx.password(DEMO_PASSWORD_KEY))
        browser.wait(_text_present(browser, "Invalid credentials"), "'Invalid credentials'")
        browser.screenshot("wrong-password")
        browser.clean("login with a wrong password")
        if browser.driver.title != LOGIN_TITLE:
            raise CheckFailed(f"a wrong password led to {browser.driver.title!r}")
    finally:
        conn = _demo(ctx)
        try:
            removed = _sweep(ctx, conn)
        finally:
            conn.close()
    return (
        "logged out; a wrong password shows 'Invalid credentials' on the login page; "
        f"removed {len(removed)} resources of project {DEMO_NAME}; screenshots in "
        f"{browser.shots}"
    )
