"""Swift stores objects in three copies and serves them to Keystone and S3 clients."""

import hashlib
import json
import shlex
import uuid

import pytest

from osdeploy.catalog import load_catalog

PORTS = load_catalog()["swift"].ports
DEVICES = ("d1", "d2", "d3")
UNITS = (
    "swift-proxy",
    "swift-account",
    "swift-account-replicator",
    "swift-account-auditor",
    "swift-account-reaper",
    "swift-container",
    "swift-container-replicator",
    "swift-container-auditor",
    "swift-container-updater",
    "swift-container-sharder",
    "swift-object",
    "swift-object-replicator",
    "swift-object-auditor",
    "swift-object-updater",
    "rsync",
)


def _openstack(host, *args, json_output=True):
    """The openstack CLI as the Keystone admin (the admin cloud keystone wrote)."""
    fmt = " -f json" if json_output else ""
    cmd = host.run(f"openstack --os-cloud osdeploy-admin {' '.join(args)}{fmt}")
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout) if json_output else cmd.stdout


def _python(host, script, *args):
    """Output of a Python script run on the host (openstacksdk, boto3 are there)."""
    quoted = " ".join(shlex.quote(str(a)) for a in args)
    cmd = host.run(f"python3 -c {shlex.quote(script)} {quoted}")
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout


@pytest.fixture(scope="module")
def container(host):
    """A container of the admin project, deleted with its objects afterwards."""
    name = f"molecule-{uuid.uuid4().hex[:8]}"
    _openstack(host, f"container create {name}")
    yield name
    host.run(f"openstack --os-cloud osdeploy-admin container delete --recursive {name}")


@pytest.fixture(scope="module")
def token_and_url(host):
    """A token of the admin and the admin project's object-store URL."""
    token = _openstack(host, "token issue")
    url = _python(
        host,
        "import openstack; c = openstack.connect(cloud='osdeploy-admin');"
        "print(c.object_store.get_endpoint())",
    ).strip()
    return token["id"], url


def test_every_server_answers_its_healthcheck(host, address):
    for port in ("proxy", "account", "container", "object"):
        cmd = host.run(f"curl -sS http://{address}:{PORTS[port]}/healthcheck")
        assert cmd.rc == 0 and cmd.stdout == "OK", (port, cmd.stdout, cmd.stderr)


def test_api_requires_a_token(host, address):
    code = host.check_output(
        f"curl -s -o /dev/null -w '%{{http_code}}' http://{address}:{PORTS['proxy']}/v1/AUTH_x"
    )
    assert code == "401"


def test_endpoints_in_the_catalog(host, address):
    endpoints = _openstack(host, "endpoint list --service object-store")
    urls = {e["Interface"]: e["URL"] for e in endpoints}
    expected = f"http://{address}:{PORTS['proxy']}/v1/AUTH_%(project_id)s"
    assert urls == {"public": expected, "internal": expected}


def test_rings_hold_every_device_in_three_replicas(host):
    for ring in ("account", "container", "object"):
        out = host.check_output(f"swift-ring-builder /etc/swift/{ring}.builder")
        assert "3.000000 replicas" in out and "3 zones, 3 devices" in out, out
        assert f"Ring file /etc/swift/{ring}.ring.gz is up-to-date" in out, out
        ring_file = host.file(f"/etc/swift/{ring}.ring.gz")
        assert (ring_file.user, ring_file.group, ring_file.mode) == ("root", "swift", 0o644)


def test_object_round_trip_in_three_copies(host, container, token_and_url):
    """Written with the openstack CLI, read back with curl and a token, on three devices."""
    payload = uuid.uuid4().hex * 1000
    host.run(f"printf %s {payload} > /tmp/molecule-object")
    _openstack(host, f"object create --name round-trip {container} /tmp/molecule-object")
    listed = _openstack(host, f"object list {container}")
    assert "round-trip" in {o["Name"] for o in listed}
    token, url = token_and_url
    body = host.check_output(
        f"curl -sS -f -H 'X-Auth-Token: {token}' {url}/{container}/round-trip | sha256sum"
    )
    assert body.split()[0] == hashlib.sha256(payload.encode()).hexdigest()
    account = url.rsplit("/", 1)[1]
    nodes = host.check_output(
        f"swift-get-nodes -a /etc/swift/object.ring.gz {account} {container} round-trip"
    )
    heads = [line.split('"')[1] for line in nodes.splitlines() if line.startswith("curl -g -I")]
    devices = set()
    for head in heads:
        status = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' -I '{head}'")
        if status == "200":
            devices.add(head.split("/")[3])
    assert devices == set(DEVICES), nodes


def test_large_object_round_trip(host, container, token_and_url):
    """A static large object (segments, then a manifest) reads back whole."""
    script = """
import hashlib, json, os, sys, urllib.request
token, base = sys.argv[1], sys.argv[2]
def call(method, path, data=None):
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"X-Auth-Token": token})
    with urllib.request.urlopen(request) as response:
        return response.read(), response.headers
segments = [os.urandom(1024 * 1024) for _ in range(3)] + [os.urandom(17)]
manifest = []
for number, segment in enumerate(segments):
    call("PUT", f"/large-segments/{number:03d}", segment)
    manifest.append({"path": f"/{sys.argv[3]}/large-segments/{number:03d}",
                     "etag": hashlib.md5(segment).hexdigest(), "size_bytes": len(segment)})
call("PUT", "/large?multipart-manifest=put", json.dumps(manifest).encode())
body, headers = call("GET", "/large")
print(body == b"".join(segments), headers["X-Static-Large-Object"])
"""
    token, url = token_and_url
    out = _python(host, script, token, f"{url}/{container}", container)
    assert out.split() == ["True", "True"], out


def test_s3_api_with_ec2_credentials(host, address, container):
    """boto3 with the admin's EC2 credentials sees the container as a bucket."""
    creds = _openstack(host, "ec2 credentials create")
    try:
        script = """
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],
                  aws_secret_access_key=sys.argv[3], region_name="RegionOne")
s3.put_object(Bucket=sys.argv[4], Key="via-s3", Body=b"hello from s3")
print(sys.argv[4] in [b["Name"] for b in s3.list_buckets()["Buckets"]],
      s3.get_object(Bucket=sys.argv[4], Key="via-s3")["Body"].read() == b"hello from s3")
"""
        endpoint = f"http://{address}:{PORTS['proxy']}"
        out = _python(host, script, endpoint, creds["access"], creds["secret"], container)
        assert out.split() == ["True", "True"]
        assert "via-s3" in {o["Name"] for o in _openstack(host, f"object list {container}")}
    finally:
        _openstack(host, f"ec2 credentials delete {creds['access']}", json_output=False)


def test_config_files(host, service_config_lines):
    swift_conf = service_config_lines("/etc/swift/swift.conf", "swift")
    assert "swift_hash_path_prefix = molecule-prefix" in swift_conf
    proxy = service_config_lines("/etc/swift/proxy-server.conf", "swift")
    assert "delay_auth_decision = true" in proxy
    assert "account_autocreate = true" in proxy


def test_listens_on_bind_address_only(listens_only_on_address):
    for port in PORTS.values():
        listens_only_on_address(port)


def test_services_enabled_and_running(enabled_and_running):
    enabled_and_running(*UNITS)


def test_unused_units_disabled_and_stopped(host):
    # Enabled by their packages; left running, a boot fails two of them.
    unused = ("swift-container-sync", "swift-container-reconciler", "swift-object-reconstructor")
    for unit in unused:
        service = host.service(unit)
        assert not service.is_enabled and not service.is_running, unit
