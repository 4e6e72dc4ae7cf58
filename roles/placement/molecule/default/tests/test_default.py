"""Placement answers on its bind address and manages resource providers."""

import json
import shlex
import uuid

from osdeploy.catalog import load_catalog

PORT = 8778
# Keystone is another role: its port comes from the catalog, as in the roles.
KEYSTONE_PORT = load_catalog()["keystone"].ports["public"]
KS_PASSWORD = "molecule-placement-ks"


def _openstack(host, address, *args, json_output=True):
    """The openstack CLI as placement's service user, through the catalog."""
    env = {
        "OS_AUTH_URL": f"http://{address}:{KEYSTONE_PORT}",
        "OS_USERNAME": "placement",
        "OS_PASSWORD": KS_PASSWORD,
        "OS_PROJECT_NAME": "service",
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_REGION_NAME": "RegionOne",
        "OS_IDENTITY_API_VERSION": "3",
        "OS_INTERFACE": "internal",
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    fmt = " -f json" if json_output else ""
    cmd = host.run(f"env {exports} openstack {' '.join(args)}{fmt}")
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout) if json_output else cmd.stdout


def test_version_document(host, address, curl):
    status, body = curl(f"http://{address}:{PORT}/")
    assert status == 200
    versions = json.loads(body)["versions"]
    assert len(versions) == 1
    assert versions[0]["status"] == "CURRENT"
    assert versions[0]["min_version"] == "1.0"
    # placement 13 (2025.1) serves microversions up to 1.39.
    major, minor = versions[0]["max_version"].split(".")
    assert (int(major), int(minor)) >= (1, 39)


def test_api_requires_a_token(host, address, curl):
    status, _ = curl(f"http://{address}:{PORT}/resource_providers")
    assert status == 401


def test_endpoints_in_the_catalog(host, address):
    entry = _openstack(host, address, "catalog show placement")
    assert entry["type"] == "placement"
    urls = {e["interface"]: e["url"] for e in entry["endpoints"]}
    assert urls == {
        "public": f"http://{address}:{PORT}",
        "internal": f"http://{address}:{PORT}",
    }


def test_resource_provider_lifecycle(host, address):
    name = f"molecule-rp-{uuid.uuid4().hex[:8]}"
    created = _openstack(host, address, f"resource provider create {name}")
    assert created["name"] == name
    try:
        listed = _openstack(host, address, "resource provider list")
        assert name in {rp["name"] for rp in listed}
        _openstack(
            host,
            address,
            f"resource provider inventory set {created['uuid']} --resource VCPU=4",
        )
        inventory = _openstack(host, address, f"resource provider inventory list {created['uuid']}")
        assert [(i["resource_class"], i["total"]) for i in inventory] == [("VCPU", 4)]
    finally:
        _openstack(host, address, f"resource provider delete {created['uuid']}", json_output=False)
    listed = _openstack(host, address, "resource provider list")
    assert name not in {rp["name"] for rp in listed}


def test_schema_at_the_package_head(schema_at_head):
    schema_at_head(
        "runuser -u placement -- placement-manage",
        "/usr/lib/python3/dist-packages/placement/db/sqlalchemy/alembic",
    )


def test_config_file(service_config_lines):
    lines = service_config_lines("/etc/placement/placement.conf", "placement")
    assert "auth_strategy = keystone" in lines
    assert "debug = false" in lines


def test_listens_on_bind_address_only(listens_only_on_address):
    listens_only_on_address(PORT)


def test_service_enabled_and_running(enabled_and_running):
    enabled_and_running("placement-api")
