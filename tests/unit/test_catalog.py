"""The catalog: complete, consistent, and its checks catch broken entries."""

import copy
import re
from typing import Any

import pytest
import yaml

from osdeploy import PROJECT_ROOT
from osdeploy.catalog import CATALOG_PATH, HOST_ROLES, Catalog, parse_catalog, role_of_group
from osdeploy.errors import CatalogError

ORDER = [
    "mariadb",
    "rabbitmq",
    "memcached",
    "ceph",
    "keystone",
    "glance",
    "placement",
    "nova",
    "neutron",
    "cinder",
    "swift",
    "heat",
    "gnocchi",
    "horizon",
    "ceilometer",
]


@pytest.fixture
def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CATALOG_PATH.read_text())
    return data


def test_all_services_in_order(catalog: Catalog) -> None:
    assert list(catalog.names()) == ORDER


def test_the_compute_path_is_deployable(catalog: Catalog) -> None:
    assert catalog.deployable_names() == (
        "mariadb",
        "rabbitmq",
        "memcached",
        "ceph",
        "keystone",
        "glance",
        "placement",
        "nova",
        "neutron",
        "cinder",
        "swift",
        "heat",
        "gnocchi",
        "horizon",
        "ceilometer",
    )


def test_kinds(catalog: Catalog) -> None:
    infra = [s.name for s in catalog.services if s.kind == "infrastructure"]
    assert infra == ["mariadb", "rabbitmq", "memcached", "ceph"]
    for name in infra[:3]:
        assert catalog[name].host_roles == ("control",)
    assert catalog["ceph"].host_roles == ("control", "storage")


@pytest.mark.parametrize(
    ("service", "depends"),
    [
        ("keystone", {"mariadb", "memcached"}),
        ("glance", {"keystone"}),
        ("placement", {"keystone"}),
        ("nova", {"keystone", "glance", "placement", "neutron", "rabbitmq"}),
        ("neutron", {"keystone", "rabbitmq"}),
        ("cinder", {"keystone", "rabbitmq", "ceph"}),
        ("swift", {"keystone", "memcached"}),
        ("heat", {"keystone", "rabbitmq"}),
        ("gnocchi", {"keystone", "mariadb"}),
        ("horizon", {"keystone", "memcached"}),
        ("ceilometer", {"keystone", "rabbitmq", "gnocchi"}),
    ],
)
def test_dependencies(catalog: Catalog, service: str, depends: set[str]) -> None:
    assert set(catalog[service].depends) == depends


@pytest.mark.parametrize(
    ("service", "ports"),
    [
        ("mariadb", {3306}),
        ("rabbitmq", {5672}),
        ("memcached", {11211}),
        ("keystone", {5000}),
        ("glance", {9292}),
        ("placement", {8778}),
        ("nova", {8774, 8775, 6080}),
        ("neutron", {9696, 6641, 6642}),
        ("cinder", {8776}),
        ("swift", {8080, 6200, 6201, 6202, 873}),
        ("heat", {8004, 8000, 8010}),
        ("gnocchi", {8041}),
        ("horizon", {80}),
        ("ceilometer", set()),
    ],
)
def test_ports(catalog: Catalog, service: str, ports: set[int]) -> None:
    assert set(catalog[service].ports.values()) == ports


def test_keystone_entry(catalog: Catalog) -> None:
    keystone = catalog["keystone"]
    assert keystone.ports["public"] == 5000
    assert keystone.secrets == (
        "keystone_database_password",
        "keystone_admin_password",
        "keystone_demo_password",
    )
    assert keystone.verify == (
        "keystone_token_admin",
        "keystone_token_demo",
        "keystone_catalog",
        "keystone_endpoints",
    )
    assert [(e.type, e.port, e.path) for e in keystone.endpoints] == [("identity", "public", "")]


def test_groups(catalog: Catalog) -> None:
    assert dict(catalog["nova"].groups) == {"nova_api": ("control",), "nova_compute": ("compute",)}
    assert catalog["neutron"].groups["ovn_controller"] == ("network", "compute")
    assert catalog["cinder"].groups["cinder_volume"] == ("storage",)
    assert dict(catalog["swift"].groups) == {
        "swift_proxy": ("control",),
        "swift_storage": ("storage",),
    }
    groups = catalog.group_names()
    assert len(groups) == len(set(groups))
    assert not set(groups) & set(HOST_ROLES)


def test_every_deployable_group_names_a_role_with_an_install_step(catalog: Catalog) -> None:
    # The common role installs a host's packages up front from these roles
    # (playbooks/common.yml): each must exist with an install step and OS vars.
    for name in catalog.deployable_names():
        for group in catalog[name].groups:
            role = PROJECT_ROOT / "roles" / role_of_group(group)
            assert (role / "tasks" / "install.yml").is_file(), (name, group)
            assert (role / "vars" / "debian-13.yml").is_file(), (name, group)


def test_host_roles_follow_the_groups_and_the_run(catalog: Catalog) -> None:
    planned = ["mariadb", "rabbitmq", "memcached", "keystone", "glance", "placement"]
    planned += ["neutron", "nova"]
    enabled = [f"enable_{s}_True" for s in planned]
    control = ["control", "network", "mariadb", "rabbitmq", "memcached", "keystone", "glance_api"]
    control += ["placement_api", "ovn_central", "ovn_controller", "neutron_server", "nova_api"]
    # Plan order, and within a service its groups' order (neutron_server first).
    assert catalog.host_roles(planned, control + enabled) == (
        *("mariadb", "rabbitmq", "memcached", "keystone", "glance", "placement"),
        *("neutron", "ovn", "nova"),
    )
    compute = ["compute", "ovn_controller", "neutron_ovn_metadata", "nova_compute"]
    assert catalog.host_roles(planned, compute + enabled) == ("ovn", "neutron", "nova")
    # --services nova: only nova is enabled for the run (gather.yml).
    assert catalog.host_roles(planned, [*compute, "enable_nova_True", "enable_neutron_False"]) == (
        "nova",
    )
    assert catalog.host_roles(["nosuch"], ["enable_nosuch_True"]) == ()


def test_secret_names_follow_the_contract(catalog: Catalog) -> None:
    pattern = re.compile(r"^(?P<svc>[a-z]+)_[a-z_]+$")
    for service in catalog.services:
        for secret in service.secrets:
            match = pattern.match(secret)
            assert match, secret
            assert match["svc"] in catalog.names(), secret
        if service.kind == "openstack" and service.name not in ("keystone", "horizon"):
            assert f"{service.name}_keystone_password" in service.secrets
        if "rabbitmq" in service.depends:
            assert f"{service.name}_rabbitmq_password" in service.secrets


def test_openstack_services_with_an_api_have_endpoints(catalog: Catalog) -> None:
    for service in catalog.services:
        if service.kind == "openstack" and service.name not in ("horizon", "ceilometer"):
            assert service.endpoints, service.name
            assert all(e.port in service.ports for e in service.endpoints)


def test_closure_and_order(catalog: Catalog) -> None:
    assert catalog.closure(["keystone"]) == ("mariadb", "memcached", "keystone")
    assert catalog.closure(["nova"]) == (
        "mariadb",
        "rabbitmq",
        "memcached",
        "keystone",
        "glance",
        "placement",
        "neutron",
        "nova",
    )
    assert catalog.dependents("memcached", ["keystone", "horizon", "memcached"]) == (
        "keystone",
        "horizon",
    )


def test_unknown_dependency(raw: dict[str, Any]) -> None:
    raw["services"]["glance"]["depends"] = ["keystone", "keystoen"]
    with pytest.raises(CatalogError) as caught:
        parse_catalog(raw)
    assert "services.glance.depends: unknown service keystoen" in str(caught.value.problems[0])


def test_cycle(raw: dict[str, Any]) -> None:
    raw["services"]["mariadb"]["depends"] = ["glance"]
    with pytest.raises(CatalogError) as caught:
        parse_catalog(raw)
    messages = [str(p) for p in caught.value.problems]
    assert any("dependency cycle mariadb -> glance -> keystone -> mariadb" in m for m in messages)


def test_deployable_service_needs_deployable_dependencies(raw: dict[str, Any]) -> None:
    raw["services"]["keystone"]["depends"] = ["mariadb", "glance"]
    with pytest.raises(CatalogError, match="problem"):
        parse_catalog(raw)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "database"),
        ("deployable", "yes"),
        ("groups", {"mariadb": ["controller"]}),
        ("ports", {"mysql": "3306"}),
        ("unknown", 1),
    ],
)
def test_broken_entry(raw: dict[str, Any], field: str, value: object) -> None:
    broken = copy.deepcopy(raw)
    broken["services"]["mariadb"][field] = value
    with pytest.raises(CatalogError):
        parse_catalog(broken)


def test_missing_field(raw: dict[str, Any]) -> None:
    del raw["services"]["memcached"]["ports"]
    with pytest.raises(CatalogError, match="1 problem"):
        parse_catalog(raw)
