"""Cinder keeps volumes, snapshots and backups on Ceph, and their data with them."""

import hashlib
import json
import shlex
import time
import uuid

import pytest

PORT = 8776
#: The existing cluster's pools (prepare.yml, make-ceph-cluster.sh).
VOLUMES = "cloud-volumes"
BACKUPS = "cloud-backups"
BACKEND_HOST = f"rbd:{VOLUMES}"
EXISTING = "/root/existing-ceph"
GIB = 1024**3
MIB = 1024**2
#: Where the test writes its pattern into the first GiB of a volume: one MiB
#: at the start, one in the middle, one at the end.
PATTERN_OFFSETS = (0, 300 * MIB, GIB - MIB)


def _openstack(host, *args, json_output=True):
    """The openstack CLI as the Keystone admin (the admin cloud keystone wrote)."""
    fmt = " -f json" if json_output else ""
    cmd = host.run(f"openstack --os-cloud osdeploy-admin {' '.join(args)}{fmt}")
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout) if json_output else cmd.stdout


def _create_volume(host, name, size, snapshot=None):
    """ID of a new volume, made through openstacksdk as the admin.

    `openstack volume create` (python3-openstackclient 7.4) builds an image
    client first and fails where the catalog has no image service, as here.
    """
    script = (
        "import sys, openstack\n"
        "conn = openstack.connect(cloud='osdeploy-admin')\n"
        "args = dict(name=sys.argv[1], size=int(sys.argv[2]))\n"
        "if len(sys.argv) > 3:\n"
        "    args['snapshot_id'] = sys.argv[3]\n"
        "print(conn.block_storage.create_volume(**args).id)\n"
    )
    return host.check_output(
        f"python3 -c {shlex.quote(script)} {name} {size} {snapshot or ''}"
    ).strip()


def _create_backup(host, name, volume_id, created, timeout=180):
    """ID of a backup of the volume that the scheduler placed on a backup service.

    The scheduler learns of cinder-backup services from their capability
    reports: when it started first, only from the first periodic report,
    1-2 minutes after cinder-backup started. Until then a backup fails at
    once ("Service not found for creating backup"): deleted, tried again.
    """
    deadline = time.monotonic() + timeout
    while True:
        backup = _openstack(host, f"volume backup create --name {name} {volume_id}")["id"]
        created["backups"].append(backup)
        while (shown := _openstack(host, f"volume backup show {backup}"))["status"] == "creating":
            time.sleep(2)
        if "Service not found" not in (shown.get("fail_reason") or ""):
            return backup
        assert time.monotonic() < deadline, shown
        _openstack(host, f"volume backup delete {backup}", json_output=False)
        _wait_gone(host, "volume backup", backup)
        created["backups"].remove(backup)
        _wait_status(host, "volume", volume_id, "available")
        time.sleep(10)


def _wait_status(host, kind, resource_id, status, timeout=180):
    """`openstack <kind> show` until its status is `status` (fails on error states)."""
    deadline = time.monotonic() + timeout
    while True:
        shown = _openstack(host, f"{kind} show {resource_id}")
        if shown["status"] == status:
            return shown
        assert not shown["status"].startswith("error"), shown
        assert time.monotonic() < deadline, f"{kind} {resource_id} stays {shown['status']}"
        time.sleep(2)


def _wait_gone(host, kind, resource_id, timeout=180):
    deadline = time.monotonic() + timeout
    while host.run(f"openstack --os-cloud osdeploy-admin {kind} show {resource_id}").rc == 0:
        assert time.monotonic() < deadline, f"{kind} {resource_id} is not deleted"
        time.sleep(2)


def _rbd_ls(host, pool):
    """RBD images of a pool, as client.admin (the existing cluster's keyring)."""
    return host.check_output(f"rbd -p {pool} ls").split()


def _pattern(index):
    return (f"molecule-cinder-{index:02d}-".encode() * (MIB // 16 + 1))[:MIB]


def _expected_first_gib():
    """sha256 of a 1 GiB volume holding only the pattern (zeros elsewhere)."""
    digest = hashlib.sha256()
    position = 0
    for index, offset in enumerate(PATTERN_OFFSETS):
        zeros = offset - position
        while zeros:
            step = min(zeros, 64 * MIB)
            digest.update(bytes(step))
            zeros -= step
        digest.update(_pattern(index))
        position = offset + MIB
    digest.update(bytes(GIB - position))
    return digest.hexdigest()


def _write_pattern(host, image):
    """The pattern written into the volume's image through librbd, as client.admin."""
    script = (
        "import sys, rados, rbd\n"
        "cluster = rados.Rados(conffile='/etc/ceph/ceph.conf')\n"
        "cluster.connect()\n"
        f"ioctx = cluster.open_ioctx('{VOLUMES}')\n"
        "img = rbd.Image(ioctx, sys.argv[1])\n"
        "for index, offset in enumerate(map(int, sys.argv[2:])):\n"
        "    piece = ('molecule-cinder-%02d-' % index).encode()\n"
        f"    img.write((piece * ({MIB} // 16 + 1))[:{MIB}], offset)\n"
        "img.flush()\n"
        "img.close()\n"
        "ioctx.close()\n"
        "cluster.shutdown()\n"
    )
    offsets = " ".join(str(offset) for offset in PATTERN_OFFSETS)
    host.check_output(f"python3 -c {shlex.quote(script)} {image} {offsets}")


def _sha256_first_gib(host, image):
    """sha256 of the first GiB of the volume's image (rbd export, as client.admin)."""
    # No pipefail: head ends the export early on a larger image.
    out = host.check_output(
        f"rbd export {VOLUMES}/{image} - 2>/dev/null | head -c {GIB} | sha256sum"
    )
    return out.split()[0]


def test_versions_without_a_token(host, address, curl):
    status, body = curl(f"http://{address}:{PORT}/")
    assert status == 300
    current = [v for v in json.loads(body)["versions"] if v["status"] == "CURRENT"]
    assert [v["id"] for v in current] == ["v3.0"]


def test_api_requires_a_token(host, address, curl):
    status, _ = curl(f"http://{address}:{PORT}/v3/volumes")
    assert status == 401


def test_volume_services_up(host):
    deadline = time.monotonic() + 90
    while True:
        services = _openstack(host, "volume service list")
        seen = {(s["Binary"], s["Host"]): s["State"] for s in services}
        wanted = {
            ("cinder-scheduler", "osd-molecule"),
            ("cinder-volume", f"{BACKEND_HOST}@ceph"),
            ("cinder-backup", "osd-molecule"),
        }
        if all(seen.get(key) == "up" for key in wanted) or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert {key: seen.get(key) for key in wanted} == dict.fromkeys(wanted, "up"), seen
    # Nothing else (e.g. an lvm backend from Debian's shipped cinder.conf).
    assert set(seen) == wanted


def test_scheduler_knows_the_backend_pool(host):
    """The scheduler places volumes only on pools whose capabilities it has
    had from cinder-volume; "up" says only that heartbeats arrive. Until
    then a new volume goes to error (seen once: "No valid backend")."""
    pool = f"{BACKEND_HOST}@ceph#ceph"
    deadline = time.monotonic() + 150
    while True:
        pools = [p["Name"] for p in _openstack(host, "volume backend pool list")]
        if pools == [pool] or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert pools == [pool]


def test_endpoints_in_the_catalog(host, address):
    project_id = _openstack(host, "token issue")["project_id"]
    entry = _openstack(host, "catalog show volumev3")
    assert entry["type"] == "volumev3"
    assert entry["name"] == "cinderv3"
    urls = {e["interface"]: e["url"] for e in entry["endpoints"]}
    # Keystone fills in the token's project.
    assert urls == {
        "public": f"http://{address}:{PORT}/v3/{project_id}",
        "internal": f"http://{address}:{PORT}/v3/{project_id}",
    }


def test_volume_type_of_the_backend(host):
    vtype = _openstack(host, "volume type show ceph")
    assert vtype["is_public"] is True
    properties = vtype["properties"]
    if isinstance(properties, str):  # older clients print key='value'
        assert properties == "volume_backend_name='ceph'"
    else:
        assert properties == {"volume_backend_name": "ceph"}


@pytest.fixture(scope="module")
def created(host):
    """IDs of what the lifecycle test made, deleted at the end in dependency order."""
    made = {"backups": [], "volumes_late": [], "snapshots": [], "volumes": []}
    yield made
    for kind, key in (
        ("volume backup", "backups"),
        ("volume", "volumes_late"),
        ("volume snapshot", "snapshots"),
        ("volume", "volumes"),
    ):
        for resource_id in made[key]:
            host.run(f"openstack --os-cloud osdeploy-admin {kind} delete {resource_id}")
            _wait_gone(host, kind, resource_id)


def test_volume_snapshot_backup_restore_roundtrip(host, created):
    name = f"molecule-{uuid.uuid4().hex[:8]}"
    expected = _expected_first_gib()

    # A volume of the default type lands in the volumes pool as volume-<id>.
    volume_id = _create_volume(host, name, 1)
    created["volumes"].append(volume_id)
    volume = _wait_status(host, "volume", volume_id, "available")
    assert volume["type"] == "ceph"
    assert volume["os-vol-host-attr:host"] == f"{BACKEND_HOST}@ceph#ceph"
    image = f"volume-{volume['id']}"
    assert image in _rbd_ls(host, VOLUMES)

    _write_pattern(host, image)
    assert _sha256_first_gib(host, image) == expected

    # A snapshot, and a volume made from it (an RBD clone) with the same data.
    snapshot = _openstack(host, f"volume snapshot create --volume {volume['id']} {name}-snap")
    created["snapshots"].append(snapshot["id"])
    _wait_status(host, "volume snapshot", snapshot["id"], "available")
    clone_id = _create_volume(host, f"{name}-clone", 1, snapshot=snapshot["id"])
    created["volumes_late"].append(clone_id)
    _wait_status(host, "volume", clone_id, "available")
    assert _sha256_first_gib(host, f"volume-{clone_id}") == expected

    # Extended to 2 GiB, the data stays.
    _openstack(host, f"volume set --size 2 {volume['id']}", json_output=False)
    deadline = time.monotonic() + 120
    while (shown := _openstack(host, f"volume show {volume['id']}"))["size"] != 2:
        assert time.monotonic() < deadline, shown
        time.sleep(2)
    _wait_status(host, "volume", volume["id"], "available")
    size = host.check_output(f"rbd info --format json {VOLUMES}/{image}")
    assert json.loads(size)["size"] == 2 * GIB
    assert _sha256_first_gib(host, image) == expected

    # A backup lands in the backups pool.
    backup = _create_backup(host, f"{name}-backup", volume["id"], created)
    _wait_status(host, "volume backup", backup, "available", timeout=300)
    assert _rbd_ls(host, BACKUPS)

    # Restored to a new volume: the same first GiB.
    restore = _openstack(host, f"volume backup restore {backup} {name}-restored")
    created["volumes_late"].append(restore["volume_id"])
    restored = _wait_status(host, "volume", restore["volume_id"], "available", timeout=300)
    assert restored["size"] == 2
    _wait_status(host, "volume backup", backup, "available")
    assert _sha256_first_gib(host, f"volume-{restored['id']}") == expected


def test_everything_deleted_leaves_the_pools_empty(host, created):
    # Runs after the round trip (file order): delete what it made, in order.
    for kind, key in (
        ("volume backup", "backups"),
        ("volume", "volumes_late"),
        ("volume snapshot", "snapshots"),
        ("volume", "volumes"),
    ):
        for resource_id in created[key]:
            _openstack(host, f"{kind} delete {resource_id}", json_output=False)
            _wait_gone(host, kind, resource_id)
        created[key] = []
    assert _rbd_ls(host, VOLUMES) == []
    assert _rbd_ls(host, BACKUPS) == []


def test_schema_at_the_package_head(schema_at_head):
    schema_at_head(
        "runuser -u cinder -- cinder-manage", "/usr/lib/python3/dist-packages/cinder/db/migrations"
    )


def test_config_file(service_config_lines):
    lines = service_config_lines("/etc/cinder/cinder.conf", "cinder")
    assert "enabled_backends = ceph" in lines
    assert "default_volume_type = ceph" in lines
    assert f"backend_host = {BACKEND_HOST}" in lines
    assert "backup_driver = cinder.backup.drivers.ceph.CephBackupDriver" in lines
    # Debian's lvm backend is gone.
    assert "[lvm]" not in lines


@pytest.mark.parametrize("user", ["cinder", "cinder-backup"])
def test_ceph_keyrings(host, user):
    keyring = host.file(f"/etc/ceph/ceph.client.{user}.keyring")
    assert keyring.user == "root"
    assert keyring.group == "cinder"
    assert keyring.mode == 0o640
    text = host.check_output(f"runuser -u cinder -- cat {keyring.path}")
    assert f"[client.{user}]" in text
    # The existing cluster's key of the user, as its keyring file gave it.
    key = host.check_output(f"ceph auth get-key client.{user}").strip()
    assert f"key = {key}" in text


def test_ceph_conf_is_the_existing_clusters(host):
    # Copied as the site gave it, not written from the inventory.
    conf = host.file("/etc/ceph/ceph.conf")
    assert conf.content_string == host.file(f"{EXISTING}/ceph.conf").content_string
    assert conf.mode == 0o644


def test_cinder_user_is_limited_to_its_pools(host):
    # As cinder-volume opens the cluster: client.cinder, the keyring the role wrote.
    rbd = "runuser -u cinder -- rbd --id cinder"
    assert host.run(f"{rbd} ls --pool {VOLUMES}").rc == 0
    assert host.run(f"{rbd} ls --pool {BACKUPS}").rc != 0


def test_no_secret_readable_by_others(host):
    for path in (
        "/etc/cinder/cinder.conf",
        "/etc/ceph/ceph.client.cinder.keyring",
        "/etc/ceph/ceph.client.cinder-backup.keyring",
    ):
        assert host.file(path).mode & 0o007 == 0, path
    # Readable by all, and no password in it.
    defaults = host.file("/etc/default/cinder-api").content_string
    assert "molecule-" not in defaults
    assert "--processes" in defaults


def test_uwsgi_sized_down(host):
    # Debian's ini says 8 processes: the role's DAEMON_ARGS give min(vCPUs, 4).
    workers = min(int(host.check_output("nproc")), 4)
    processes = host.check_output("pgrep -c -f '[c]inder-api-uwsgi.ini'")
    assert int(processes) == workers + 1  # and the master


def test_listens_on_bind_address_only(listens_only_on_address):
    listens_only_on_address(PORT)


def test_services_enabled_and_running(enabled_and_running):
    enabled_and_running("cinder-api", "cinder-scheduler", "cinder-volume", "cinder-backup")
