"""The wiring layer: ports, URLs and server lists come from the catalog alone."""

from collections.abc import Callable
from pathlib import Path

import yaml
from conftest import BASE_CONFIG

from osdeploy.catalog import CATALOG_PATH, Catalog, parse_catalog
from osdeploy.config import Config, load_config
from osdeploy.inventory import VARS_FILE, load_defaults, render_files
from osdeploy.plan import build_plan
from osdeploy.wiring import NOTIFICATION_CONSUMERS, render_wiring, single_host_wiring

ROOT = Path(__file__).resolve().parents[2]
#: conftest's minimal config with a storage host and a device (Swift needs both).
HOSTS = BASE_CONFIG.replace("roles: [compute]}", "roles: [compute, storage], swift_devices: [sdb]}")


def _wiring(config: Config, catalog: Catalog) -> dict[str, object]:
    files = render_files(config, build_plan(config, catalog), catalog, load_defaults())
    data = yaml.safe_load(files[VARS_FILE])
    wiring: dict[str, object] = data["osdeploy_wiring"]
    return wiring


def test_rendered_wiring_of_a_planned_cloud(
    make_config: Callable[..., Config], catalog: Catalog
) -> None:
    config = make_config(
        "[glance]",
        "network: {internal_address: 10.0.0.5, public_address: 192.0.2.10}\n",
    )
    wiring = _wiring(config, catalog)
    assert wiring["endpoints"]["identity"] == {  # type: ignore[index]
        "internal": "http://10.0.0.5:5000",
        "public": "http://192.0.2.10:5000",
    }
    assert wiring["endpoints"]["image"]["public"] == "http://192.0.2.10:9292"  # type: ignore[index]
    assert wiring["endpoints"]["compute"]["internal"] == "http://10.0.0.5:8774/v2.1"  # type: ignore[index]
    assert wiring["memcached_servers"] == ["10.0.0.5:11211"]
    assert wiring["database_address"] == "10.0.0.5"
    # rabbitmq is not planned: no brokers, but its port is still known.
    assert wiring["rabbitmq_servers"] == []
    assert wiring["ports"]["rabbitmq"] == {"amqp": 5672}  # type: ignore[index]
    assert wiring["addresses"]["glance_api"] == ["10.0.0.5"]  # type: ignore[index]
    assert wiring["addresses"]["nova_compute"] == []  # type: ignore[index]
    # No Ceilometer in the plan: no service emits notifications.
    assert wiring["notifications"] is False


def test_every_catalog_port_and_endpoint_is_wired(catalog: Catalog) -> None:
    wiring = render_wiring(catalog, {}, "10.0.0.5", "10.0.0.5")
    for service in catalog.services:
        assert wiring["ports"][service.name] == dict(service.ports)
        for endpoint in service.endpoints:
            port = service.ports[endpoint.port]
            assert wiring["endpoints"][endpoint.type] == {
                "internal": f"http://10.0.0.5:{port}{endpoint.path}",
                "public": f"http://10.0.0.5:{port}{endpoint.path}",
            }


def test_ipv6_addresses_are_bracketed(catalog: Catalog) -> None:
    wiring = render_wiring(catalog, {"memcached": ["fd00::5"]}, "fd00::5", "fd00::5")
    assert wiring["memcached_servers"] == ["[fd00::5]:11211"]
    assert wiring["endpoints"]["identity"]["public"] == "http://[fd00::5]:5000"


def test_single_host_wiring_puts_only_its_groups_on_the_host(catalog: Catalog) -> None:
    wiring = single_host_wiring(catalog, "10.89.0.2", ["mariadb", "rabbitmq"])
    assert wiring["rabbitmq_servers"] == ["10.89.0.2:5672"]
    assert wiring["memcached_servers"] == []
    assert wiring["endpoints"]["network"]["internal"] == "http://10.89.0.2:9696"


def test_notifications_follow_a_planned_consumer(catalog: Catalog) -> None:
    """Every service emits notifications exactly when Ceilometer has hosts."""
    assert NOTIFICATION_CONSUMERS == ("ceilometer",)
    planned = {"rabbitmq": ["10.0.0.5"], "ceilometer_central": ["10.0.0.5"]}
    assert render_wiring(catalog, planned, "10.0.0.5", "10.0.0.5")["notifications"] is True
    # inventory.group_addresses lists a planned service's groups, empty or not.
    unplanned = {"rabbitmq": ["10.0.0.5"], "ceilometer_central": [], "ceilometer_compute": []}
    assert render_wiring(catalog, unplanned, "10.0.0.5", "10.0.0.5")["notifications"] is False
    assert render_wiring(catalog, {}, "10.0.0.5", "10.0.0.5")["notifications"] is False


def test_single_host_notifications_only_with_a_ceilometer_group(catalog: Catalog) -> None:
    """Molecule scenarios (no Ceilometer group) keep notifications off."""
    assert (
        single_host_wiring(catalog, "10.89.0.2", ["rabbitmq", "nova_api"])["notifications"] is False
    )
    assert single_host_wiring(catalog, "10.89.0.2", ["ceilometer_compute"])["notifications"] is True


def test_notifying_services_find_rabbitmq_deployed_before_them(catalog: Catalog) -> None:
    """Glance and the Swift proxy use RabbitMQ only for notifications, so they
    do not depend on it: a consumer brings RabbitMQ into the plan, and the
    catalog's order deploys it before them."""
    for consumer in NOTIFICATION_CONSUMERS:
        names = catalog.closure([consumer, "glance", "swift"])
        assert "rabbitmq" in names
        assert names.index("rabbitmq") < names.index("glance")
        assert names.index("rabbitmq") < names.index("swift")


def test_a_plan_with_ceilometer_turns_notifications_on(
    write_config: Callable[[str], Path],
) -> None:
    """Rendered as a deployment would be once Ceilometer is deployable."""
    raw = yaml.safe_load(CATALOG_PATH.read_text())
    raw["services"]["ceilometer"]["deployable"] = True
    catalog = parse_catalog(raw)
    config = load_config(write_config(f"{HOSTS}services: [glance, swift, ceilometer]\n"), catalog)
    plan = build_plan(config, catalog)
    assert _wiring(config, catalog)["notifications"] is True
    # Glance's and Swift's RabbitMQ users get their passwords like the others'.
    assert {"glance_rabbitmq_password", "swift_rabbitmq_password"} <= set(plan.secrets)
    names = plan.names()
    assert names.index("rabbitmq") < min(names.index("glance"), names.index("swift"))


def test_molecule_uses_the_same_wiring() -> None:
    """The shared Molecule config computes osdeploy_wiring with the catalog's filter."""
    config = yaml.safe_load((ROOT / ".config/molecule/config.yml").read_text())
    group_vars = config["provisioner"]["inventory"]["group_vars"]["all"]
    assert "osdeploy_single_host_wiring(group_names)" in group_vars["osdeploy_wiring"]
