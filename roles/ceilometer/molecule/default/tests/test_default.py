"""Ceilometer's agents run, and a notification becomes a measure in Gnocchi.

The round trip is the one a billing report relies on: a real notification
(Glance's image.upload, as glance-api emits it with driver messagingv2)
sent into the real broker on ceilometer's own vhost, turned into an
image.size sample by the notification agent's meter definitions
(ceilometer/data/meters.d/meters.yaml), published by the Gnocchi publisher
(pipeline.yaml) as a resource of type image with an image.size metric,
aggregated by gnocchi-metricd and read back through `openstack metric`.
"""

import json
import time
import uuid
from pathlib import Path

CONF = "/etc/ceilometer/ceilometer.conf"
# The role's probe of pending ceilometer-upgrade work (run from here as the
# role runs it from the controller).
PROBE = Path(__file__).resolve().parents[3] / "files" / "ceilometer-upgrade-check.py"
LOGS = "/var/log/ceilometer"
AGENTS = ("ceilometer-agent-notification", "ceilometer-agent-central")
# The measure must pass the notification agent, the publisher (which
# creates the resource and the metric first) and metricd's next scan (15 s
# in this scenario): well under this on an idle host.
ROUND_TRIP_TIMEOUT = 180
# ceilometer_polling_interval is 60 in this scenario (molecule.yml); the
# first cycle starts after the agent's start-up.
POLLING_TIMEOUT = 150

# Resource types ceilometer-upgrade creates (gnocchi_client.resources_initial
# and the create_resource_type operations) and attributes its updates add.
RESOURCE_TYPES = {
    "image",
    "instance",
    "instance_disk",
    "instance_network_interface",
    "volume",
    "swift_account",
    "network",
    "identity",
    "stack",
    "host",
    "nova_compute",
    "volume_provider",
    "volume_provider_pool",
    "ipmi_sensor",
}
ARCHIVE_POLICIES = {
    "ceilometer-low",
    "ceilometer-low-rate",
    "ceilometer-high",
    "ceilometer-high-rate",
}

# Sends one notification as glance-api does: on the /glance vhost (the
# messaging_urls line of ceilometer.conf that ends with it: the ceilometer
# user may write there, and no password passes a command line), control
# exchange "glance", topic "notifications", driver messagingv2.
SEND_NOTIFICATION = """
import json, sys
import oslo_messaging
from oslo_config import cfg

with open("/etc/ceilometer/ceilometer.conf") as conf_file:
    urls = [line.split("=", 1)[1].strip() for line in conf_file
            if line.startswith("messaging_urls =")]
url = next(u for u in urls if u.endswith("//glance"))
oslo_messaging.set_transport_defaults("glance")
conf = cfg.ConfigOpts()
conf([], project="osdeploy-molecule")
transport = oslo_messaging.get_notification_transport(conf, url=url)
notifier = oslo_messaging.Notifier(
    transport, publisher_id="image.osd-molecule", driver="messagingv2",
    topics=["notifications"])
notifier.info({}, sys.argv[1], json.loads(sys.argv[2]))
transport.cleanup()
"""


def _image_size_measures(host, image_id, timeout):
    """The image.size measures of the image in Gnocchi, once there are any
    (polled every 5 s up to timeout); [] when none came."""
    show = f"metric measures show --utc --resource-id {image_id} image.size -f json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = host.run(f"openstack --os-cloud osdeploy-admin {show}")
        rows = json.loads(result.stdout) if result.rc == 0 else []
        if rows:
            return rows
        time.sleep(5)
    return []


def _run(host, command):
    result = host.run(command)
    assert result.rc == 0, f"{command}: {result.stdout}{result.stderr}"
    return result.stdout


def test_agents_enabled_and_running(enabled_and_running):
    enabled_and_running(*AGENTS)


def test_no_plain_polling_agent(host):
    """Only the central namespace is polled here: every ceilometer-polling
    started with arguments (the master process; its workers carry a title
    without them) has --polling-namespaces central."""
    started = [
        line
        for line in host.check_output("ps -eo args").splitlines()
        if "ceilometer-polling" in line and "--config-file" in line and "ps -eo" not in line
    ]
    assert started, "no ceilometer-polling process"
    assert all("--polling-namespaces central" in line for line in started), started


def test_resource_types_made_by_ceilometer_upgrade(openstack_admin):
    names = {t["name"] for t in openstack_admin("metric resource-type list")}
    assert names >= RESOURCE_TYPES, RESOURCE_TYPES - names

    def attributes(name):
        shown = openstack_admin(f"metric resource-type show {name}")
        return {key.removeprefix("attributes/") for key in shown if key.startswith("attributes/")}

    # Attributes the update operations add after the initial types.
    assert attributes("instance") >= {"flavor_name", "launched_at", "availability_zone"}
    assert attributes("volume") >= {"volume_type", "volume_type_id", "image_id"}


def test_no_upgrade_pending(host):
    """The role's probe finds nothing for ceilometer-upgrade to do."""
    probe = host.run(f"runuser -u ceilometer -- python3 -c {_quote(PROBE.read_text())}")
    assert probe.rc == 0, probe.stdout + probe.stderr
    assert "nothing to do" in probe.stdout


def test_image_notification_becomes_a_gnocchi_measure(host, openstack_admin):
    # Not the service project: the publisher drops that project's samples
    # (filter_project=service).
    owner = openstack_admin("project show admin")["id"]
    image_id = str(uuid.uuid4())
    size = 13_287_936 + uuid.uuid4().int % 1000
    payload = {
        "id": image_id,
        "name": f"molecule-{image_id[:8]}",
        "owner": owner,
        "size": size,
        "status": "active",
        "container_format": "bare",
        "disk_format": "qcow2",
        "visibility": "private",
    }
    _run(
        host,
        f"python3 -c {_quote(SEND_NOTIFICATION)} image.upload {_quote(json.dumps(payload))}",
    )
    rows = _image_size_measures(host, image_id, ROUND_TRIP_TIMEOUT)
    assert rows, f"no image.size measure for {image_id} in Gnocchi after {ROUND_TRIP_TIMEOUT} s"
    assert {row["value"] for row in rows} == {float(size)}
    resource = openstack_admin(f"metric resource show --type image {image_id}")
    assert resource["project_id"] == owner
    assert (resource["name"], resource["disk_format"], resource["container_format"]) == (
        payload["name"],
        "qcow2",
        "bare",
    )
    # The default policy of gnocchi_resources.yaml (no ceilometer_archive_policy).
    metric = openstack_admin(f"metric show --resource-id {image_id} image.size")
    assert metric["archive_policy/name"] == "ceilometer-low"


def test_archive_policies_made_by_the_publisher(openstack_admin):
    """The Gnocchi publisher creates gnocchi_resources.yaml's archive
    policies on its first publication (the round trip above)."""
    names = {p["name"] for p in openstack_admin("metric archive-policy list")}
    assert names >= ARCHIVE_POLICIES, ARCHIVE_POLICIES - names


def test_glance_image_metered(host, openstack_admin):
    """A real image uploaded to Glance reaches Gnocchi with its size: Glance
    notifies it on /glance, and the central agent polls it
    (ceilometer_polling_meters in this scenario); its log shows that cycle."""
    size = 4096 + uuid.uuid4().int % 4096
    name = f"molecule-poll-{uuid.uuid4().hex[:8]}"
    _run(host, f"head -c {size} /dev/urandom > /tmp/{name}.raw")
    image = openstack_admin(
        f"image create --file /tmp/{name}.raw --disk-format raw --container-format bare {name}"
    )
    try:
        rows = _image_size_measures(host, image["id"], POLLING_TIMEOUT + ROUND_TRIP_TIMEOUT)
        assert rows, f"no image.size of image {image['id']} in Gnocchi"
        assert {row["value"] for row in rows} == {float(size)}
        # A cycle that found the image (the log line comes only then).
        log = f"{LOGS}/ceilometer-agent-central.log"
        deadline = time.monotonic() + POLLING_TIMEOUT
        while time.monotonic() < deadline:
            if host.run(f"grep -q 'Finished polling pollster image.size' {log}").rc == 0:
                break
            time.sleep(5)
        assert "Finished polling pollster image.size" in host.file(log).content_string
    finally:
        openstack_admin(f"image delete {image['id']}", json_output=False)
        host.run(f"rm -f /tmp/{name}.raw")


def test_no_errors_in_agent_logs(host):
    for agent in AGENTS:
        content = host.file(f"{LOGS}/{agent}.log").content_string
        bad = [line for line in content.splitlines() if " ERROR " in line or "Traceback" in line]
        assert not bad, f"{agent}: " + "\n".join(bad[:5])


def test_config_file(service_config_lines):
    lines = service_config_lines(CONF, "ceilometer")
    assert "interface = internalURL" in lines
    assert "username = ceilometer" in lines
    assert [line for line in lines if line.startswith("pipelines =")] == [
        "pipelines = meter",
        "pipelines = event",
    ]
    # Its own vhost (the polling agents' samples), then every service's,
    # planned here (glance) or not.
    urls = [line.split("@", 1)[1] for line in lines if line.startswith("messaging_urls =")]
    vhosts = ("ceilometer", "nova", "glance", "neutron", "cinder", "heat", "swift")
    assert urls == [f"192.0.2.10:5672//{vhost}" for vhost in vhosts]
    assert "instance_discovery_method = libvirt_metadata" in lines
    assert [line for line in lines if line.startswith("transport_url = rabbit://ceilometer:")]
    workers = [int(line.split("=")[1]) for line in lines if line.startswith("workers =")]
    assert len(workers) == 1 and 1 <= workers[0] <= 4


def test_pipeline_and_polling_files(host):
    for name in ("pipeline.yaml", "event_pipeline.yaml", "polling.yaml"):
        f = host.file(f"/etc/ceilometer/{name}")
        assert (f.user, f.group, f.mode) == ("root", "ceilometer", 0o640), name
    pipeline = host.file("/etc/ceilometer/pipeline.yaml").content_string
    assert "gnocchi://?filter_project=service" in pipeline
    events = host.file("/etc/ceilometer/event_pipeline.yaml").content_string
    assert "gnocchi://?filter_project=service" in events and "notifier://" not in events
    polling = host.file("/etc/ceilometer/polling.yaml").content_string
    assert "interval: 60" in polling


def test_no_secret_world_readable(host):
    """No file under /etc/ceilometer that others can read holds a password."""
    found = host.check_output(
        "find /etc/ceilometer -type f -perm -o=r -exec grep -l -e molecule-ceilometer {} + || true"
    )
    assert found.strip() == ""
    directory = host.file("/etc/ceilometer")
    assert directory.mode & 0o007 == 0


def test_service_user_roles(openstack_admin):
    assignments = openstack_admin(
        "role assignment list --user ceilometer --project service --names"
    )
    roles = {a["Role"] for a in assignments}
    assert {"admin", "service"} <= roles


def _quote(text):
    """Single-quoted for sh."""
    return "'" + text.replace("'", "'\"'\"'") + "'"
