"""Keystone answers on its bind address, issues tokens and lists itself."""

import json
import shlex

import pytest

ADMIN_PASSWORD = 'molecule-admin"pa$s'
PORT = 5000


def _token(host, address, curl):
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": "admin",
                        "domain": {"id": "default"},
                        "password": ADMIN_PASSWORD,
                    }
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    return curl(
        "-D /tmp/molecule-headers -H 'Content-Type: application/json'",
        f"--data {shlex.quote(json.dumps(body))} http://{address}:{PORT}/v3/auth/tokens",
    )


def test_version_document(host, address, curl):
    status, body = curl(f"http://{address}:{PORT}/v3")
    assert status == 200
    version = json.loads(body)["version"]
    assert version["status"] == "stable"
    assert version["id"].startswith("v3.")


def test_admin_token_and_catalog(host, address, curl):
    status, body = _token(host, address, curl)
    assert status == 201, body
    headers = host.file("/tmp/molecule-headers").content_string.lower()
    assert "x-subject-token:" in headers
    catalog = json.loads(body)["token"]["catalog"]
    identity = [s for s in catalog if s["type"] == "identity"]
    assert len(identity) == 1
    endpoints = {e["interface"]: e for e in identity[0]["endpoints"]}
    assert set(endpoints) == {"public", "internal"}
    for endpoint in endpoints.values():
        assert endpoint["region_id"] == "RegionOne"
        assert endpoint["url"] == f"http://{address}:{PORT}"
        # The bare endpoint URL answers with the version list (300).
        status, versions = curl(endpoint["url"])
        assert status == 300
        assert "versions" in json.loads(versions)


def test_wrong_password_is_rejected(host, address, curl):
    status, _ = curl(
        "-H 'Content-Type: application/json' --data "
        """'{"auth": {"identity": {"methods": ["password"], "password": {"user": """
        """{"name": "admin", "domain": {"id": "default"}, "password": "wrong"}}}}}'""",
        f"http://{address}:{PORT}/v3/auth/tokens",
    )
    assert status == 401


def test_config_file(service_config_lines):
    lines = service_config_lines("/etc/keystone/keystone.conf", "keystone")
    assert "debug = false" in lines
    assert "provider = fernet" in lines
    assert "backend = oslo_cache.memcache_pool" in lines


def test_admin_clouds_yaml_is_root_only(host):
    clouds = host.file("/etc/openstack/clouds.yaml")
    assert clouds.user == "root"
    assert clouds.mode == 0o600


@pytest.mark.parametrize("repo", ["fernet-keys", "credential-keys"])
def test_key_repositories(host, repo):
    directory = host.file(f"/etc/keystone/{repo}")
    assert directory.is_directory
    assert directory.user == "keystone"
    assert directory.group == "keystone"
    assert directory.mode == 0o700
    keys = directory.listdir()
    assert "0" in keys and len(keys) >= 2
    for key in keys:
        key_file = host.file(f"/etc/keystone/{repo}/{key}")
        assert key_file.user == "keystone"
        assert key_file.mode == 0o600


def test_listens_on_bind_address_only(listens_only_on_address):
    listens_only_on_address(PORT)


def test_service_enabled_and_running(enabled_and_running):
    enabled_and_running("keystone")
