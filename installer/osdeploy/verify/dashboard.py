"""Verify checks of Horizon, without a browser (the browser checks of issue 13 come later).

- `horizon_login_page`: on every horizon host, the login page answers 200
  with Horizon's title, and every stylesheet and script it references under
  the static URL answers 200 (a stale or missing offline manifest shows
  here first).
"""

from __future__ import annotations

import re

from osdeploy.verify.core import CheckFailed, VerifyContext, check
from osdeploy.verify.net import http_get

SERVICE = "horizon"
LOGIN_TITLE = "Login - OpenStack Dashboard"
# The role's default webroot (roles/horizon, horizon_webroot).
WEBROOT = "/"

_TITLE = re.compile(rb"<title>\s*(.*?)\s*</title>", re.S)
_ASSET = re.compile(rb'(?:href|src)="(/[^"]*static/[^"]+\.(?:css|js))"')


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


# -- checks --------------------------------------------------------------------


@check("horizon_login_page")
def check_horizon_login_page(ctx: VerifyContext) -> str:
    port = ctx.port(SERVICE, "http")
    hosts = ctx.service_hosts(SERVICE)
    if not hosts:
        raise CheckFailed("no horizon host in the plan")
    counted = 0
    for name, address in hosts:
        base = f"http://{address}:{port}"
        status, body = http_get(f"{base}{WEBROOT}auth/login/")
        title = page_title(body)
        if status != 200 or title != LOGIN_TITLE:
            raise CheckFailed(
                f"{name}: {base}{WEBROOT}auth/login/ answered HTTP {status}, title {title!r} — "
                "see /var/log/openstack-dashboard/error.log there"
            )
        assets = static_assets(body)
        if not assets:
            raise CheckFailed(f"{name}: the login page references no static CSS or JS")
        broken = [(path, http_get(base + path)[0]) for path in assets]
        broken = [(path, code) for path, code in broken if code != 200]
        if broken:
            raise CheckFailed(
                f"{name}: static files missing: {broken[:3]} — rerun `osdeploy deploy --recheck`"
            )
        counted += len(assets)
    return f"login page and {counted} static files answer on {len(hosts)} host(s)"
