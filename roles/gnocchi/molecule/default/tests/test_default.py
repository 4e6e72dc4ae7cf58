"""Gnocchi answers on its address, and measures go through metricd and back.

Also the tests of the ceph scenario (molecule/ceph/molecule.yml): what
depends on the storage driver reads it from gnocchi.conf.

The round trip is the one Ceilometer and a billing report rely on: an
archive policy, a resource with a metric, measures posted through the API,
aggregated by gnocchi-metricd (never by the API's refresh=true shortcut)
and read back as the policy's aggregates, all through `openstack metric`
and the catalog's internal endpoint.
"""

import json
import time
import uuid
from datetime import datetime

from osdeploy.catalog import load_catalog

PORT = load_catalog()["gnocchi"].ports["api"]
CONF = "/etc/gnocchi/gnocchi.conf"
# metric_processing_delay is 15 s in this scenario (molecule.yml); a scan may
# just have passed when the measures arrive, and metricd's first scan waits
# for its workers to start.
METRICD_TIMEOUT = 150
# Two measures in one second (their mean and max differ) and one later.
MEASURES = [
    ("2026-01-01T00:00:00", 4.0),
    ("2026-01-01T00:00:00.500000", 6.0),
    ("2026-01-01T00:00:07", 10.0),
]


def _points(rows):
    """(timestamp, granularity in seconds, value) of `measures show` rows."""
    return [
        (
            datetime.fromisoformat(r["timestamp"]).replace(tzinfo=None),
            float(r["granularity"]),
            r["value"],
        )
        for r in rows
    ]


def test_version_document(address, curl):
    status, body = curl(f"http://{address}:{PORT}/")
    assert status == 200
    document = json.loads(body)
    assert [(v["id"], v["status"]) for v in document["versions"]] == [("v1.0", "CURRENT")]
    assert document["build"].startswith("4.6")


def test_api_requires_a_token(address, curl):
    status, _ = curl(f"http://{address}:{PORT}/v1/metric")
    assert status == 401


def test_endpoints_in_the_catalog(openstack_admin, address):
    entry = openstack_admin("catalog show gnocchi")
    assert entry["type"] == "metric"
    urls = {e["interface"]: e["url"] for e in entry["endpoints"]}
    assert urls == {
        "public": f"http://{address}:{PORT}",
        "internal": f"http://{address}:{PORT}",
    }


def test_default_archive_policies(openstack_admin):
    """gnocchi-upgrade made Gnocchi's default policies and the catch-all rule."""
    names = {p["name"] for p in openstack_admin("metric archive-policy list")}
    assert {"low", "medium", "high", "bool"} <= names
    rules = openstack_admin("metric archive-policy-rule list")
    assert ("*", "low") in {(r["metric_pattern"], r["archive_policy_name"]) for r in rules}


def test_measures_aggregated_by_metricd(host, openstack_admin):
    policy = f"molecule-{uuid.uuid4().hex[:8]}"
    resource_id = str(uuid.uuid4())
    openstack_admin(
        f"metric archive-policy create {policy} -d granularity:1s,timespan:1h -m mean -m max"
    )
    try:
        resource = openstack_admin(
            f"metric resource create --type generic --create-metric cpu:{policy} {resource_id}"
        )
        assert resource["id"] == resource_id
        args = " ".join(f"-m {ts}@{value}" for ts, value in MEASURES)
        openstack_admin(
            f"metric measures add --resource-id {resource_id} {args} cpu", json_output=False
        )
        show = f"metric measures show --utc --resource-id {resource_id} cpu"
        deadline = time.monotonic() + METRICD_TIMEOUT
        rows = openstack_admin(show)
        while not rows and time.monotonic() < deadline:
            time.sleep(3)
            rows = openstack_admin(show)
        assert _points(rows) == [
            (datetime(2026, 1, 1, 0, 0, 0), 1.0, 5.0),
            (datetime(2026, 1, 1, 0, 0, 7), 1.0, 10.0),
        ], "metricd aggregated nothing (or something else) in time"
        maximum = openstack_admin(f"{show} --aggregation max")
        assert [value for _, _, value in _points(maximum)] == [6.0, 10.0]
    finally:
        openstack_admin(f"metric resource delete {resource_id}", json_output=False)
        # Refused while metricd has not expunged the deleted metric yet
        # (metric_cleanup_delay, 300 s): then the policy stays, harmless.
        host.run(f"openstack --os-cloud osdeploy-admin metric archive-policy delete {policy}")


def test_no_upgrade_pending(host):
    """The role's probe finds nothing for gnocchi-upgrade to do."""
    probe = host.run("runuser -u gnocchi -- /usr/local/sbin/gnocchi-upgrade-check")
    assert probe.rc == 0, probe.stdout + probe.stderr
    assert "incoming storage: 128 sacks" in probe.stdout


def _driver(host):
    """[storage] driver of gnocchi.conf (the only "driver =" line)."""
    return host.check_output(f"sed -n 's/^driver = //p' {CONF}").strip()


def test_config_file(host, service_config_lines):
    lines = service_config_lines(CONF, "gnocchi")
    assert "auth_mode = keystone" in lines
    if _driver(host) == "file":
        assert "file_basepath = /var/lib/gnocchi" in lines
    else:
        assert _driver(host) == "ceph"
        assert {"ceph_pool = metrics", "ceph_username = gnocchi"} <= set(lines)
    assert "debug = false" in lines
    assert not [line for line in lines if "sqlite" in line]
    workers = [int(line.split("=")[1]) for line in lines if line.startswith("workers =")]
    assert len(workers) == 1 and 1 <= workers[0] <= 4


def test_file_storage_not_world_readable(host):
    base = host.file("/var/lib/gnocchi")
    assert (base.user, base.group, base.mode) == ("gnocchi", "gnocchi", 0o750)


def test_ceph_storage_holds_the_sacks_and_the_keyring_is_gnocchis(host):
    """With the ceph driver: the metrics pool is tagged for gnocchi, holds
    the sacks, and only root and the gnocchi group read the user's key."""
    if _driver(host) != "ceph":
        return
    pools = json.loads(host.check_output("ceph osd pool ls detail --format json"))
    metrics = next(p for p in pools if p["pool_name"] == "metrics")
    assert "gnocchi" in metrics["application_metadata"]
    objects = host.check_output("rados --id gnocchi -p metrics ls")
    assert "gnocchi-config" in objects.split()
    keyring = host.file("/etc/ceph/ceph.client.gnocchi.keyring")
    assert (keyring.user, keyring.group, keyring.mode) == ("root", "gnocchi", 0o640)


def test_api_sized_and_bound_by_the_role(host, address):
    pid = host.check_output("systemctl show -p MainPID --value gnocchi-api")
    cmdline = host.file(f"/proc/{pid}/cmdline").content_string.replace("\0", " ")
    assert f"--http-socket {address}:{PORT}" in cmdline
    assert "--processes" in cmdline


def test_listens_on_bind_address_only(listens_only_on_address):
    listens_only_on_address(PORT)


def test_services_enabled_and_running(enabled_and_running):
    enabled_and_running("gnocchi-api", "gnocchi-metricd")
