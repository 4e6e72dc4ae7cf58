"""Inventory rendering: deterministic, the contract's vars and groups, overrides last."""

import stat
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from osdeploy.catalog import Catalog
from osdeploy.config import Config
from osdeploy.inventory import (
    HEADER,
    HOSTS_FILE,
    NO_HOST_KEY_CHECKING,
    PASSWORDS_LINK,
    VARS_FILE,
    load_defaults,
    render_files,
    write_inventory,
)
from osdeploy.plan import build_plan

Render = Callable[[Config], dict[str, str]]


@pytest.fixture
def render(catalog: Catalog) -> Render:
    def render(config: Config) -> dict[str, str]:
        return render_files(config, build_plan(config, catalog), catalog, load_defaults())

    return render


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config("[rabbitmq, keystone]")


def parsed(files: dict[str, str], name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(files[name])
    return data


def test_render_twice_is_byte_identical(render: Render, config: Config) -> None:
    first = render(config)
    assert render(config) == first
    assert set(first) == {HOSTS_FILE, VARS_FILE}
    assert all(text.startswith(HEADER) for text in first.values())


def test_host_vars(render: Render, config: Config, tmp_path: Path) -> None:
    hosts = parsed(render(config), HOSTS_FILE)["all"]["hosts"]
    assert list(hosts) == ["ctl1", "cmp1"]
    assert hosts["ctl1"] == {
        "ansible_host": "10.0.0.5",
        "ansible_user": "debian",
        "ansible_port": 22,
        "ansible_ssh_private_key_file": str(tmp_path / "id_test"),
        "ansible_become": True,
        "ansible_python_interpreter": "/usr/bin/python3",
        "osdeploy_address": "10.0.0.5",
        "osdeploy_roles": ["control", "network"],
    }


def test_ssh_args_only_without_host_key_checking(render: Render, config: Config) -> None:
    assert "StrictHostKeyChecking" not in render(config)[HOSTS_FILE]
    lab = replace(config, ssh=replace(config.ssh, host_key_checking=False))
    for host in parsed(render(lab), HOSTS_FILE)["all"]["hosts"].values():
        assert host["ansible_ssh_common_args"] == NO_HOST_KEY_CHECKING


def test_groups(render: Render, config: Config) -> None:
    children = parsed(render(config), HOSTS_FILE)["all"]["children"]
    assert children["control"] == {"hosts": {"ctl1": {}}}
    assert children["compute"] == {"hosts": {"cmp1": {}}}
    assert children["storage"] == {}
    assert children["keystone"] == {"children": {"control": {}}}
    assert children["mariadb"] == {"children": {"control": {}}}
    # not planned: rendered, but empty
    assert children["nova_compute"] == {}
    assert children["ovn_controller"] == {}


def test_group_vars(render: Render, config: Config, catalog: Catalog) -> None:
    variables = parsed(render(config), VARS_FILE)
    assert variables["enable_keystone"] is True
    assert variables["enable_rabbitmq"] is True
    assert variables["enable_glance"] is False
    assert {f"enable_{name}" for name in catalog.names()} <= set(variables)
    assert variables["osdeploy_services"] == ["mariadb", "rabbitmq", "memcached", "keystone"]
    assert variables["osdeploy_name"] == "test"
    assert variables["osdeploy_internal_address"] == "10.0.0.5"
    assert variables["osdeploy_public_address"] == "10.0.0.5"
    assert variables["osdeploy_apt_mirror"] == "http://deb.debian.org/debian"
    assert variables["osdeploy_apt_proxy"] is None
    assert variables["openstack_region_name"] == "RegionOne"
    assert not any("password" in key for key in variables)


def test_overrides_win_over_defaults(render: Render, config: Config) -> None:
    overridden = replace(
        config, overrides={"openstack_region_name": "Lab", "keystone_token_expiration": 7200}
    )
    variables = parsed(render(overridden), VARS_FILE)
    assert variables["openstack_region_name"] == "Lab"
    assert variables["keystone_token_expiration"] == 7200


def test_write_only_changes_and_link_passwords(
    render: Render, config: Config, tmp_path: Path
) -> None:
    deploy = tmp_path / "deploy"
    files = render(config)
    written = write_inventory(deploy, files)
    assert sorted(written) == sorted(
        [deploy / HOSTS_FILE, deploy / VARS_FILE, deploy / PASSWORDS_LINK]
    )
    link = deploy / PASSWORDS_LINK
    assert str(link.readlink()) == "../../../passwords.yml"
    assert link.resolve() == (deploy / "passwords.yml").resolve()
    assert stat.S_IMODE((deploy / HOSTS_FILE).stat().st_mode) == 0o644
    assert write_inventory(deploy, files) == []
    changed = dict(files, **{VARS_FILE: files[VARS_FILE] + "x: 1\n"})
    assert write_inventory(deploy, changed) == [deploy / VARS_FILE]
