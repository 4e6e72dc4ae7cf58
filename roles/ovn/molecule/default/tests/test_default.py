"""OVN central answers over TCP, the container is a registered gateway chassis."""

import json
import time

import pytest

NB_PORT = 6641
SB_PORT = 6642
TUNNEL_ADDRESS = "10.89.199.2"
CHASSIS = "osd-molecule-ovn"


def _json_table(host, cmd):
    """Rows of an ovs-vsctl/ovn-*ctl `--format=json` listing as dicts."""
    out = host.check_output(cmd)
    table = json.loads(out)
    return [dict(zip(table["headings"], row, strict=True)) for row in table["data"]]


def _ovs_map(value):
    assert value[0] == "map"
    return dict(value[1])


@pytest.fixture(scope="module")
def datapath(host):
    """What the role should have detected: no kernel module here -> netdev."""
    return "system" if host.file("/sys/module/openvswitch").exists else "netdev"


def test_databases_listen_on_the_address_only(host, address):
    for port in (NB_PORT, SB_PORT):
        assert host.socket(f"tcp://{address}:{port}").is_listening
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_nb_change_reaches_sb_through_northd(host, address):
    nb = f"ovn-nbctl --db=tcp:{address}:{NB_PORT} --timeout=10"
    sb = f"ovn-sbctl --db=tcp:{address}:{SB_PORT} --timeout=10"
    host.check_output(f"{nb} --may-exist ls-add molecule-ls")
    try:
        for _ in range(20):
            found = host.check_output(f"{sb} --bare --columns=external_ids list Datapath_Binding")
            if "molecule-ls" in found:
                break
            time.sleep(0.5)
        assert "molecule-ls" in found
    finally:
        host.check_output(f"{nb} --if-exists ls-del molecule-ls")


def test_chassis_registered_with_geneve_encap(host, address):
    sb = f"ovn-sbctl --db=tcp:{address}:{SB_PORT} --timeout=10 --format=json --data=json"
    chassis = _json_table(host, f"{sb} --columns=name,encaps,other_config list Chassis")
    assert [c["name"] for c in chassis] == [CHASSIS]
    other = _ovs_map(chassis[0]["other_config"])
    assert other["ovn-cms-options"] == "enable-chassis-as-gw"
    assert other["ovn-bridge-mappings"] == "physnet1:br-ex"
    encaps = _json_table(host, f"{sb} --columns=type,ip,chassis_name list Encap")
    assert [(e["type"], e["ip"]) for e in encaps] == [("geneve", TUNNEL_ADDRESS)]


def test_br_int_has_detected_datapath(host, datapath):
    bridges = _json_table(host, "ovs-vsctl --format=json --data=json --columns=name,datapath_type list Bridge")
    types = {b["name"]: b["datapath_type"] for b in bridges}
    assert types["br-int"] == datapath
    assert types["br-phy"] == datapath
    assert types["br-ex"] == datapath


def test_userspace_tso_on_netdev(host, datapath):
    """Without it, TCP from veth/tap ports with checksum offload is dropped."""
    if datapath != "netdev":
        pytest.skip("kernel datapath")
    value = host.check_output("ovs-vsctl get Open_vSwitch . other_config:userspace-tso-enable")
    assert value.strip('"') == "true"
    assert "Userspace TCP Segmentation Offloading support enabled" in host.check_output(
        "cat /var/log/openvswitch/ovs-vswitchd.log"
    )


def test_tunnel_address_moved_to_br_phy(host):
    assert "eth1" in host.check_output("ovs-vsctl list-ports br-phy").split()
    assert f"{TUNNEL_ADDRESS}/24" in host.check_output("ip -4 -o address show dev br-phy")
    assert host.check_output("ip -4 -o address show dev eth1") == ""
    assert "172.24.4.1/24" in host.check_output("ip -4 -o address show dev br-ex")


def test_tunnel_address_keeps_its_mac(host):
    """br-phy wears eth1's MAC: peers that learned it before the move still reach it."""
    eth1 = host.file("/sys/class/net/eth1/address").content_string.strip()
    assert host.file("/sys/class/net/br-phy/address").content_string.strip() == eth1
    assert host.file("/proc/sys/net/ipv4/conf/br-phy/arp_notify").content_string.strip() == "1"


def test_bridges_come_back_after_vswitchd_restart(host):
    """The userspace datapath recreates br-phy without its address on restart."""
    host.check_output("systemctl restart ovs-vswitchd")
    # The restart of the bridge unit (PartOf=) is queued behind vswitchd's.
    for _ in range(60):
        if host.run("systemctl is-active osdeploy-ovs-bridges").stdout.strip() == "active":
            break
        time.sleep(0.5)
    assert host.check_output("systemctl is-active osdeploy-ovs-bridges") == "active"
    assert f"{TUNNEL_ADDRESS}/24" in host.check_output("ip -4 -o address show dev br-phy")
    assert "172.24.4.1/24" in host.check_output("ip -4 -o address show dev br-ex")


# One Ethernet frame on eth1-peer, the wire eth1 is plugged into: broadcast,
# from the MAC given in argv[1], ARP ethertype, zero padding.
SEND_FRAME = (
    "import socket, sys; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); "
    "s.bind(('eth1-peer', 0)); "
    "s.send(b'\\xff' * 6 + bytes.fromhex(sys.argv[1].replace(':', '')) + b'\\x08\\x06' + bytes(46))"
)


def test_own_frames_sent_back_are_not_learned(host):
    """A switch port in hairpin mode (the lab's podman bridges) sends br-phy's own
    broadcasts back in on eth1; learning its own MAC there would make br-phy
    drop every reply to it (new tunnel peers stay unreachable for minutes).
    Runs after the vswitchd restart: the guard comes back with the bridges."""
    mac = host.file("/sys/class/net/eth1/address").content_string.strip()
    port = host.check_output("ovs-vsctl get Interface eth1 ofport")
    for _ in range(3):
        host.check_output(f'python3 -c "{SEND_FRAME}" {mac}')
    time.sleep(1)
    fdb = host.check_output("ovs-appctl fdb/show br-phy").splitlines()[1:]
    learned = [line.split() for line in fdb]
    assert [port, "0", mac] not in [row[:3] for row in learned], learned
    assert f"dl_src={mac} actions=drop" in host.check_output("ovs-ofctl dump-flows br-phy")


def test_system_id_survives_ovsdb_restart(host):
    """Debian's ovsdb-server unit rewrites system-id from system-id.conf."""
    host.check_output("systemctl restart ovsdb-server ovs-vswitchd")
    system_id = host.check_output("ovs-vsctl get Open_vSwitch . external_ids:system-id")
    assert system_id.strip('"') == CHASSIS


def test_ovsdb_answers_on_local_tcp(host):
    """nova's os-vif default: [os_vif_ovs] ovsdb_connection = tcp:127.0.0.1:6640."""
    assert host.socket("tcp://127.0.0.1:6640").is_listening
    assert "br-int" in host.check_output("ovs-vsctl --db=tcp:127.0.0.1:6640 list-br").split()


@pytest.mark.parametrize("service", ["ovn-central", "openvswitch-switch", "ovn-host", "ovn-controller", "ovn-northd"])
def test_services_running(host, service):
    assert host.service(service).is_running
