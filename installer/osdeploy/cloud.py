"""Where and as whom to reach the cloud: Keystone's public URL, user, project, region.

`cloud_settings` is the one answer: the credentials files (`osdeploy.openrc`)
are written from it and the checks (`osdeploy.verify`) connect with it, so
they always agree. The password is never part of it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from osdeploy.wiring import endpoint_url

if TYPE_CHECKING:
    from osdeploy.catalog import Catalog
    from osdeploy.config import Config
    from osdeploy.plan import Plan

REGION_NAME = "RegionOne"
DEFAULT_DOMAIN = "Default"
#: Seconds for one OpenStack API call (through openstacksdk).
API_TIMEOUT = 15
#: Times openstacksdk sends a request again after a connection-level failure.
CONNECT_RETRIES = 2


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


def quiet_sdk_logging() -> None:
    """Keep keystoneauth/openstacksdk warnings off the console: callers report."""
    for name in ("keystoneauth", "keystoneauth1", "openstack", "urllib3"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())
        logger.propagate = False


def connect(settings: CloudSettings, password: str) -> Any:
    """An openstacksdk connection as ``settings`` say (verify's checks, `osdeploy usage`)."""
    import openstack  # slow import: only when a command talks to the cloud

    quiet_sdk_logging()
    return openstack.connect(
        load_yaml_config=False,
        load_envvars=False,
        auth_type="password",
        auth_url=settings.auth_url,
        username=settings.username,
        password=password,
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
