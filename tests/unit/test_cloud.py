"""Cloud settings: Keystone's public URL and the admin user, from config and catalog."""

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from osdeploy.catalog import load_catalog
from osdeploy.cloud import CloudSettings, cloud_settings


def config(tmp_path: Path, public: str = "10.89.231.11") -> Any:
    return SimpleNamespace(path=tmp_path / "osdeploy.yml", public_address=public)


def test_settings_from_config_and_catalog(tmp_path: Path) -> None:
    settings = cloud_settings(config(tmp_path), load_catalog())
    assert settings == CloudSettings(
        auth_url="http://10.89.231.11:5000/v3",
        username="admin",
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name="RegionOne",
        interface="public",
    )
    v6 = cloud_settings(config(tmp_path, "fd00::10"), load_catalog())
    assert v6.auth_url == "http://[fd00::10]:5000/v3"
