"""Neutron with ML2/OVN: API, agents, resources in the OVN NB database, and a
VM-like port (veth in a netns, plugged into the netdev br-int the way
libvirt plugs a tap) that gets DHCP from OVN and reaches its router, the
metadata proxy and the external network."""

import json
import shlex
import time

import pytest

PORT = 9696
NB = "6641"
CLOUD = "osdeploy-admin"
PREFIX = "molecule-"


def _os(host, *args):
    """Run the openstack CLI as the admin cloud; parsed JSON output (or None)."""
    cmd = host.run(
        f"openstack --os-cloud {CLOUD} " + " ".join(shlex.quote(str(a)) for a in args)
    )
    assert cmd.rc == 0, f"{args}: {cmd.stderr}"
    return json.loads(cmd.stdout) if "-f" in args and cmd.stdout.strip() else None


def _wait(predicate, timeout=60, step=1.0):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(step)


@pytest.fixture(scope="module")
def resources(host):
    """Network, subnet, router (gateway on the external network public),
    cleaned up afterwards even when a test fails."""
    created = {}
    try:
        created["network"] = _os(host, "network", "create", "-f", "json", PREFIX + "net")
        created["subnet"] = _os(
            host, "subnet", "create", "-f", "json", "--network", PREFIX + "net",
            "--subnet-range", "192.168.77.0/24", PREFIX + "subnet",
        )
        created["router"] = _os(host, "router", "create", "-f", "json", PREFIX + "router")
        _os(host, "router", "add", "subnet", PREFIX + "router", PREFIX + "subnet")
        _os(host, "router", "set", "--external-gateway", "public", PREFIX + "router")
        yield created
    finally:
        host.run("ip netns del molecule-vm")
        host.run("ovs-vsctl --if-exists del-port br-int molecule-tap")
        host.run(f"openstack --os-cloud {CLOUD} port delete {PREFIX}port")
        host.run(f"openstack --os-cloud {CLOUD} router unset --external-gateway {PREFIX}router")
        host.run(
            f"openstack --os-cloud {CLOUD} router remove subnet {PREFIX}router {PREFIX}subnet"
        )
        host.run(f"openstack --os-cloud {CLOUD} router delete {PREFIX}router")
        host.run(f"openstack --os-cloud {CLOUD} network delete {PREFIX}net")


def test_api_listens_on_bind_address_only(host, address):
    cmd = host.run(f"curl -sS -o /dev/null -w '%{{http_code}}' http://{address}:{PORT}/")
    assert cmd.stdout == "200"
    assert not host.socket(f"tcp://0.0.0.0:{PORT}").is_listening


def test_network_endpoints(host, address):
    endpoints = _os(host, "endpoint", "list", "--service", "network", "-f", "json")
    assert {e["Interface"]: e["URL"] for e in endpoints} == {
        "public": f"http://{address}:{PORT}",
        "internal": f"http://{address}:{PORT}",
    }


def test_agents_alive(host):
    def alive():
        agents = _os(host, "network", "agent", "list", "-f", "json")
        return {a["Agent Type"] for a in agents if a["Alive"] in (True, ":-)")}

    types = _wait(lambda: {"OVN Controller Gateway agent", "OVN Metadata agent"} <= alive() and alive())
    assert "OVN Controller Gateway agent" in types
    assert "OVN Metadata agent" in types


def test_external_network(host):
    network = _os(host, "network", "show", "public", "-f", "json")
    assert network["router:external"] in (True, "External")
    assert network["provider:network_type"] == "flat"
    assert network["provider:physical_network"] == "physnet1"


def test_resources_in_ovn_nb(host, address, resources):
    nb = f"ovn-nbctl --db=tcp:{address}:{NB} --timeout=10"
    switches = host.check_output(f"{nb} --bare --columns=name list Logical_Switch")
    assert f"neutron-{resources['network']['id']}" in switches.split()
    routers = host.check_output(f"{nb} --bare --columns=name list Logical_Router")
    assert f"neutron-{resources['router']['id']}" in routers.split()
    ports = _os(host, "port", "list", "--router", PREFIX + "router", "-f", "json")
    lsps = host.check_output(f"{nb} --bare --columns=name list Logical_Switch_Port").split()
    assert ports
    for port in ports:
        assert port["ID"] in lsps
    # The router's gateway port went to the gateway chassis.
    assert host.check_output(f"{nb} --bare --columns=gateway_chassis list Logical_Router_Port")


def test_vm_port_on_netdev_br_int(host, resources):
    """Plug a port as libvirt does for vif_type ovs and see it work."""
    port = _os(
        host, "port", "create", "-f", "json", "--network", PREFIX + "net",
        "--host", host.check_output("hostname"), PREFIX + "port",
    )
    assert port["binding_vif_type"] == "ovs"
    assert port["binding_vif_details"]["datapath_type"] == host.check_output(
        "ovs-vsctl get Bridge br-int datapath_type"
    ).strip('"')
    mac, ip = port["mac_address"], port["fixed_ips"][0]["ip_address"]
    host.check_output("ip netns add molecule-vm")
    host.check_output("ip link add molecule-tap type veth peer name eth0 netns molecule-vm")
    host.check_output(f"ip -n molecule-vm link set eth0 address {mac} mtu 1442 up")
    host.check_output("ip -n molecule-vm link set lo up")
    host.check_output("ip link set molecule-tap up")
    host.check_output(
        "ovs-vsctl -- --may-exist add-port br-int molecule-tap -- set Interface molecule-tap "
        f"external_ids:iface-id={port['id']} external_ids:iface-status=active "
        f"external_ids:attached-mac={mac} external_ids:vm-uuid=molecule"
    )
    status = _wait(lambda: _os(host, "port", "show", port["id"], "-f", "json")["status"] == "ACTIVE")
    assert status, "port did not become ACTIVE"
    # udhcpc hands the lease to a script; this one prints the classless
    # static routes OVN's DHCP sends (metadata via the metadata port, default
    # via the router).
    host.check_output(
        "printf '#!/bin/sh\\n[ \"$1\" = bound ] && echo \"ROUTES=$staticroutes\"\\nexit 0\\n'"
        " > /tmp/molecule-udhcpc.sh && chmod +x /tmp/molecule-udhcpc.sh"
    )
    lease = host.run(
        "ip netns exec molecule-vm busybox udhcpc -i eth0 -n -q -f -t 10 -s /tmp/molecule-udhcpc.sh"
    )
    assert f"lease of {ip} obtained" in lease.stdout + lease.stderr
    routes = next(
        line.split("=", 1)[1].split() for line in lease.stdout.splitlines()
        if line.startswith("ROUTES=")
    )
    routes = dict(zip(routes[::2], routes[1::2], strict=True))
    assert routes["0.0.0.0/0"] == "192.168.77.1"
    host.check_output(f"ip -n molecule-vm address add {ip}/24 dev eth0")
    for destination, via in routes.items():
        host.check_output(f"ip -n molecule-vm route replace {destination} via {via}")
    assert host.run("ip netns exec molecule-vm ping -c 3 -W 2 192.168.77.1").rc == 0
    # TCP (checksum-offloaded by the veth, like a VM's virtio tap) through
    # the metadata proxy: haproxy in the agent's ovnmeta- namespace. There is
    # no nova here, so any HTTP status from haproxy will do.
    assert "169.254.169.254/32" in routes
    meta = _wait(
        lambda: host.run(
            "ip netns exec molecule-vm curl -s -m 5 -o /dev/null -w '%{http_code}' "
            "http://169.254.169.254/latest/meta-data/"
        ).stdout
        not in ("", "000"),
        timeout=60,
        step=2,
    )
    assert meta, "no HTTP answer from the metadata proxy"
    # Out through the router's SNAT to the external network's gateway (br-ex).
    assert host.run("ip netns exec molecule-vm ping -c 3 -W 2 172.24.4.1").rc == 0


@pytest.mark.parametrize(
    "service",
    [
        "neutron-api",
        "neutron-rpc-server",
        "neutron-periodic-workers",
        "neutron-ovn-maintenance-worker",
        "neutron-ovn-metadata-agent",
    ],
)
def test_services_running(host, service):
    assert host.service(service).is_running
    assert host.service(service).is_enabled


def test_config_files(host):
    for path in (
        "/etc/neutron/neutron.conf",
        "/etc/neutron/plugins/ml2/ml2_conf.ini",
        "/etc/neutron/neutron_ovn_metadata_agent.ini",
    ):
        conf = host.file(path)
        assert conf.user == "root"
        assert conf.group == "neutron"
        assert conf.mode == 0o640
    ml2 = host.file("/etc/neutron/plugins/ml2/ml2_conf.ini").content_string
    assert "mechanism_drivers = ovn" in ml2
    assert "max_header_size = 38" in ml2
