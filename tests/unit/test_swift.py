"""Swift's devices in osdeploy.yml, and the ring module's device plan."""

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from conftest import BASE_CONFIG, load_module

from osdeploy.catalog import Catalog
from osdeploy.config import Config, load_config
from osdeploy.errors import ConfigError
from osdeploy.inventory import HOSTS_FILE, load_defaults, render_files
from osdeploy.plan import build_plan

#: conftest's minimal config with a storage host.
HOSTS = BASE_CONFIG.replace("roles: [compute]}", "roles: [compute, storage]}")


@pytest.fixture
def load(write_config: Callable[[str], Path], catalog: Catalog) -> Callable[[str], Config]:
    def load(text: str) -> Config:
        return load_config(write_config(text), catalog)

    return load


@pytest.fixture(scope="module")
def ring() -> ModuleType:
    return load_module("roles/swift/library/osdeploy_swift_ring.py")


def test_swift_devices_per_storage_host(load: Callable[[str], Config], catalog: Catalog) -> None:
    text = HOSTS.replace(
        "roles: [compute, storage]}",
        "roles: [compute, storage], swift_devices: [sdb, {name: sdc, weight: 200, zone: 2}]}",
    )
    config = load(f"{text}services: [keystone]\n")
    assert config.host("cmp1").swift_devices == (
        {"name": "sdb"},
        {"name": "sdc", "weight": 200, "zone": 2},
    )
    files = render_files(config, build_plan(config, catalog), catalog, load_defaults())
    hosts = yaml.safe_load(files[HOSTS_FILE])["all"]["hosts"]
    assert hosts["cmp1"]["swift_devices"] == [
        {"name": "sdb"},
        {"name": "sdc", "weight": 200, "zone": 2},
    ]
    assert "swift_devices" not in hosts["ctl1"]


def test_bad_swift_devices(load: Callable[[str], Config]) -> None:
    text = HOSTS.replace(
        "roles: [control, network]}",
        "roles: [control, network], swift_devices: [sdb, ../x, sdb, {name: sdc, weight: 0},"
        " {name: sdd, size: 1G}]}",
    )
    with pytest.raises(ConfigError) as caught:
        load(f"{text}services: [keystone]\n")
    assert [f"{p.path}: {p.message}" for p in caught.value.problems] == [
        "hosts[0].swift_devices: only a storage host holds Swift devices",
        "hosts[0].swift_devices[1]: invalid device name '../x'",
        "hosts[0].swift_devices[2]: sdb listed twice",
        "hosts[0].swift_devices[3].weight: must be a whole number above 0, not 0",
        "hosts[0].swift_devices[4].size: unknown key",
    ]


def _dev(dev_id: int, ip: str, zone: int, device: str = "d1", weight: float = 100.0) -> dict:
    return {"id": dev_id, "ip": ip, "port": 6200, "device": device, "zone": zone, "weight": weight}


def test_new_hosts_get_the_next_free_zones(ring: ModuleType) -> None:
    wanted = [
        {"ip": "10.0.0.1", "device": "d1"},
        {"ip": "10.0.0.1", "device": "d2"},
        {"ip": "10.0.0.2", "device": "d1"},
    ]
    adds, updates, unlisted = ring.plan_devices([], wanted, 6200)
    assert [(d["ip"], d["device"], d["zone"]) for d in adds] == [
        ("10.0.0.1", "d1", 1),
        ("10.0.0.1", "d2", 1),
        ("10.0.0.2", "d1", 2),
    ]
    assert (updates, unlisted) == ([], [])


def test_a_host_keeps_its_zone_and_changes_only_what_differs(ring: ModuleType) -> None:
    existing = [_dev(0, "10.0.0.1", 3), None, _dev(2, "10.0.0.2", 1), _dev(3, "10.0.0.9", 2)]
    wanted = [
        {"ip": "10.0.0.1", "device": "d1", "weight": 100},
        {"ip": "10.0.0.1", "device": "d2"},
        {"ip": "10.0.0.2", "device": "d1", "weight": 200},
        {"ip": "10.0.0.3", "device": "d1"},
        {"ip": "10.0.0.4", "device": "d1", "zone": 7},
    ]
    adds, updates, unlisted = ring.plan_devices(existing, wanted, 6200)
    assert [(d["ip"], d["device"], d["zone"]) for d in adds] == [
        ("10.0.0.1", "d2", 3),
        ("10.0.0.3", "d1", 4),
        ("10.0.0.4", "d1", 7),
    ]
    assert updates == [(2, {"weight": 200.0})]
    assert unlisted == ["10.0.0.9:6200/d1"]
