"""Credentials files for the admin user: admin-openrc.sh and clouds.yaml.

Both hold the admin password, so they are written with mode 0600, atomically
(temporary file + rename), and byte-identical for the same input. What they
say comes from `osdeploy.cloud.cloud_settings`, which `osdeploy.verify`
connects with too, so the files and the checks always agree.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from osdeploy.catalog import Catalog, load_catalog
from osdeploy.cloud import CloudSettings, cloud_settings
from osdeploy.errors import OsdeployError
from osdeploy.fileio import write_atomic
from osdeploy.secrets import load_passwords

if TYPE_CHECKING:
    from osdeploy.config import Config
    from osdeploy.plan import Plan

CLOUD_NAME = "osdeploy"
ADMIN_PASSWORD_KEY = "keystone_admin_password"  # noqa: S105 (a key name in passwords.yml)
OPENRC_NAME = "admin-openrc.sh"
CLOUDS_YAML_NAME = "clouds.yaml"


def render_openrc(settings: CloudSettings, password: str) -> str:
    """admin-openrc.sh: `source` it, then use the openstack CLI."""
    values = [
        ("OS_AUTH_URL", settings.auth_url),
        ("OS_IDENTITY_API_VERSION", "3"),
        ("OS_USERNAME", settings.username),
        ("OS_PASSWORD", password),
        ("OS_PROJECT_NAME", settings.project_name),
        ("OS_USER_DOMAIN_NAME", settings.user_domain_name),
        ("OS_PROJECT_DOMAIN_NAME", settings.project_domain_name),
        ("OS_REGION_NAME", settings.region_name),
        ("OS_INTERFACE", settings.interface),
        ("OS_AUTH_TYPE", "password"),
    ]
    lines = [
        "# osdeploy: credentials of the cloud's admin user. Keep this file private.",
        f"# Use: . ./{OPENRC_NAME} && openstack token issue",
        "unset OS_CLOUD OS_TOKEN OS_PROJECT_ID OS_TENANT_NAME OS_TENANT_ID",
    ]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in values]
    return "\n".join(lines) + "\n"


def render_clouds_yaml(settings: CloudSettings, password: str, cloud: str = CLOUD_NAME) -> str:
    """clouds.yaml with one cloud: `openstack --os-cloud osdeploy ...`."""
    data = {
        "clouds": {
            cloud: {
                "auth": {
                    "auth_url": settings.auth_url,
                    "username": settings.username,
                    "password": password,
                    "project_name": settings.project_name,
                    "user_domain_name": settings.user_domain_name,
                    "project_domain_name": settings.project_domain_name,
                },
                "auth_type": "password",
                "region_name": settings.region_name,
                "interface": settings.interface,
                "identity_api_version": 3,
            }
        }
    }
    header = (
        "# osdeploy: credentials of the cloud's admin user. Keep this file private.\n"
        f"# Use: OS_CLIENT_CONFIG_FILE=$PWD/{CLOUDS_YAML_NAME} openstack --os-cloud {cloud} "
        "token issue\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def admin_password(deploy_dir: Path) -> str:
    password = load_passwords(deploy_dir).get(ADMIN_PASSWORD_KEY)
    if not password:
        raise OsdeployError(
            f"{deploy_dir / 'passwords.yml'}: no {ADMIN_PASSWORD_KEY}; "
            "run `osdeploy deploy` first, it generates the passwords"
        )
    return password


def write_openrc(
    deploy_dir: Path, config: Config, plan: Plan, catalog: Catalog | None = None
) -> list[Path]:
    """Write admin-openrc.sh and clouds.yaml into the deployment directory.

    Returns the files written: none when keystone is not planned (no cloud
    users exist without it).
    """
    if "keystone" not in {service.name for service in plan.services}:
        return []
    settings = cloud_settings(config, catalog if catalog is not None else load_catalog())
    password = admin_password(deploy_dir)
    files = [
        (deploy_dir / OPENRC_NAME, render_openrc(settings, password)),
        (deploy_dir / CLOUDS_YAML_NAME, render_clouds_yaml(settings, password)),
    ]
    for path, content in files:
        write_atomic(path, content, 0o600)
    return [path for path, _ in files]
