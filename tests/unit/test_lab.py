"""Pure parts of the lab: naming, addressing, the config it writes."""

from pathlib import Path

import pytest

from osdeploy import lab
from osdeploy.errors import OsdeployError


def test_addresses_start_at_offset_and_skip_taken() -> None:
    hosts = lab.assign_addresses(
        "demo", [("ctl1", ("control",)), ("cmp1", ("compute",))], taken=["10.89.231.11"]
    )
    assert [h.address for h in hosts] == ["10.89.231.12", "10.89.231.13"]
    assert hosts[0].container == "osdeploy-demo-ctl1"


def test_subnet_exhaustion_is_a_clear_error() -> None:
    taken = [str(a) for a in lab.SUBNET.hosts()]
    with pytest.raises(OsdeployError, match="no free address"):
        lab.assign_addresses("demo", [("ctl1", ("control",))], taken=taken)


def test_lab_name_comes_from_the_deployment_directory() -> None:
    assert lab.lab_name(Path("/x/.lab/My Demo")) == "my-demo"
    assert lab.lab_name(Path("/x/e2e")) == "e2e"


def test_lab_config_turns_host_key_checking_off_only_for_the_lab() -> None:
    hosts = lab.assign_addresses("e2e", [("ctl1", ("control", "network"))])
    config = lab.lab_config(hosts, ["keystone"])
    assert config["ssh"]["host_key_checking"] is False
    assert config["hosts"] == [
        {"name": "ctl1", "address": "10.89.231.11", "roles": ["control", "network"]}
    ]
    assert config["name"] == "e2e"


def test_image_recipe_hash_is_stable() -> None:
    assert lab.image_recipe_hash() == lab.image_recipe_hash()
    assert len(lab.image_recipe_hash()) == 16


def test_restart_names_the_hosts_it_knows(tmp_path: Path) -> None:
    with pytest.raises(OsdeployError, match="osdeploy lab up"):
        lab.cmd_restart(tmp_path, [])
    (tmp_path / "osdeploy.yml").write_text(
        "hosts:\n- {name: ctl1, address: 10.89.231.11, roles: [control]}\n"
    )
    with pytest.raises(OsdeployError, match=r"no host 'cmp9' in this lab \(hosts: ctl1\)"):
        lab.cmd_restart(tmp_path, ["cmp9"])


def test_a_lab_address_has_one_mac_for_life() -> None:
    host = lab.LabHost("demo", "cmp1", ("compute",), "10.89.231.12")
    assert host.mac(host.address) == "02:00:0a:59:e7:0c"
    assert host.mac(host.tunnel_address) == "02:00:0a:59:e8:0c"


def test_each_lab_has_its_own_external_network_named_by_its_network_host() -> None:
    hosts = lab.assign_addresses(
        "e2e", [("cmp1", ("compute",)), ("ctl1", ("control", "network"))], taken=["10.89.231.11"]
    )
    assert lab.network_host(hosts).name == "ctl1"
    config = lab.lab_config(hosts, ["keystone"])
    external = config["overrides"]["neutron_external_network"]
    assert external["cidr"] == "172.24.13.0/24"
    assert external["gateway"] == "172.24.13.1"
    assert (external["pool_start"], external["pool_end"]) == ("172.24.13.10", "172.24.13.250")
    bridge = config["overrides"]["ovn_provider_networks"][0]
    assert bridge["address"] == "172.24.13.1/24"
    assert lab.external_route(config) == ("172.24.13.0/24", "10.89.231.13")


def test_the_machine_routes_only_the_labs_own_addresses() -> None:
    hosts = [{"name": "ctl1", "address": "10.89.231.11", "roles": ["network"]}]
    foreign = {"hosts": hosts, "overrides": {"neutron_external_network": {"cidr": "10.0.0.0/24"}}}
    assert lab.external_route(foreign) is None
    assert lab.external_route({"hosts": hosts}) is None
