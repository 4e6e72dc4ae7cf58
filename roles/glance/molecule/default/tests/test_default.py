"""Glance stores images, serves them back intact and imports them."""

import json
import time
import uuid

import pytest

PORT = 9292
SOURCE = "/tmp/molecule-image.raw"


def _openstack(host, *args, json_output=True):
    """The openstack CLI as the Keystone admin (the admin cloud keystone wrote)."""
    fmt = " -f json" if json_output else ""
    cmd = host.run(f"openstack --os-cloud osdeploy-admin {' '.join(args)}{fmt}")
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout) if json_output else cmd.stdout


def _token(host):
    return _openstack(host, "token issue -c id -f value", json_output=False).strip()


def _sums(host, path):
    md5 = host.check_output(f"md5sum {path}").split()[0]
    sha512 = host.check_output(f"sha512sum {path}").split()[0]
    return md5, sha512


def _wait_active(host, image_id, timeout=90):
    deadline = time.monotonic() + timeout
    while True:
        image = _openstack(host, f"image show {image_id}")
        if image["status"] == "active" or time.monotonic() > deadline:
            return image
        time.sleep(2)


@pytest.fixture(scope="module")
def source(host):
    """A 1 MiB raw image whose bytes no format inspector takes for another format."""
    host.check_output(f"yes molecule-glance | head -c 1048576 > {SOURCE}")
    return SOURCE


def test_versions(host, address, curl):
    status, body = curl(f"http://{address}:{PORT}/versions")
    assert status == 200
    current = [v for v in json.loads(body)["versions"] if v["status"] == "CURRENT"]
    assert len(current) == 1
    assert current[0]["id"].startswith("v2.")


def test_api_requires_a_token(host, address, curl):
    status, _ = curl(f"http://{address}:{PORT}/v2/images")
    assert status == 401


def test_endpoints_in_the_catalog(host, address):
    entry = _openstack(host, "catalog show glance")
    assert entry["type"] == "image"
    urls = {e["interface"]: e["url"] for e in entry["endpoints"]}
    assert urls == {
        "public": f"http://{address}:{PORT}",
        "internal": f"http://{address}:{PORT}",
    }


def test_stores_and_import_methods(host, address, curl):
    token = _token(host)
    status, body = curl(f"-H 'X-Auth-Token: {token}'", f"http://{address}:{PORT}/v2/info/stores")
    assert status == 200, body
    stores = json.loads(body)["stores"]
    # Glance writes the flag as a string.
    assert [(s["id"], str(s.get("default")).lower()) for s in stores] == [("file", "true")]
    status, body = curl(f"-H 'X-Auth-Token: {token}'", f"http://{address}:{PORT}/v2/info/import")
    assert status == 200, body
    methods = json.loads(body)["import-methods"]["value"]
    assert sorted(methods) == ["glance-direct", "web-download"]


def test_metadata_definitions_loaded(host, address, curl):
    """The namespaces Debian ships are in the database, with their resource types."""
    shipped = host.check_output("ls /etc/glance/metadefs/*.json | wc -l")
    listed = _openstack(host, "image metadef namespace list")
    names = {n["namespace"] for n in listed}
    assert len(names) == int(shipped), names
    # CommonImageProperties ships with no resource type association.
    assert "OS::Glance::CommonImageProperties" in names
    token = _token(host)
    api = f"http://{address}:{PORT}/v2/metadefs"
    for name, resource_type in (
        ("OS::Compute::Hypervisor", "OS::Glance::Image"),
        ("OS::Compute::Libvirt", "OS::Nova::Flavor"),
        ("OS::OperatingSystem", "OS::Glance::Image"),
    ):
        assert name in names
        status, body = curl(f"-H 'X-Auth-Token: {token}'", f"{api}/namespaces/{name}")
        assert status == 200, body
        associated = {a["name"] for a in json.loads(body)["resource_type_associations"]}
        assert resource_type in associated, (name, associated)
    status, body = curl(f"-H 'X-Auth-Token: {token}'", f"{api}/resource_types")
    assert status == 200, body
    types = {t["name"] for t in json.loads(body)["resource_types"]}
    assert {"OS::Glance::Image", "OS::Nova::Flavor", "OS::Cinder::Volume"} <= types
    stamp = host.file("/var/lib/glance/metadefs.sha256")
    current = host.check_output(
        "cd /etc/glance/metadefs && sha256sum -- *.json | sha256sum | cut -d' ' -f1"
    )
    assert stamp.content_string.strip() == current


def test_web_download_uri_filter(host, address, curl):
    """web-download refuses a URL on a port glance_import_allowed_ports leaves out."""
    token = _token(host)
    auth = f"-H 'X-Auth-Token: {token}' -H 'Content-Type: application/json'"
    images = f"http://{address}:{PORT}/v2/images"
    name = f"molecule-web-{uuid.uuid4().hex[:8]}"
    # Through the API: an image with no data stays "queued", the status an
    # import needs.
    create = json.dumps({"name": name, "disk_format": "raw", "container_format": "bare"})
    status, body = curl("-X POST", auth, f"-d '{create}'", images)
    assert status == 201, body
    image = json.loads(body)
    assert image["status"] == "queued"
    try:
        method = json.dumps(
            {"method": {"name": "web-download", "uri": f"http://{address}:{PORT}/versions"}}
        )
        status, answer = curl("-X POST", auth, f"-d '{method}'", f"{images}/{image['id']}/import")
        assert status == 400, answer
        assert "does not pass filtering" in answer, answer
    finally:
        _openstack(host, f"image delete {image['id']}", json_output=False)


def test_upload_and_download(host, source):
    md5, sha512 = _sums(host, source)
    name = f"molecule-upload-{uuid.uuid4().hex[:8]}"
    created = _openstack(
        host, f"image create --disk-format raw --container-format bare --file {source} {name}"
    )
    try:
        image = _wait_active(host, created["id"])
        assert image["status"] == "active"
        assert image["checksum"] == md5
        assert image["properties"]["os_hash_algo"] == "sha512"
        assert image["properties"]["os_hash_value"] == sha512
        assert image["properties"]["stores"] == "file"
        assert host.file(f"/var/lib/glance/images/{created['id']}").exists
        target = f"/tmp/molecule-download-{created['id']}"
        _openstack(host, f"image save --file {target} {created['id']}", json_output=False)
        assert _sums(host, target) == (md5, sha512)
    finally:
        _openstack(host, f"image delete {created['id']}", json_output=False)
    assert not host.file(f"/var/lib/glance/images/{created['id']}").exists


def test_interoperable_import_glance_direct(host, source):
    md5, sha512 = _sums(host, source)
    name = f"molecule-import-{uuid.uuid4().hex[:8]}"
    # --import: create, stage the data, then import it with glance-direct.
    created = _openstack(
        host,
        "image create --import --disk-format raw --container-format bare",
        f"--file {source} {name}",
    )
    try:
        image = _wait_active(host, created["id"])
        assert image["status"] == "active"
        assert image["checksum"] == md5
        assert image["properties"]["os_hash_value"] == sha512
        assert image["properties"]["stores"] == "file"
    finally:
        _openstack(host, f"image delete {created['id']}", json_output=False)
    listed = _openstack(host, "image list")
    assert created["id"] not in {i["ID"] for i in listed}


def test_config_file(service_config_lines):
    lines = service_config_lines("/etc/glance/glance-api.conf", "glance")
    assert "enabled_backends = file:file" in lines
    assert "default_backend = file" in lines
    assert "flavor = keystone" in lines
    assert "allowed_ports = [80,443]" in lines
    assert "allowed_schemes = [http,https]" in lines


@pytest.mark.parametrize("path", ["images", "staging", "tasks"])
def test_store_directories(host, path):
    directory = host.file(f"/var/lib/glance/{path}")
    assert directory.is_directory
    assert directory.user == "glance"
    assert directory.group == "glance"


def test_listens_on_bind_address_only(listens_only_on_address):
    listens_only_on_address(PORT)


def test_service_enabled_and_running(enabled_and_running):
    enabled_and_running("glance-api")
