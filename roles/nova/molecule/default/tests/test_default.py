"""Nova's control and compute sides on one host, checked through real calls."""

import json

import pytest

CLOUD = "osdeploy-admin"


def _openstack(host, *args):
    """JSON output of an openstack CLI call as Keystone's admin (root's clouds.yaml)."""
    cmd = host.run(f"openstack --os-cloud {CLOUD} {' '.join(args)} -f json")
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout)


@pytest.fixture(scope="module")
def hostname(host):
    """Name of the host's nova services: its inventory name (the container name)."""
    return host.backend.get_hostname()


def test_compute_services_are_up(host, hostname):
    services = _openstack(host, "compute service list")
    states = {(s["Binary"], s["Host"]): (s["Status"], s["State"]) for s in services}
    for binary in ("nova-conductor", "nova-scheduler", "nova-compute"):
        assert states.get((binary, hostname)) == ("enabled", "up"), states


def test_hypervisor_is_qemu_and_up(host, address):
    hypervisors = _openstack(host, "hypervisor list")
    assert len(hypervisors) == 1, hypervisors
    hypervisor = hypervisors[0]
    assert hypervisor["Hypervisor Type"] == "QEMU"
    assert hypervisor["State"] == "up"
    assert hypervisor["Host IP"] == address


def test_placement_has_the_compute_node(host):
    providers = _openstack(host, "resource provider list")
    assert len(providers) == 1, providers
    inventory = _openstack(host, "resource provider inventory list", providers[0]["uuid"])
    classes = {row["resource_class"]: row for row in inventory}
    assert {"VCPU", "MEMORY_MB"} <= set(classes)
    assert classes["VCPU"]["total"] >= 1
    assert classes["MEMORY_MB"]["total"] > 0


def test_host_is_mapped_to_cell1(host, hostname):
    out = host.check_output("runuser -u nova -- nova-manage cell_v2 list_hosts")
    rows = [
        [c.strip() for c in line.split("|")[1:-1]]
        for line in out.splitlines()
        if line.startswith("|")
    ]
    assert ["cell1", hostname] in [[row[0], row[2]] for row in rows[1:]], out


def test_cells(host):
    out = host.check_output("runuser -u nova -- nova-manage cell_v2 list_cells")
    names = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("|")]
    assert sorted(names[1:]) == ["cell0", "cell1"]


def test_compute_endpoints_in_the_catalog(host, address):
    entry = _openstack(host, "catalog show compute")
    urls = {e["interface"]: e["url"] for e in entry["endpoints"]}
    assert urls == {
        "public": f"http://{address}:8774/v2.1",
        "internal": f"http://{address}:8774/v2.1",
    }


def test_compute_api_serves_with_a_token_only(host, address, curl):
    # (server list would need an image service endpoint: glance is not here)
    assert isinstance(_openstack(host, "flavor list"), list)
    status, _ = curl(f"http://{address}:8774/v2.1/servers")
    assert status == 401


def test_compute_api_version_document(host, address, curl):
    status, body = curl(f"http://{address}:8774/")
    assert status == 200
    versions = {v["id"]: v for v in json.loads(body)["versions"]}
    assert versions["v2.1"]["status"] == "CURRENT"


def test_metadata_api_answers(host, address, curl):
    status, body = curl(f"http://{address}:8775/")
    assert status == 200
    assert "latest" in body.split()


def test_novncproxy_serves_the_console_page(host, address, curl):
    status, body = curl(f"http://{address}:6080/vnc_auto.html")
    assert status == 200
    assert "noVNC" in body


@pytest.mark.parametrize("port", [8774, 8775, 6080])
def test_listens_on_bind_address_only(listens_only_on_address, port):
    listens_only_on_address(port)


def test_unused_console_proxies_are_off(host):
    for name in ("nova-spicehtml5proxy", "nova-serialproxy"):
        service = host.service(name)
        assert not service.is_running
        assert not service.is_enabled
    for port in (6082, 6083):
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_libvirt_answers_and_listens_on_no_tcp_port(host):
    cmd = host.run("virsh -c qemu:///system version")
    assert cmd.rc == 0, cmd.stderr
    assert "QEMU" in cmd.stdout
    for port in (16509, 16514):
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_virt_type_detected(host):
    """This machine's /dev/kvm is paravirtual (no vmx/svm): auto must pick qemu."""
    flags = host.run("grep -c -w -E 'vmx|svm' /proc/cpuinfo").stdout.strip()
    expected = (
        ("kvm", "host-model")
        if int(flags or 0) > 0 and host.file("/dev/kvm").exists
        else ("qemu", "none")
    )
    lines = [
        line.strip()
        for line in host.file("/etc/nova/nova-compute.conf").content_string.splitlines()
    ]
    assert f"virt_type = {expected[0]}" in lines
    assert f"cpu_mode = {expected[1]}" in lines


def test_live_migration_transport_reaches_libvirt(host, address):
    """What the source's libvirtd (root) does: nova@host over SSH with nova's key,
    host key checked against ssh_known_hosts, no prompt; and nova's own SSH (resize)."""
    conf = host.file("/etc/nova/nova-compute.conf").content_string
    uri = next(
        line.split("=", 1)[1].strip()
        for line in conf.splitlines()
        if line.startswith("live_migration_uri")
    )
    cmd = host.run(f"virsh -c '{uri % address}&no_tty=1' list --all")
    assert cmd.rc == 0, cmd.stderr
    cmd = host.run(f"sudo -u nova ssh -o BatchMode=yes {address} true")
    assert cmd.rc == 0, cmd.stderr


@pytest.mark.parametrize("path", ["/etc/nova/nova.conf", "/etc/nova/nova-compute.conf"])
def test_config_files(host, path):
    conf = host.file(path)
    assert conf.user == "root"
    assert conf.group == "nova"
    assert conf.mode == 0o640


def test_ssh_private_key_is_private(host):
    key = host.file("/var/lib/nova/.ssh/id_ed25519")
    assert key.user == "nova"
    assert key.mode == 0o600
