"""admin-openrc.sh and clouds.yaml: content, quoting, determinism, file modes."""

import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from osdeploy import openrc
from osdeploy.cloud import CloudSettings
from osdeploy.errors import OsdeployError
from osdeploy.openrc import render_clouds_yaml, render_openrc

SETTINGS = CloudSettings(auth_url="http://10.89.231.11:5000/v3")
ODD_PASSWORD = "a'b\"c $HOME `x` ;#"


def config(tmp_path: Path, public: str = "10.89.231.11") -> Any:
    return SimpleNamespace(path=tmp_path / "osdeploy.yml", public_address=public)


def plan(*names: str) -> Any:
    return SimpleNamespace(services=tuple(SimpleNamespace(name=n) for n in names))


def test_openrc_content() -> None:
    text = render_openrc(SETTINGS, "pw123")
    assert "export OS_AUTH_URL=http://10.89.231.11:5000/v3\n" in text
    for line in (
        "export OS_IDENTITY_API_VERSION=3",
        "export OS_USERNAME=admin",
        "export OS_PASSWORD=pw123",
        "export OS_PROJECT_NAME=admin",
        "export OS_USER_DOMAIN_NAME=Default",
        "export OS_PROJECT_DOMAIN_NAME=Default",
        "export OS_REGION_NAME=RegionOne",
        "export OS_INTERFACE=public",
    ):
        assert line in text.splitlines()
    assert render_openrc(SETTINGS, "pw123") == text


def test_openrc_quotes_for_the_shell() -> None:
    text = render_openrc(SETTINGS, ODD_PASSWORD)
    out = subprocess.run(
        ["sh", "-c", '. /dev/stdin && printf %s "$OS_PASSWORD"'],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == ODD_PASSWORD


def test_clouds_yaml_content() -> None:
    text = render_clouds_yaml(SETTINGS, ODD_PASSWORD)
    data = yaml.safe_load(text)
    cloud = data["clouds"]["osdeploy"]
    assert cloud["auth"] == {
        "auth_url": "http://10.89.231.11:5000/v3",
        "username": "admin",
        "password": ODD_PASSWORD,
        "project_name": "admin",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
    }
    assert cloud["region_name"] == "RegionOne"
    assert cloud["interface"] == "public"
    assert cloud["identity_api_version"] == 3
    assert render_clouds_yaml(SETTINGS, ODD_PASSWORD) == text


def _passwords(deploy: Path, **values: str) -> None:
    path = deploy / "passwords.yml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    path.chmod(0o600)


def test_write_openrc_files(tmp_path: Path) -> None:
    _passwords(tmp_path, keystone_admin_password="adminpw")
    paths = openrc.write_openrc(tmp_path, config(tmp_path), plan("mariadb", "keystone"))
    assert paths == [tmp_path / "admin-openrc.sh", tmp_path / "clouds.yaml"]
    first = [p.read_bytes() for p in paths]
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"adminpw" in first[0]
    openrc.write_openrc(tmp_path, config(tmp_path), plan("mariadb", "keystone"))
    assert [p.read_bytes() for p in paths] == first
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "admin-openrc.sh",
        "clouds.yaml",
        "passwords.yml",
    ]


def test_no_keystone_no_files(tmp_path: Path) -> None:
    _passwords(tmp_path, keystone_admin_password="adminpw")
    assert openrc.write_openrc(tmp_path, config(tmp_path), plan("mariadb")) == []
    assert not (tmp_path / "clouds.yaml").exists()


def test_write_openrc_needs_the_admin_password(tmp_path: Path) -> None:
    _passwords(tmp_path, other="x")
    with pytest.raises(OsdeployError, match="no keystone_admin_password"):
        openrc.write_openrc(tmp_path, config(tmp_path), plan("keystone"))
