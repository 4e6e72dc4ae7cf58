"""Verify checks of Swift object storage: three clients, replicas on disk,
large objects, a storage host down.

- `swift_objects`: an object's round trip through openstacksdk (what the
  `openstack` client uses), plain HTTP with a token against the catalog's
  object-store URL, and S3 (boto3 with an EC2 credential of admin, signature
  v4, path-style, at the proxy's root): the container is a bucket there, and
  what S3 puts Swift reads.
- `swift_replicas`: where the ring puts an object (`swift-get-nodes` on a
  storage host), and each of those object servers holds it (a direct HEAD
  from here): min(3, storage hosts) copies on as many hosts.
- `swift_large_object`: ~12 MiB in 5 MiB segments, read whole through a
  static (SLO) and a dynamic (DLO) manifest; the SLO's delete takes the
  segments with it.
- `swift_storage_host_down`: the object, container and account servers of
  one storage host stopped (the daemons the proxy talks to; its replicators
  and rsync keep running, as they do not change what the proxy sees); writes
  and reads still succeed through the proxy; started again, the host gets
  the copy it missed from the other hosts' replicators.

Everything is named with PREFIX and removed at the end of each check.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shlex
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from osdeploy.verify.compute import POLL, SLOW_POLL, _on_host, _wait
from osdeploy.verify.core import (
    API_TIMEOUT,
    PREFIX,
    CheckFailed,
    VerifyContext,
    check,
    explain,
    new_ec2_credential,
    remove_ec2_credentials,
)
from osdeploy.verify.net import NET_TIMEOUT, root_url

SERVICE = "swift"
STORAGE_GROUP = "swift_storage"
OBJECT_RING = "/etc/swift/object.ring.gz"
#: The daemons a proxy talks to; `swift_storage_host_down` stops these.
SERVER_UNITS = ("swift-object", "swift-container", "swift-account")
MAX_REPLICAS = 3
OBJECT_BYTES = 64 * 1024
LARGE_BYTES = 12 * 1024 * 1024
SEGMENT_BYTES = 5 * 1024 * 1024
#: Seconds every primary may take to hold a new object (normally at once).
REPLICA_TIMEOUT = 60
#: Seconds a restarted host may take to get an object it missed: the next
#: pass of another host's object replicator (interval 30 s) pushes it.
REPLICATION_TIMEOUT = 180
DELETE_TIMEOUT = 60


# -- pure helpers --------------------------------------------------------------


class Node(NamedTuple):
    ip: str
    port: int
    device: str


class Placement(NamedTuple):
    partition: int
    primaries: tuple[Node, ...]


def expected_replicas(storage_hosts: int) -> int:
    """Copies of each object: one per storage host (one zone each), at most 3."""
    return min(MAX_REPLICAS, storage_hosts)


def parse_get_nodes(output: str) -> Placement | None:
    """Partition and primary nodes from `swift-get-nodes` output (handoffs
    left out); None without a partition or a primary."""
    partition: int | None = None
    primaries: list[Node] = []
    for line in output.splitlines():
        label, _, rest = line.partition("\t")
        if label.strip() == "Partition" and rest.strip().isdigit():
            partition = int(rest)
        elif label.strip() == "Server:Port Device" and "[Handoff]" not in rest:
            address, device = rest.split()[:2]
            ip, port = address.rsplit(":", 1)
            primaries.append(Node(ip.strip("[]"), int(port), device))
    if partition is None or not primaries:
        return None
    return Placement(partition, tuple(primaries))


def object_server_url(node: Node, partition: int, path: Sequence[str]) -> str:
    """An object server's own URL of account/container/object on ``node``."""
    host = f"[{node.ip}]" if ":" in node.ip else node.ip
    quoted = "/".join(urllib.parse.quote(part, safe="") for part in path)
    return f"http://{host}:{node.port}/{node.device}/{partition}/{quoted}"


def storage_url_parts(url: str) -> tuple[str, str]:
    """(S3 endpoint, account) of an object-store URL: its root and its last
    path segment (``http://a:8080/v1/AUTH_x`` -> ``http://a:8080``, ``AUTH_x``)."""
    account = urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    if not account.startswith("AUTH_"):
        raise CheckFailed(f"object-store URL {url} does not end in the account (AUTH_<project>)")
    return root_url(url).rstrip("/"), account


def host_to_stop(storage_hosts: Sequence[str], primary_hosts: Sequence[str]) -> str | None:
    """The last storage host that holds a primary copy; None with one host
    (never stop the only one) or when no storage host holds one."""
    if len(storage_hosts) < 2:
        return None
    return next((h for h in reversed(storage_hosts) if h in primary_hosts), None)


def split_segments(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def slo_manifest(container: str, names: Sequence[str], segments: Sequence[bytes]) -> str:
    """The body of a static large object's ``?multipart-manifest=put``."""
    return json.dumps(
        [
            {
                "path": f"/{container}/{name}",
                "etag": hashlib.md5(segment, usedforsecurity=False).hexdigest(),
                "size_bytes": len(segment),
            }
            for name, segment in zip(names, segments, strict=True)
        ]
    )


# -- edges ---------------------------------------------------------------------


def _http(method: str, url: str, headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    """Status and body of one request from here (HTTP errors are answers
    too); CheckFailed when unreachable. Headers (a token) stay out of messages."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise CheckFailed(f"{url}: not an http(s) URL")
    request = urllib.request.Request(url, headers=dict(headers or {}), method=method)  # noqa: S310 (scheme checked above)
    try:
        with urllib.request.urlopen(request, timeout=NET_TIMEOUT) as response:  # noqa: S310
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise CheckFailed(f"{method} {url}: unreachable ({getattr(exc, 'reason', exc)})") from exc


def _copy_status(url: str) -> str:
    """HTTP status of a direct HEAD to an object server, or "unreachable"."""
    try:
        return str(_http("HEAD", url)[0])
    except CheckFailed:
        return "unreachable"


def _swift(conn: Any, method: str, path: str, want: int, what: str, **kwargs: Any) -> Any:
    """One request below the account through the sdk's object-store session."""
    response = conn.object_store.request(path, method, **kwargs)
    if response.status_code != want:
        raise CheckFailed(
            f"{what}: {method} {path} answered HTTP {response.status_code}: "
            f"{response.text.strip()[:200]} — see `journalctl -u swift-proxy` on the proxy hosts"
        )
    return response


def remove_containers(conn: Any, prefix: str) -> None:
    """Delete the containers whose name starts with ``prefix``, objects first."""
    from openstack import exceptions  # slow import: only when a check runs

    store = conn.object_store

    def emptied_and_deleted(name: str) -> bool:
        for obj in list(store.objects(name)):
            store.delete_object(obj, container=name)
        try:
            store.delete_container(name)
        except exceptions.ConflictException:  # listing not updated yet
            return False
        return True

    for name in [c.name for c in store.containers(prefix=prefix)]:
        _wait(
            f"container {name} not deleted: still not empty",
            DELETE_TIMEOUT,
            functools.partial(emptied_and_deleted, name),
        )


def _hosts_by_address(ctx: VerifyContext) -> dict[str, str]:
    return {address: name for name, address in ctx.service_hosts(SERVICE)}


def _storage_hosts(ctx: VerifyContext) -> list[str]:
    hosts = ctx.group_hosts(SERVICE, STORAGE_GROUP)
    if not hosts:
        raise CheckFailed("no swift_storage host: give a host the storage role")
    return hosts


def _placement(ctx: VerifyContext, host: str, path: Sequence[str]) -> Placement:
    """Where the object ring puts account/container/object, asked on ``host``
    (as root: swift-get-nodes reads the hash path prefix in swift.conf)."""
    command = f"sudo swift-get-nodes {OBJECT_RING} " + " ".join(shlex.quote(p) for p in path)
    code, out = _on_host(ctx, host, command)
    placement = parse_get_nodes(out) if code == 0 else None
    if placement is None:
        raise CheckFailed(
            f"`swift-get-nodes` on {host} gave no placement (exit {code}): {out.strip()[-300:]} "
            f"— is package swift installed and {OBJECT_RING} there?"
        )
    return placement


def _systemctl(ctx: VerifyContext, host: str, action: str) -> None:
    command = f"sudo systemctl {action} {' '.join(SERVER_UNITS)}"
    code, out = _on_host(ctx, host, command)
    if code != 0:
        raise CheckFailed(f"`{command}` on {host} failed (exit {code}): {out.strip()[-300:]}")


def _s3_round_trip(ctx: VerifyContext, conn: Any, container: str, data: bytes) -> int:
    """Through S3 with a new EC2 credential of admin: the container is a
    bucket, its object listed and read equal, a second object put that Swift
    reads back. Returns the number of buckets listed."""
    import boto3  # slow import: only when this check runs
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import BotoCoreError, ClientError

    endpoint, _account = storage_url_parts(conn.object_store.get_endpoint())
    access, secret = new_ec2_credential(conn, PREFIX)
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=ctx.settings.region_name,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=BotoConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            # boto3 >= 1.36 adds CRC checksums (and aws-chunked bodies) that
            # S3 itself requires, others may refuse: what clients of an S3
            # other than AWS's are set to.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            connect_timeout=NET_TIMEOUT,
            read_timeout=API_TIMEOUT,
            retries={"mode": "standard", "max_attempts": 2},
        ),
    )
    step = "ListBuckets"
    try:
        buckets = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
        if container not in buckets:
            raise CheckFailed(f"S3 lists buckets {buckets}, not the Swift container {container}")
        step = "ListObjectsV2"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=container).get("Contents", [])]
        if "sdk" not in keys:
            raise CheckFailed(f"S3 lists {keys} in bucket {container}, not object sdk")
        step = "GetObject"
        if s3.get_object(Bucket=container, Key="sdk")["Body"].read() != data:
            raise CheckFailed("S3 GetObject returned other bytes than Swift stored")
        step = "PutObject"
        s3.put_object(Bucket=container, Key="s3", Body=data[::-1])
    except (BotoCoreError, ClientError) as exc:
        proxies = ", ".join(ctx.group_hosts(SERVICE, "swift_proxy"))
        raise CheckFailed(
            f"S3 {step} at {endpoint} failed: {exc} — see `journalctl -u swift-proxy` on "
            f"{proxies} (s3api's location must be {ctx.settings.region_name}; s3token must "
            "reach Keystone)"
        ) from exc
    if conn.object_store.download_object("s3", container=container) != data[::-1]:
        raise CheckFailed("Swift reads other bytes than S3 PutObject wrote")
    return len(buckets)


# -- checks --------------------------------------------------------------------


@check("swift_objects", one_attempt=True)
def check_swift_objects(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    store = conn.object_store
    container = f"{PREFIX}-objects"
    data = os.urandom(OBJECT_BYTES)
    remove_containers(conn, container)
    remove_ec2_credentials(conn, PREFIX)
    try:
        store.create_container(name=container)
        store.upload_object(container=container, name="sdk", data=data)
        listed = [o.name for o in store.objects(container)]
        if listed != ["sdk"]:
            raise CheckFailed(f"container {container} lists {listed} after one put of object sdk")
        if store.download_object("sdk", container=container) != data:
            raise CheckFailed("openstacksdk read back other bytes than it put")
        url = f"{store.get_endpoint().rstrip('/')}/{container}/sdk"
        status, body = _http("GET", url, {"X-Auth-Token": conn.auth_token})
        if status != 200 or body != data:
            raise CheckFailed(
                f"GET {url} with a token: HTTP {status}, {len(body)} bytes "
                f"({'the same' if body == data else 'not the'} bytes put)"
            )
        buckets = _s3_round_trip(ctx, conn, container, data)
    finally:
        remove_containers(conn, container)
        remove_ec2_credentials(conn, PREFIX)
    return (
        f"{OBJECT_BYTES >> 10} KiB object put, listed and read back equal through openstacksdk "
        f"and plain HTTP with a token; S3 (EC2 credential, sigv4, region "
        f"{ctx.settings.region_name}): container among {buckets} bucket(s), object listed and "
        "read equal, a second one put through S3 read back through Swift"
    )


@check("swift_replicas", one_attempt=True)
def check_swift_replicas(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    storage = _storage_hosts(ctx)
    want = expected_replicas(len(storage))
    port = ctx.port(SERVICE, "object")
    container = f"{PREFIX}-replicas"
    remove_containers(conn, container)
    try:
        conn.object_store.create_container(name=container)
        conn.object_store.upload_object(
            container=container, name="replicated", data=os.urandom(OBJECT_BYTES)
        )
        _endpoint, account = storage_url_parts(conn.object_store.get_endpoint())
        path = (account, container, "replicated")
        placement = _placement(ctx, storage[0], path)
        names = _hosts_by_address(ctx)
        copies = {f"{names.get(n.ip, n.ip)}/{n.device}": n for n in placement.primaries}
        hosts = {names.get(n.ip, n.ip) for n in placement.primaries}
        if len(hosts) < want or any(n.port != port for n in placement.primaries):
            raise CheckFailed(
                f"the object ring puts partition {placement.partition} on {', '.join(copies)} "
                f"(ports {sorted({n.port for n in placement.primaries})}): want {want} "
                f"replicas on as many of the {len(storage)} storage hosts, at port {port} — "
                "rebuild the rings (one zone per storage host)"
            )
        seen: dict[str, str] = {}

        def every_copy() -> bool:
            for label, node in copies.items():
                seen[label] = _copy_status(object_server_url(node, placement.partition, path))
            return all(status == "200" for status in seen.values())

        _wait(
            "not every primary holds the object",
            REPLICA_TIMEOUT,
            every_copy,
            interval=SLOW_POLL,
            explain=lambda m: (
                f"{m}: direct HEAD {seen} — see `journalctl -u swift-object` on those hosts"
            ),
        )
    finally:
        remove_containers(conn, container)
    note = " (one storage host: one copy)" if len(storage) == 1 else ""
    return (
        f"{len(copies)} copies, partition {placement.partition}, on {', '.join(copies)}: "
        f"each object server answers a direct HEAD with 200{note}"
    )


@check("swift_large_object", one_attempt=True)
def check_swift_large_object(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    store = conn.object_store
    container = f"{PREFIX}-large"
    segments_container = f"{container}_segments"
    data = os.urandom(LARGE_BYTES)
    want = hashlib.sha256(data).hexdigest()
    segments = split_segments(data, SEGMENT_BYTES)
    names = [f"big/{i:03d}" for i in range(len(segments))]
    remove_containers(conn, container)
    try:
        store.create_container(name=container)
        store.create_container(name=segments_container)
        for name, segment in zip(names, segments, strict=True):
            store.upload_object(container=segments_container, name=name, data=segment)
        manifest = slo_manifest(segments_container, names, segments)
        params = {"multipart-manifest": "put"}
        _swift(conn, "PUT", f"{container}/slo", 201, "SLO manifest", params=params, data=manifest)
        head = _swift(conn, "HEAD", f"{container}/slo", 200, "SLO manifest")
        dlo = {"X-Object-Manifest": f"{segments_container}/big/"}
        _swift(conn, "PUT", f"{container}/dlo", 201, "DLO manifest", headers=dlo, data=b"")
        for kind in ("slo", "dlo"):
            got = hashlib.sha256(store.download_object(kind, container=container)).hexdigest()
            if got != want:
                raise CheckFailed(
                    f"the {kind.upper()} reads other bytes than its segments (sha256 "
                    f"{got[:12]}…, want {want[:12]}…) — is {kind} in the proxy pipeline?"
                )
        if head.headers.get("X-Static-Large-Object", "").lower() != "true":
            raise CheckFailed("the SLO manifest has no X-Static-Large-Object: True header")
        store.delete_object("dlo", container=container)
        params = {"multipart-manifest": "delete"}
        answer = _swift(conn, "DELETE", f"{container}/slo", 200, "SLO delete", params=params)
        left: list[str] = []

        def segments_gone() -> bool:
            left[:] = [o.name for o in store.objects(segments_container)]
            return not left

        _wait(
            "segments left after the SLO's delete",
            DELETE_TIMEOUT,
            segments_gone,
            interval=POLL,
            explain=lambda m: f"{m}: {', '.join(left)} ({answer.text.strip()[:200]})",
        )
    finally:
        remove_containers(conn, container)
    return (
        f"{LARGE_BYTES >> 20} MiB in {len(segments)} segments of up to {SEGMENT_BYTES >> 20} "
        f"MiB: read whole through an SLO and a DLO, sha256 equal ({want[:12]}…); the SLO's "
        "multipart-manifest=delete removed its segments"
    )


@check("swift_storage_host_down", one_attempt=True)
def check_swift_storage_host_down(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    store = conn.object_store
    storage = _storage_hosts(ctx)
    if len(storage) < 2:
        return f"one storage host ({storage[0]}): nothing to fail over to, so not stopped"
    container = f"{PREFIX}-host-down"
    before, after = os.urandom(OBJECT_BYTES), os.urandom(OBJECT_BYTES)
    remove_containers(conn, container)
    try:
        store.create_container(name=container)
        store.upload_object(container=container, name="before", data=before)
        _endpoint, account = storage_url_parts(store.get_endpoint())
        path = (account, container, "after")
        placement = _placement(ctx, storage[0], path)
        names = _hosts_by_address(ctx)
        host = host_to_stop(storage, [names.get(n.ip, n.ip) for n in placement.primaries])
        if host is None:
            raise CheckFailed(
                f"no storage host holds a primary of partition {placement.partition} (ring "
                f"nodes {[n.ip for n in placement.primaries]}) — the rings must use the "
                "storage hosts' addresses"
            )
        node = next(n for n in placement.primaries if names.get(n.ip) == host)
        copy_url = object_server_url(node, placement.partition, path)
        try:
            _systemctl(ctx, host, "stop")
            if _copy_status(copy_url).isdigit():
                raise CheckFailed(f"{host}'s object server still answers after systemctl stop")
            started = time.monotonic()
            try:
                store.upload_object(container=container, name="after", data=after)
                same = [store.download_object(n, container=container) for n in ("before", "after")]
            except Exception as exc:  # the API's answer, said with what was down
                raise CheckFailed(
                    f"with {host}'s servers stopped: {explain(exc, ctx.settings)} — see "
                    "`journalctl -u swift-proxy` on the proxy hosts"
                ) from exc
            if same != [before, after]:
                raise CheckFailed(f"with {host} down the proxy reads other bytes than were put")
            took = time.monotonic() - started
        finally:
            _systemctl(ctx, host, "start")
        restarted = time.monotonic()
        _wait(
            f"{host} did not get its copy of the object written while it was down",
            REPLICATION_TIMEOUT,
            lambda: _copy_status(copy_url) == "200",
            interval=SLOW_POLL,
            explain=lambda m: (
                f"{m}: direct HEAD {_copy_status(copy_url)} — see `journalctl -u "
                f"swift-object-replicator` on the other storage hosts and rsync on {host}"
            ),
        )
    finally:
        # By name: the listing may not show "after" yet (its container update
        # waits on the host that was down), and a listing-led delete would
        # leave it and the container behind.
        for name in ("before", "after"):
            store.delete_object(name, container=container, ignore_missing=True)
        remove_containers(conn, container)
    return (
        f"stopped {', '.join(SERVER_UNITS)} on {host}: an object written and it and an older "
        f"one read through the proxy in {took:.2f} s; started again, {host} held its copy "
        f"({node.device}, partition {placement.partition}) after "
        f"{time.monotonic() - restarted:.0f} s"
    )
