"""Dependency resolution, ordering, host mapping and --services."""

from collections.abc import Callable
from dataclasses import replace

import pytest
from conftest import undeployable

from osdeploy.catalog import Catalog
from osdeploy.config import Config
from osdeploy.errors import InputError
from osdeploy.plan import build_plan, format_plan


def test_keystone_pulls_mariadb_and_memcached(
    make_config: Callable[..., Config], catalog: Catalog
) -> None:
    plan = build_plan(make_config("[keystone]"), catalog)
    assert plan.names() == ("mariadb", "memcached", "keystone")
    assert plan.service("keystone").reason == "requested"
    assert plan.service("mariadb").reason == "added: dependency of keystone"
    assert plan.service("memcached").required_by == ("keystone",)
    assert plan.run == plan.names()
    assert not plan.restricted


def test_catalog_order_breaks_ties(make_config: Callable[..., Config], catalog: Catalog) -> None:
    plan = build_plan(make_config("[keystone, rabbitmq]"), catalog)
    assert plan.names() == ("mariadb", "rabbitmq", "memcached", "keystone")
    assert plan.service("rabbitmq").requested


def test_nova_pulls_its_dependencies(make_config: Callable[..., Config], catalog: Catalog) -> None:
    everything = Catalog(tuple(replace(s, deployable=True) for s in catalog.services))
    plan = build_plan(replace(make_config(), services=("nova",)), everything)
    assert plan.names() == (
        "mariadb",
        "rabbitmq",
        "memcached",
        "keystone",
        "glance",
        "placement",
        "neutron",
        "nova",
    )
    assert plan.service("rabbitmq").reason == "added: dependency of nova, neutron"
    nova = plan.service("nova")
    assert dict(nova.groups) == {"nova_api": ("ctl1",), "nova_compute": ("cmp1",)}
    assert nova.hosts == ("ctl1", "cmp1")
    assert plan.service("neutron").groups["ovn_controller"] == ("ctl1", "cmp1")
    assert "nova_metadata_secret" in plan.secrets
    assert list(plan.secrets) == sorted(set(plan.secrets))


def test_hosts_and_catalog_data(make_config: Callable[..., Config], catalog: Catalog) -> None:
    plan = build_plan(make_config(), catalog)
    keystone = plan.service("keystone")
    assert keystone.hosts == ("ctl1",)
    assert keystone.ports["public"] == 5000
    assert keystone.verify[0] == "keystone_token_admin"
    assert plan.secrets == (
        "keystone_admin_password",
        "keystone_database_password",
        "keystone_demo_password",
    )
    with pytest.raises(KeyError):
        plan.service("glance")


def test_not_deployable_is_an_error(make_config: Callable[..., Config], catalog: Catalog) -> None:
    config = replace(make_config(), services=("keystone", "ceilometer"))
    with pytest.raises(InputError, match="ceilometer not deployable yet in this release"):
        build_plan(config, undeployable(catalog, "ceilometer"))


def test_services_restricts_the_run(make_config: Callable[..., Config], catalog: Catalog) -> None:
    plan = build_plan(make_config("[rabbitmq, keystone]"), catalog, ["keystone", "mariadb"])
    assert plan.run == ("mariadb", "keystone")
    assert plan.restricted
    assert plan.names() == ("mariadb", "rabbitmq", "memcached", "keystone")


@pytest.mark.parametrize(
    ("run", "message"),
    [
        (["rabbitmq"], "rabbitmq is not in the plan; add it to services: in osdeploy.yml first"),
        (["keystne"], "unknown service keystne; did you mean keystone?"),
        ([], "--services is empty"),
    ],
)
def test_services_errors(
    make_config: Callable[..., Config], catalog: Catalog, run: list[str], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        build_plan(make_config("[keystone]"), catalog, run)


def test_format_plan(make_config: Callable[..., Config], catalog: Catalog) -> None:
    plan = build_plan(make_config("[keystone]"), catalog, ["keystone"])
    assert format_plan(plan).splitlines() == [
        "#  service    hosts  why",
        "1  mariadb    ctl1   added: dependency of keystone (not in this run)",
        "2  memcached  ctl1   added: dependency of keystone (not in this run)",
        "3  keystone   ctl1   requested",
        "3 services on 1 host; this run deploys 1: keystone",
    ]
