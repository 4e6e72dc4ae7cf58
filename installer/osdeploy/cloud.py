"""Where and as whom to reach the cloud: Keystone's public URL, user, project, region.

`cloud_settings` is the one answer: the credentials files (`osdeploy.openrc`)
are written from it and the checks (`osdeploy.verify`) connect with it, so
they always agree. The password is never part of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from osdeploy.wiring import endpoint_url

if TYPE_CHECKING:
    from osdeploy.catalog import Catalog
    from osdeploy.config import Config
    from osdeploy.plan import Plan

REGION_NAME = "RegionOne"
DEFAULT_DOMAIN = "Default"


@dataclass(frozen=True)
class CloudSettings:
    """Where and as whom to authenticate (everything but the password)."""

    auth_url: str
    username: str = "admin"
    project_name: str = "admin"
    user_domain_name: str = DEFAULT_DOMAIN
    project_domain_name: str = DEFAULT_DOMAIN
    region_name: str = REGION_NAME
    interface: str = "public"


def cloud_settings(config: Config, catalog: Catalog, username: str = "admin") -> CloudSettings:
    """Admin (or another user of the same name as its project) on the public endpoint."""
    keystone = catalog["keystone"]
    auth_url = endpoint_url(keystone, keystone.endpoints[0], config.public_address) + "/v3"
    return CloudSettings(auth_url=auth_url, username=username, project_name=username)


def dashboard_webroot(config: Config) -> str:
    """The dashboard's URL path, "/" or "/<path>/" (role variable horizon_webroot)."""
    path = str(config.overrides.get("horizon_webroot") or "/").strip("/")
    return f"/{path}/" if path else "/"


def dashboard_url(config: Config, plan: Plan, catalog: Catalog, address: str = "") -> str | None:
    """Horizon's URL on ``address``, by default its first host's (Apache
    listens on that host's address); None when Horizon is not planned."""
    if "horizon" not in plan:
        return None
    address = address or config.host(plan.service("horizon").hosts[0]).address
    port = int(catalog["horizon"].ports["http"])
    where = address if port == 80 else f"{address}:{port}"
    return f"http://{where}{dashboard_webroot(config)}"
