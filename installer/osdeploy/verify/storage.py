"""Verify checks of block storage: Ceph and Cinder, with real guests.

Ceph: health OK (muted checks aside) with every OSD up and in, every PG
active+clean. Cinder: every service up; then one scenario, run right after
the compute scenario's SSH step (while its servers, one per compute host,
are up; `after="compute_ssh"`): a volume attached to the server on one host,
a known pattern written to it from inside the guest over SSH, detached,
attached to the server on another host, the same pattern read back there;
then snapshot, a volume from the snapshot, extend, backup and restore, the
RBD images' data compared on the Ceph side; at last everything deleted and
no RBD image of it left in the pools.

Commands on the hosts run as root (sudo) over the deployment's SSH: the
ceph and rbd CLIs where osdeploy.verify.ceph says (the first monitor host as
client.admin, or with an existing cluster the pool's service user), ssh
into the guests from the first network host (the compute scenario's key).
"""

from __future__ import annotations

import hashlib
import json
import shlex
import time
from typing import Any

from osdeploy.testimage import MARKER_UP
from osdeploy.verify import ceph
from osdeploy.verify.compute import (
    BOOT_TIMEOUT,
    CONSOLE_TIMEOUT,
    FLAVOR,
    IMAGE_NAME,
    KEY_FILE,
    POLL,
    SLOW_POLL,
    _console,
    _need,
    _network_host,
    _on_host,
    _wait,
)
from osdeploy.verify.core import PREFIX, CheckFailed, VerifyContext, check

#: Bytes of the pattern a guest writes to the start of a volume.
PATTERN_BYTES = 4 * 1024 * 1024
VOLUME_TIMEOUT = 180
ATTACH_TIMEOUT = 180
BACKUP_TIMEOUT = 300
#: Seconds Ceph may take to be healthy (OSDs peering after a boot).
HEALTH_TIMEOUT = 180
#: Pools (by use) whose RBD images belong to Cinder: volumes and their backups.
CINDER_POOLS = ("volumes", "backups")


# -- pure helpers --------------------------------------------------------------


def pattern(volume_id: str) -> bytes:
    """The pattern written to a volume: its id, repeated, PATTERN_BYTES long."""
    line = f"osdeploy {volume_id}\n".encode()
    return (line * (PATTERN_BYTES // len(line) + 1))[:PATTERN_BYTES]


def pattern_sha256(volume_id: str) -> str:
    return hashlib.sha256(pattern(volume_id)).hexdigest()


def guest_disk_script(volume_id: str, write: bool) -> str:
    """Shell (busybox) run in the guest: find the volume's disk by its serial
    (the first 20 characters of the volume id), optionally write the pattern
    to it, then print ``DISK <name> <sha256 of its first PATTERN_BYTES>``."""
    serial = volume_id[:20]
    line = shlex.quote(f"osdeploy {volume_id}")
    writer = (
        f"yes {line} | head -c {PATTERN_BYTES} | dd of=/dev/$disk bs=65536 conv=fsync 2>/dev/null; "
        if write
        else ""
    )
    return (
        "disk=''; for d in /sys/block/vd*; do "
        f'[ "$(cat $d/serial 2>/dev/null)" = {serial} ] && disk=${{d##*/}}; done; '
        '[ -n "$disk" ] || { echo NODISK; exit 3; }; '
        f"{writer}"
        f"echo DISK $disk $(head -c {PATTERN_BYTES} /dev/$disk | sha256sum | cut -d' ' -f1)"
    )


def parse_disk_line(output: str) -> tuple[str, str] | None:
    """(disk, sha256) from the guest script's ``DISK`` line, None without one."""
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "DISK":
            return parts[1], parts[2]
    return None


def ceph_health_problems(status: dict[str, Any]) -> list[str]:
    """What keeps ``ceph status --format json`` from a healthy cluster."""
    problems: list[str] = []
    health = status.get("health", {})
    if health.get("status") != "HEALTH_OK":
        checks = sorted(health.get("checks", {}))
        problems.append(f"{health.get('status')} ({', '.join(checks) or 'no checks named'})")
    osdmap = status.get("osdmap", {})
    osdmap = osdmap.get("osdmap", osdmap)  # nested in older releases
    total, up, in_ = (osdmap.get(k, 0) for k in ("num_osds", "num_up_osds", "num_in_osds"))
    if not total:
        problems.append("no OSDs")
    elif up != total or in_ != total:
        problems.append(f"{up} of {total} OSDs up, {in_} in")
    pgmap = status.get("pgmap", {})
    states = {s["state_name"]: s["count"] for s in pgmap.get("pgs_by_state", [])}
    unclean = {k: v for k, v in states.items() if k != "active+clean"}
    if unclean:
        problems.append("PGs " + ", ".join(f"{v} {k}" for k, v in sorted(unclean.items())))
    return problems


def images_of(listing: list[str], ids: list[str]) -> list[str]:
    """The RBD image names in ``listing`` that belong to any of ``ids``."""
    return [name for name in listing if any(i in name for i in ids)]


# -- helpers on the cloud --------------------------------------------------------


def _rbd_images(ctx: VerifyContext, use: str) -> list[str]:
    return list(json.loads(ceph.run(ctx, use, "rbd{who} ls --pool {pool} --format json") or "[]"))


def _rbd_sha256(ctx: VerifyContext, use: str, image: str) -> str:
    command = (
        f"rbd{{who}} export {{pool}}/{image} - 2>/dev/null | head -c {PATTERN_BYTES} | sha256sum"
    )
    return ceph.run(ctx, use, f"sh -c {shlex.quote(command)}").split()[0]


def _settle(conn: Any, resource: Any, status: str, what: str, timeout: float, **want: Any) -> Any:
    """``resource`` (a volume, snapshot or backup) as fetched once it has
    ``status`` (and the attributes ``want``). Always fetched again: the sdk's
    wait_for_status would take the stale object's own status for an answer."""
    storage = conn.block_storage
    getter = {"volume": storage.get_volume, "snapshot": storage.get_snapshot}.get(
        resource.resource_key, storage.get_backup
    )
    seen: list[str] = ["?"]

    def settled() -> Any:
        fresh = getter(resource.id)
        seen[0] = str(fresh.status)
        if fresh.status in ("error", "error_restoring", "error_extending"):
            raise CheckFailed(
                f"{what} is {fresh.status} — see cinder-volume.log and cinder-backup.log on "
                "the storage hosts"
            )
        done = fresh.status == status and all(getattr(fresh, k) == v for k, v in want.items())
        return fresh if done else None

    return _wait(
        f"{what} did not become {status}",
        timeout,
        settled,
        explain=lambda m: f"{m}: it is {seen[0]}",
    )


def _backup(conn: Any, volume: Any) -> Any:
    """A backup of ``volume``, once available. The scheduler learns of a
    cinder-backup from its first periodic report, a minute or two after it
    started: until then a backup fails at once with "Service not found";
    such a backup is deleted and asked for again."""
    storage = conn.block_storage
    deadline = time.monotonic() + BACKUP_TIMEOUT
    while True:
        backup = storage.create_backup(volume_id=volume.id, name=f"{PREFIX}-backup")
        try:
            return _settle(conn, backup, "available", "backup", BACKUP_TIMEOUT)
        except CheckFailed:
            reason = str(storage.get_backup(backup.id).fail_reason or "")
            if "Service not found" not in reason or time.monotonic() > deadline:
                raise CheckFailed(f"backup failed: {reason or 'no reason given'}") from None
            storage.delete_backup(backup)
            storage.wait_for_delete(backup, interval=POLL, wait=VOLUME_TIMEOUT)
            time.sleep(10)


def _in_guest(ctx: VerifyContext, address: str, script: str) -> tuple[str, str]:
    """Run ``script`` in the guest at ``address`` over SSH from the network host."""
    gateway = _network_host(ctx)
    command = (
        f"ssh -i {KEY_FILE} -o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=no "
        f"-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@{shlex.quote(address)} "
        f"{shlex.quote(script)}"
    )
    seen: list[str] = [""]

    def ran() -> tuple[str, str] | None:
        code, out = _on_host(ctx, gateway, command)
        seen[0] = out.strip()[-300:] or f"exit code {code}"
        return parse_disk_line(out) if code == 0 else None

    result: tuple[str, str] = _wait(
        f"ssh root@{address}",
        ATTACH_TIMEOUT,
        ran,
        interval=SLOW_POLL,
        explain=lambda m: f"{m} from {gateway}: {seen[0]}",
    )
    return result


def _floating_ip(ctx: VerifyContext, conn: Any, host: str) -> str:
    """The floating IP of the server on ``host``, made when it has none."""
    known: dict[str, str] = ctx.scratch.setdefault("floating_ips", {})
    if host not in known:
        first = next(iter(ctx.scratch["servers"]))
        if host == first and "floating_ip" in ctx.scratch:
            known[host] = ctx.scratch["floating_ip"]
        else:
            fip = conn.network.create_ip(
                floating_network_id=ctx.scratch["external"].id,
                port_id=ctx.scratch["ports"][host].id,
                description=f"{PREFIX} floating IP",
            )
            known[host] = fip.floating_ip_address
    return known[host]


def _attach(conn: Any, server: Any, volume: Any, host: str) -> None:
    conn.compute.create_volume_attachment(server, volume=volume.id)
    _settle(conn, volume, "in-use", f"volume attached to the server on {host}", ATTACH_TIMEOUT)


def _detach(conn: Any, server: Any, volume: Any, host: str) -> None:
    """Detach and wait until Nova no longer lists the attachment: Cinder may
    call the volume available while nova-compute still removes the device."""
    conn.compute.delete_volume_attachment(server, volume.id)

    def gone() -> bool:
        attached = {a.volume_id for a in conn.compute.volume_attachments(server)}
        return volume.id not in attached

    _wait(
        "detach",
        ATTACH_TIMEOUT,
        gone,
        explain=lambda m: (
            f"volume {m} from the server on {host} did not finish — see nova-compute.log on {host}"
        ),
    )
    _settle(conn, volume, "available", f"volume detached from the server on {host}", ATTACH_TIMEOUT)


#: The volume of volume_boot, which runs beside the other volume checks.
BOOT_VOLUME = f"{PREFIX}-boot"


def _cleanup_volumes(conn: Any, keep: str = "") -> list[str]:
    """Delete every volume, snapshot and backup of this scenario (by name
    prefix), but a volume named ``keep``."""
    storage = conn.block_storage
    removed: list[str] = []
    for backup in [b for b in storage.backups() if (b.name or "").startswith(PREFIX)]:
        storage.delete_backup(backup)
        storage.wait_for_delete(backup, interval=POLL, wait=BACKUP_TIMEOUT)
        removed.append(f"backup {backup.name}")
    for snapshot in [s for s in storage.snapshots() if (s.name or "").startswith(PREFIX)]:
        storage.delete_snapshot(snapshot)
        storage.wait_for_delete(snapshot, interval=POLL, wait=VOLUME_TIMEOUT)
        removed.append(f"snapshot {snapshot.name}")
    volumes = [v for v in storage.volumes() if (v.name or "").startswith(PREFIX) and v.name != keep]
    return _delete_volumes(conn, volumes, removed)


def _delete_volumes(conn: Any, volumes: list[Any], removed: list[str] | None = None) -> list[str]:
    """Delete ``volumes`` (detached first); ``removed`` with a line for each."""
    storage = conn.block_storage
    removed = [] if removed is None else removed
    # Clones (from a snapshot) before the volumes they came from.
    for volume in sorted(volumes, key=lambda v: v.snapshot_id is None):
        if volume.status == "in-use":
            for attachment in volume.attachments or []:
                conn.compute.delete_volume_attachment(attachment["server_id"], volume.id)
            storage.wait_for_status(volume, status="available", interval=POLL, wait=ATTACH_TIMEOUT)
        storage.delete_volume(volume, force=volume.status not in ("available", "error"))
        storage.wait_for_delete(volume, interval=POLL, wait=VOLUME_TIMEOUT)
        removed.append(f"volume {volume.name}")
    return removed


# -- checks ----------------------------------------------------------------------


@check("ceph_health")
def check_ceph_health(ctx: VerifyContext) -> str:
    """HEALTH_OK, every OSD up and in, every PG active+clean; waited for a
    while (OSDs just started, after a host's boot, take seconds to peer)."""
    started = time.monotonic()
    seen: dict[str, Any] = {}

    def healthy() -> bool:
        seen.update(json.loads(ceph.run(ctx, None, "ceph{who} status --format json")))
        return not ceph_health_problems(seen)

    _wait(
        "Ceph not healthy",
        HEALTH_TIMEOUT,
        healthy,
        interval=SLOW_POLL,
        explain=lambda m: (
            f"{m}: {'; '.join(ceph_health_problems(seen))} — see "
            f"`ceph health detail` on {ceph.reader(ctx, None)[0]}"
        ),
    )
    status = seen
    waited = time.monotonic() - started
    note = f" (after {waited:.0f} s)" if waited >= 3 else ""
    osdmap = status.get("osdmap", {})
    osdmap = osdmap.get("osdmap", osdmap)
    pgs = status.get("pgmap", {}).get("num_pgs", 0)
    mons = len(status.get("monmap", {}).get("mons", [])) or status.get("monmap", {}).get(
        "num_mons", "?"
    )
    return (
        f"HEALTH_OK, {mons} monitor(s) in quorum, {osdmap.get('num_osds')} OSDs up and in, "
        f"{pgs} PGs active+clean{note}"
    )


# Cinder's checks are reported after compute_ssh (they use its servers) but
# start as early as they can: cinder_services with the first checks of the
# other services; volume_boot once the test image, flavor and network exist
# (beside the scenario's next steps; compute_lifecycle, which removes the
# network, waits for it); the attach once the servers answer SSH (live
# migration waits for it: both use the servers); the snapshot with the
# attached volume's data; the cleanup last.
@check("cinder_services", after="compute_ssh")
def check_cinder_services(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    services = list(conn.block_storage.services())
    down = [f"{s.binary} on {s.host}" for s in services if s.state != "up" or s.status != "enabled"]
    binaries = {s.binary for s in services if s.state == "up"}
    missing = {"cinder-scheduler", "cinder-volume", "cinder-backup"} - binaries
    if down or missing:
        raise CheckFailed(
            f"cinder services down: {', '.join(down) or 'none'}; missing: "
            f"{', '.join(sorted(missing)) or 'none'} — see /var/log/cinder on their hosts"
        )
    volume_type = conn.block_storage.find_type("ceph")
    if volume_type is None:
        raise CheckFailed("no volume type ceph — run `osdeploy deploy --recheck`")
    return ", ".join(sorted(f"{s.binary}@{s.host}" for s in services)) + " up; volume type ceph"


@check(
    "volume_attach_across_hosts",
    one_attempt=True,
    after="compute_ssh",
    needs=("compute_ssh",),
    before=("compute_live_migration",),
)
def check_volume_attach_across_hosts(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    leftovers = _cleanup_volumes(conn, keep=BOOT_VOLUME)
    volume = conn.block_storage.create_volume(name=f"{PREFIX}-vol", size=1)
    ctx.scratch["volume"] = volume
    volume = _settle(conn, volume, "available", "new volume", VOLUME_TIMEOUT)
    if "nova" not in {service.name for service in ctx.plan.services}:
        return f"volume {volume.id} available; Nova not planned: no guest to attach it to"
    servers = _need(ctx, "servers", "compute_servers")
    _need(ctx, "floating_ip", "compute_floating_ip")
    hosts = list(servers)
    first, second = hosts[0], hosts[-1]
    want = pattern_sha256(volume.id)
    started = time.monotonic()
    _attach(conn, servers[first], volume, first)
    disk, seen = _in_guest(ctx, _floating_ip(ctx, conn, first), guest_disk_script(volume.id, True))
    if seen != want:
        raise CheckFailed(f"the guest on {first} wrote the pattern to {disk}, read back {seen}")
    _detach(conn, servers[first], volume, first)
    _attach(conn, servers[second], volume, second)
    disk2, seen2 = _in_guest(
        ctx, _floating_ip(ctx, conn, second), guest_disk_script(volume.id, False)
    )
    if seen2 != want:
        raise CheckFailed(
            f"the guest on {second} reads {disk2} as {seen2[:12]}…, not the pattern written "
            f"on {first} ({want[:12]}…)"
        )
    _detach(conn, servers[second], volume, second)
    note = f" (removed {len(leftovers)} leftovers)" if leftovers else ""
    return (
        f"1 GiB volume attached on {first} ({disk}), {PATTERN_BYTES >> 20} MiB pattern written "
        f"over SSH, detached, attached on {second} ({disk2}), read back equal, detached in "
        f"{time.monotonic() - started:.0f} s{note}"
    )


@check(
    "volume_snapshot_extend_backup",
    one_attempt=True,
    after="compute_ssh",
    needs=("volume_attach_across_hosts",),
)
def check_volume_snapshot_extend_backup(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    storage = conn.block_storage
    volume = _need(ctx, "volume", "volume_attach_across_hosts")
    want = _rbd_sha256(ctx, "volumes", f"volume-{volume.id}")
    if f"volume-{volume.id}" not in _rbd_images(ctx, "volumes"):
        pool = ceph.pool_name(ctx.config, "volumes")
        raise CheckFailed(f"no RBD image volume-{volume.id} in pool {pool}")
    snapshot = storage.create_snapshot(volume_id=volume.id, name=f"{PREFIX}-snap")
    _settle(conn, snapshot, "available", "snapshot", VOLUME_TIMEOUT)
    clone = storage.create_volume(name=f"{PREFIX}-from-snap", snapshot_id=snapshot.id, size=1)
    clone = _settle(conn, clone, "available", "volume from the snapshot", VOLUME_TIMEOUT)
    storage.extend_volume(volume, 2)
    volume = _settle(conn, volume, "available", "volume extended to 2 GiB", VOLUME_TIMEOUT, size=2)
    backup = _backup(conn, volume)
    backup_images = _rbd_images(ctx, "backups")
    if not images_of(backup_images, [volume.id]):
        pool = ceph.pool_name(ctx.config, "backups")
        raise CheckFailed(f"the backup left no RBD image in pool {pool} ({backup_images})")
    restore = storage.restore_backup(backup, name=f"{PREFIX}-restored")
    restored = storage.get_volume(restore.volume_id)
    restored = _settle(conn, restored, "available", "restored volume", BACKUP_TIMEOUT)
    sums = {
        "from the snapshot": _rbd_sha256(ctx, "volumes", f"volume-{clone.id}"),
        "restored from the backup": _rbd_sha256(ctx, "volumes", f"volume-{restored.id}"),
        "extended": _rbd_sha256(ctx, "volumes", f"volume-{volume.id}"),
    }
    differ = [name for name, sha in sums.items() if sha != want]
    if differ:
        raise CheckFailed(f"data differs from the original in the volume {', '.join(differ)}")
    ctx.scratch["volume"] = volume
    return (
        "snapshot, volume from it, extend to 2 GiB, backup to pool backups, restore: "
        f"the first {PATTERN_BYTES >> 20} MiB equal in all (sha256 {want[:12]}…)"
    )


@check(
    "volume_boot",
    one_attempt=True,
    after="compute_ssh",
    needs=("compute_servers",),
    before=("compute_lifecycle",),
)
def check_volume_boot(ctx: VerifyContext) -> str:
    """A server whose root disk is a volume made from the test image (a clone
    of its RBD image when Glance is on Ceph): it boots, and nothing of it is
    in Nova's pool; the volume outlives the server."""
    conn = ctx.admin()
    if "nova" not in {service.name for service in ctx.plan.services}:
        return "Nova not planned: no server to boot from a volume"
    network = _need(ctx, "network", "compute_network")
    image = conn.image.find_image(IMAGE_NAME)
    flavor = conn.compute.find_flavor(FLAVOR["name"])
    if image is None or flavor is None:
        raise CheckFailed("skipped: compute_servers did not make the test image and flavor")
    # An interrupted run's boot volume (the attach's sweep spares it).
    _delete_volumes(conn, [v for v in conn.block_storage.volumes() if v.name == BOOT_VOLUME])
    volume = conn.block_storage.create_volume(name=BOOT_VOLUME, size=2, image_id=image.id)
    volume = _settle(conn, volume, "available", "volume from the test image", VOLUME_TIMEOUT)
    started = time.monotonic()
    server = conn.compute.create_server(
        name=f"{PREFIX}-boot",
        flavor_id=flavor.id,
        networks=[{"uuid": network.id}],
        security_groups=[{"name": ctx.scratch["group"].name}],
        block_device_mapping=[
            {
                "boot_index": 0,
                "uuid": volume.id,
                "source_type": "volume",
                "destination_type": "volume",
                "delete_on_termination": False,
            }
        ],
    )
    try:
        server = conn.compute.wait_for_server(
            server, status="ACTIVE", failures=["ERROR"], interval=POLL, wait=BOOT_TIMEOUT
        )
        _wait(
            f"console of the server booted from volume never showed {MARKER_UP!r}",
            CONSOLE_TIMEOUT,
            lambda: MARKER_UP in _console(conn, server),
            interval=SLOW_POLL,
        )
        booted = time.monotonic() - started
        if any(name.startswith(server.id) for name in _rbd_images(ctx, "vms")):
            pool = ceph.pool_name(ctx.config, "vms")
            raise CheckFailed(
                f"the server booted from volume has a disk in pool {pool}: {server.id}"
            )
    finally:
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, interval=POLL, wait=BOOT_TIMEOUT)
    volume = _settle(conn, volume, "available", "boot volume after its server", ATTACH_TIMEOUT)
    return (
        f"server booted from a 2 GiB volume of image {IMAGE_NAME} on {server.compute_host} in "
        f"{booted:.0f} s (its root is volume-{volume.id[:8]}…, nothing in pool vms); "
        "the volume is available again after the server's delete"
    )


@check(
    "volume_cleanup",
    one_attempt=True,
    after="compute_ssh",
    needs=("volume_snapshot_extend_backup", "volume_boot"),
)
def check_volume_cleanup(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    ids = [v.id for v in conn.block_storage.volumes() if (v.name or "").startswith(PREFIX)] + [
        b.id for b in conn.block_storage.backups() if (b.name or "").startswith(PREFIX)
    ]
    removed = _cleanup_volumes(conn)
    ctx.scratch.pop("volume", None)
    left: list[str] = []

    def nothing_left() -> bool:
        left[:] = [
            f"{ceph.pool_name(ctx.config, use)}/{image}"
            for use in CINDER_POOLS
            for image in images_of(_rbd_images(ctx, use), ids)
        ]
        return not left

    _wait(
        "RBD images left after delete",
        VOLUME_TIMEOUT,
        nothing_left,
        interval=SLOW_POLL,
        explain=lambda m: f"{m}: {', '.join(left)}",
    )
    return f"deleted {len(removed)} volumes, snapshots and backups; no RBD image of them left"
