"""Where and as whom to reach the cloud: Keystone's public URL, user, project, region.

`cloud_settings` is the one answer: the credentials files (`osdeploy.openrc`)
are written from it and the checks (`osdeploy.verify`) connect with it, so
they always agree. The password is never part of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from osdeploy.catalog import Catalog
    from osdeploy.config import Config

REGION_NAME = "RegionOne"
DEFAULT_DOMAIN = "Default"
KEYSTONE_PUBLIC_PORT = 5000


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


def keystone_port(catalog: Catalog) -> int:
    """Keystone's public port from the catalog (ports.public), else 5000."""
    if "keystone" not in catalog:
        return KEYSTONE_PUBLIC_PORT
    return int(catalog["keystone"].ports.get("public", KEYSTONE_PUBLIC_PORT))


def format_host(address: str) -> str:
    """An address as the host part of a URL (IPv6 in brackets)."""
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def cloud_settings(config: Config, catalog: Catalog, username: str = "admin") -> CloudSettings:
    """Admin (or another user of the same name as its project) on the public endpoint."""
    port = keystone_port(catalog)
    auth_url = f"http://{format_host(config.public_address)}:{port}/v3"
    return CloudSettings(auth_url=auth_url, username=username, project_name=username)
