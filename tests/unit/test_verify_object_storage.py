"""Verify, object storage: swift-get-nodes' output, object server URLs, hosts, manifests."""

import hashlib
import json
import re

import pytest

from osdeploy import verify
from osdeploy.verify.core import CheckFailed
from osdeploy.verify.object_storage import (
    Node,
    Placement,
    expected_replicas,
    host_to_stop,
    object_server_url,
    parse_get_nodes,
    slo_manifest,
    split_segments,
    storage_url_parts,
)

ACCOUNT = "AUTH_0f6b2d7c8e4a4b1f9d3e5a7c2b8d4e6f"
PATH = (ACCOUNT, "osdeploy-verify-replicas", "replicated")

#: `swift-get-nodes /etc/swift/object.ring.gz AUTH_... osdeploy-verify-replicas replicated`
#: as swift 2.35 prints it: three hosts, one zone each, two devices per host.
GET_NODES = """
Account  \tAUTH_0f6b2d7c8e4a4b1f9d3e5a7c2b8d4e6f
Container\tosdeploy-verify-replicas
Object   \treplicated


Partition\t123
Hash     \t7b1e0c1f0d8e4c6a2b9f3a5d7c1e9b2f

Server:Port Device\t10.0.0.7:6200 d1
Server:Port Device\t10.0.0.9:6200 d2
Server:Port Device\t10.0.0.8:6200 d1
Server:Port Device\t10.0.0.7:6200 d2\t [Handoff]
Server:Port Device\t10.0.0.8:6200 d2\t [Handoff]


curl -g -I -XHEAD "http://10.0.0.7:6200/d1/123/AUTH_0f6b2d7c8e4a4b1f9d3e5a7c2b8d4e6f/osdeploy-verify-replicas/replicated" --path-as-is
curl -g -I -XHEAD "http://10.0.0.9:6200/d2/123/AUTH_0f6b2d7c8e4a4b1f9d3e5a7c2b8d4e6f/osdeploy-verify-replicas/replicated" --path-as-is
curl -g -I -XHEAD "http://10.0.0.8:6200/d1/123/AUTH_0f6b2d7c8e4a4b1f9d3e5a7c2b8d4e6f/osdeploy-verify-replicas/replicated" --path-as-is
curl -g -I -XHEAD "http://10.0.0.7:6200/d2/123/AUTH_0f6b2d7c8e4a4b1f9d3e5a7c2b8d4e6f/osdeploy-verify-replicas/replicated" --path-as-is # [Handoff]
curl -g -I -XHEAD "http://10.0.0.8:6200/d2/123/AUTH_0f6b2d7c8e4a4b1f9d3e5a7c2b8d4e6f/osdeploy-verify-replicas/replicated" --path-as-is # [Handoff]


Use your own device location of servers:
such as "export DEVICE=/srv/node"
ssh 10.0.0.7 "ls -lah ${DEVICE:-/srv/node*}/d1/objects/123/b2f/7b1e0c1f0d8e4c6a2b9f3a5d7c1e9b2f"
ssh 10.0.0.9 "ls -lah ${DEVICE:-/srv/node*}/d2/objects/123/b2f/7b1e0c1f0d8e4c6a2b9f3a5d7c1e9b2f"
ssh 10.0.0.8 "ls -lah ${DEVICE:-/srv/node*}/d1/objects/123/b2f/7b1e0c1f0d8e4c6a2b9f3a5d7c1e9b2f"
ssh 10.0.0.7 "ls -lah ${DEVICE:-/srv/node*}/d2/objects/123/b2f/7b1e0c1f0d8e4c6a2b9f3a5d7c1e9b2f" # [Handoff]
ssh 10.0.0.8 "ls -lah ${DEVICE:-/srv/node*}/d2/objects/123/b2f/7b1e0c1f0d8e4c6a2b9f3a5d7c1e9b2f" # [Handoff]

note: `/srv/node*` is used as default value of `devices`, the real value is set in the config file on each storage node.
"""  # noqa: E501 (swift's own lines)


def test_get_nodes_gives_the_partition_and_the_primaries_only() -> None:
    assert parse_get_nodes(GET_NODES) == Placement(
        123,
        (Node("10.0.0.7", 6200, "d1"), Node("10.0.0.9", 6200, "d2"), Node("10.0.0.8", 6200, "d1")),
    )


def test_object_server_urls_are_those_swift_prints() -> None:
    placement = parse_get_nodes(GET_NODES)
    assert placement is not None
    curls = re.findall(r'^curl .*"(http://[^"]+)" --path-as-is$', GET_NODES, re.MULTILINE)
    built = [object_server_url(node, placement.partition, PATH) for node in placement.primaries]
    assert built == curls  # the primaries' lines; the handoffs' end in "# [Handoff]"


def test_object_server_url_quotes_names_and_brackets_ipv6() -> None:
    node = Node("fd00::7", 6200, "d1")
    assert (
        object_server_url(node, 7, (ACCOUNT, "c d", "a/b"))
        == f"http://[fd00::7]:6200/d1/7/{ACCOUNT}/c%20d/a%2Fb"
    )
    ipv6 = "Partition\t7\nServer:Port Device\tfd00::7:6200 d1\n"
    assert parse_get_nodes(ipv6) == Placement(7, (node,))


@pytest.mark.parametrize(
    "output",
    [
        "",
        "Ring file does not exist\n",
        "Partition\t123\n",  # no primary
        "Server:Port Device\t10.0.0.7:6200 d1\n",  # no partition
    ],
)
def test_get_nodes_without_a_placement(output: str) -> None:
    assert parse_get_nodes(output) is None


def test_replicas_are_one_per_storage_host_up_to_three() -> None:
    assert [expected_replicas(n) for n in (1, 2, 3, 4, 6)] == [1, 2, 3, 3, 3]


def test_storage_url_parts() -> None:
    assert storage_url_parts(f"http://10.0.0.5:8080/v1/{ACCOUNT}") == (
        "http://10.0.0.5:8080",
        ACCOUNT,
    )
    assert storage_url_parts(f"https://cloud.example:443/v1/{ACCOUNT}/") == (
        "https://cloud.example:443",
        ACCOUNT,
    )
    with pytest.raises(CheckFailed, match="does not end in the account"):
        storage_url_parts("http://10.0.0.5:8080/v1/")


def test_host_to_stop_is_the_last_storage_host_with_a_primary() -> None:
    storage = ["st1", "st2", "st3"]
    assert host_to_stop(storage, ["st1", "st3", "st2"]) == "st3"
    assert host_to_stop(storage, ["st2", "st1"]) == "st2"
    # Ring addresses that are no storage host's: nothing to stop.
    assert host_to_stop(storage, ["10.9.9.9"]) is None
    # Never the only storage host.
    assert host_to_stop(["st1"], ["st1"]) is None


def test_segments_and_their_slo_manifest() -> None:
    data = bytes(range(256)) * 50  # 12800 bytes
    segments = split_segments(data, 5000)
    assert [len(s) for s in segments] == [5000, 5000, 2800]
    assert b"".join(segments) == data
    manifest = json.loads(slo_manifest("c_segments", ["big/000", "big/001", "big/002"], segments))
    assert manifest[2] == {
        "path": "/c_segments/big/002",
        "etag": hashlib.md5(segments[2], usedforsecurity=False).hexdigest(),
        "size_bytes": 2800,
    }
    assert [m["path"] for m in manifest] == [f"/c_segments/big/00{i}" for i in range(3)]
    with pytest.raises(ValueError):
        slo_manifest("c_segments", ["big/000"], segments)


def test_checks_are_registered_as_one_attempt() -> None:
    names = ("swift_objects", "swift_replicas", "swift_large_object", "swift_storage_host_down")
    assert all(getattr(verify.CHECKS[n], "one_attempt", False) for n in names)
