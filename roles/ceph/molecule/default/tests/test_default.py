"""Checks of the ceph role on a converged one-host cluster.

One container is monitor, manager and OSD host (BlueStore OSDs on a file
and on a whole disk, a loop device) and the client host of cinder, glance
and nova. There is no kernel
RBD here: data goes through librbd (rbd import/export), as QEMU and the
OpenStack services use it.
"""

import json
import subprocess
import time

MON = "osd-molecule-ceph"
#: The container's three monitor names (molecule.yml) and their addresses.
MONS = {MON: "192.0.2.10", f"{MON}-b": "192.0.2.11", f"{MON}-c": "192.0.2.12"}
OSD_FILE = "/var/lib/ceph/osd-files/osd0.img"
POOLS = ("volumes", "images", "vms", "backups")
KEYRINGS = {"cinder": "cinder", "cinder-backup": "cinder", "glance": "glance", "nova": "nova"}


def ceph(host, *args, user="admin"):
    """The JSON answer of a ceph command run as client.<user>."""
    command = " ".join(["ceph", "--connect-timeout", "10", "--id", user, *args, "--format", "json"])
    return json.loads(host.check_output(command))


def wait_until(check, timeout=180, what="condition"):
    """Poll check() (returning a true value when done) every 2 s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what} not reached in {timeout} s"
        time.sleep(2)


def wait_healthy(host, timeout=180):
    """HEALTH_OK within timeout (new pools' PGs may still be peering)."""
    deadline = time.monotonic() + timeout
    while True:
        result = host.run("ceph --connect-timeout 10 health --format json")
        if result.rc == 0 and json.loads(result.stdout)["status"] == "HEALTH_OK":
            return json.loads(result.stdout)
        detail = host.run("ceph --connect-timeout 10 health detail")
        assert time.monotonic() < deadline, detail.stdout + detail.stderr
        time.sleep(2)


def test_health_ok(host):
    health = wait_healthy(host)
    # The one check muted (ceph_health_mutes: Debian 13's ceph-mgr cannot
    # load its Python modules); any other check raised would not be.
    assert {m["code"] for m in health["mutes"]} == {"MGR_MODULE_DEPENDENCY"}
    assert set(health["checks"]) <= {"MGR_MODULE_DEPENDENCY"}
    assert all(check["muted"] for check in health["checks"].values())
    # Every placement group active and clean (not only not yet reported).
    wait_until(
        lambda: host.check_output("ceph pg stat").split(";")[0].endswith(" active+clean"),
        120,
        "all PGs active+clean",
    )


def test_units_enabled_and_running(enabled_and_running):
    enabled_and_running(
        *(f"ceph-mon@{name}" for name in MONS),
        *(f"ceph-mgr@{name}" for name in MONS),
        "ceph-osd@0",
        "ceph-osd@1",
    )


def test_three_monitors_in_quorum_and_managers(host):
    status = ceph(host, "quorum_status")
    assert sorted(status["quorum_names"]) == sorted(MONS)
    addresses = {m["name"]: m["public_addrs"]["addrvec"] for m in status["monmap"]["mons"]}
    for name, address in MONS.items():
        assert [a["addr"] for a in addresses[name]] == [f"{address}:3300", f"{address}:6789"]
        # Listens on its address, both messenger protocols.
        assert host.socket(f"tcp://{address}:3300").is_listening
        assert host.socket(f"tcp://{address}:6789").is_listening
    manager = ceph(host, "mgr", "dump")
    assert manager["available"]
    assert manager["active_name"] in MONS
    assert sorted([manager["active_name"], *(s["name"] for s in manager["standbys"])]) == sorted(
        MONS
    )


def test_quorum_survives_a_monitor_down(host):
    """Two of three monitors keep the quorum: the cluster answers and takes writes."""
    down = f"{MON}-c"
    host.check_output(f"systemctl stop ceph-mon@{down}")
    try:
        wait_until(
            lambda: sorted(ceph(host, "quorum_status")["quorum_names"]) == [MON, f"{MON}-b"],
            120,
            "quorum of two",
        )
        round_trip(host, "cinder", "volumes/molecule-quorum")
        host.check_output("rbd --id cinder rm volumes/molecule-quorum")
    finally:
        host.check_output(f"systemctl start ceph-mon@{down}")
    wait_until(
        lambda: sorted(ceph(host, "quorum_status")["quorum_names"]) == sorted(MONS),
        120,
        "quorum of three again",
    )


def disk_of(host):
    """The whole disk of prepare.yml (a loop device)."""
    return json.loads(host.file("/etc/ansible/facts.d/molecule.fact").content_string)["disk"]


def test_osds_on_a_file_and_on_a_whole_disk_are_up_and_in(host):
    osds = ceph(host, "osd", "dump")["osds"]
    assert [(o["osd"], o["up"], o["in"]) for o in osds] == [(0, 1, 1), (1, 1, 1)]
    for osd, backing in ((0, OSD_FILE), (1, disk_of(host))):
        assert ceph(host, "osd", "metadata", str(osd))["osd_objectstore"] == "bluestore"
        block = host.file(f"/var/lib/ceph/osd/ceph-{osd}/block")
        assert block.is_symlink and block.linked_to == backing
        node = host.file(backing)
        assert (node.user, node.group, node.mode) == ("ceph", "ceph", 0o600), backing
        assert host.file(f"/var/lib/ceph/osd/ceph-{osd}/ready").exists
    assert host.run(f"test -b {disk_of(host)}").rc == 0
    # The label that marks the disk as this OSD's, which a re-run reads.
    label = json.loads(host.check_output(f"ceph-bluestore-tool show-label --dev {disk_of(host)}"))
    assert label[disk_of(host)]["whoami"] == "1"


def test_clients_from_mimic_on_for_rbd_v2_clones(host):
    assert ceph(host, "osd", "dump")["require_min_compat_client"] == "mimic"


def test_pools_sized_for_one_host_and_tagged_rbd(host):
    pools = {p["pool_name"]: p for p in ceph(host, "osd", "pool", "ls", "detail")}
    for name in POOLS:
        assert (pools[name]["size"], pools[name]["min_size"]) == (1, 1), name
        assert pools[name]["pg_num"] == 32, name
        assert "rbd" in pools[name]["application_metadata"], name


def test_users_limited_to_their_pools(host):
    caps = {user: ceph(host, "auth", "get", f"client.{user}")[0]["caps"] for user in KEYRINGS}
    assert caps["glance"] == {
        "mon": "profile rbd",
        "osd": "profile rbd pool=images",
        "mgr": "profile rbd pool=images",
    }
    assert caps["cinder"]["osd"] == (
        "profile rbd pool=volumes, profile rbd pool=vms, profile rbd-read-only pool=images"
    )
    assert caps["cinder-backup"]["osd"] == "profile rbd pool=backups"
    assert caps["nova"]["osd"] == "profile rbd pool=vms, profile rbd-read-only pool=images"


def test_keyrings_and_config_files(host):
    for user, group in KEYRINGS.items():
        keyring = host.file(f"/etc/ceph/ceph.client.{user}.keyring")
        assert (keyring.user, keyring.group, keyring.mode) == ("root", group, 0o640), user
        assert f"[client.{user}]" in keyring.content_string
    admin = host.file("/etc/ceph/ceph.client.admin.keyring")
    assert (admin.user, admin.group, admin.mode) == ("root", "root", 0o600)
    conf = host.file("/etc/ceph/ceph.conf")
    assert conf.mode == 0o644
    mon_host = " ".join(f"[v2:{a}:3300,v1:{a}:6789]" for a in MONS.values())
    assert f"mon_host = {mon_host}" in conf.content_string.splitlines()
    assert "public_addr" not in conf.content_string  # removed by ceph_conf_overrides
    # The bootstrap keyrings (mon. and admin keys) are gone.
    for name in MONS:
        assert not host.file(f"/var/lib/ceph/tmp/ceph-{name}.mon.keyring").exists


def round_trip(host, user, image, size_mb=8):
    """Write random data into image as client.<user> and read it back; return its sha256."""
    source = f"/tmp/molecule-{user}.in"
    host.check_output(f"dd if=/dev/urandom of={source} bs=1M count={size_mb} status=none")
    host.check_output(f"rbd --id {user} import {source} {image}")
    exported = f"/tmp/molecule-{user}.out"
    host.check_output(f"rm -f {exported}; rbd --id {user} export {image} {exported}")
    checksums = host.check_output(f"sha256sum {source} {exported}").split()
    host.check_output(f"rm -f {source} {exported}")
    assert checksums[0] == checksums[2], f"{image} read back differs"
    return checksums[0]


def test_cinder_writes_and_reads_a_volume_through_librbd(host):
    host.run("rbd --id cinder rm volumes/molecule-roundtrip")
    round_trip(host, "cinder", "volumes/molecule-roundtrip")
    host.check_output("rbd --id cinder rm volumes/molecule-roundtrip")


def test_glance_refused_on_volumes_allowed_on_images(host):
    denied = host.run("rbd --id glance create --size 1M volumes/molecule-glance")
    assert denied.rc != 0
    assert "Operation not permitted" in denied.stderr
    assert host.run("rbd --id glance ls volumes").rc != 0
    host.run("rbd --id glance rm images/molecule-glance")
    host.check_output("rbd --id glance create --size 1M images/molecule-glance")
    host.check_output("rbd --id glance rm images/molecule-glance")
    # Nova may read images (copy-on-write clones) but not write there.
    assert host.run("rbd --id nova create --size 1M images/molecule-nova").rc != 0


def test_zz_cluster_and_data_survive_a_restart(host):
    """Last: restarts the container; OSDs on file and disk, the data and every daemon come back."""
    host.run("rbd --id cinder rm volumes/molecule-restart")
    checksum = round_trip(host, "cinder", "volumes/molecule-restart")
    subprocess.run(["podman", "restart", host.backend.name], check=True, capture_output=True)
    wait_until(
        lambda: host.run("ceph --connect-timeout 5 osd stat").rc == 0, 120, "monitor answers"
    )
    # The disk's node is root:disk again, as after a boot: the unit's
    # drop-in gives it back to ceph before the OSD starts.
    wait_until(
        lambda: [o["up"] for o in ceph(host, "osd", "dump")["osds"]] == [1, 1], 120, "OSDs up"
    )
    node = host.file(disk_of(host))
    assert (node.user, node.group) == ("ceph", "ceph")
    wait_until(
        lambda: sorted(ceph(host, "quorum_status")["quorum_names"]) == sorted(MONS),
        120,
        "quorum of three",
    )
    wait_healthy(host)
    exported = "/tmp/molecule-restart.out"
    host.check_output(f"rm -f {exported}")
    host.check_output(f"rbd --id cinder export volumes/molecule-restart {exported}")
    assert host.check_output(f"sha256sum {exported}").split()[0] == checksum
    host.check_output(f"rm -f {exported}; rbd --id cinder rm volumes/molecule-restart")
