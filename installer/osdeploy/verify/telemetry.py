"""Verify checks of telemetry: Gnocchi's API, and Ceilometer metering what the demo project does.

- `gnocchi_api` (admin, through the catalog's ``metric`` endpoint): the
  status and archive policies answer; a metric created, a measure posted
  and read back once gnocchi-metricd aggregated it (no ``refresh``, so
  metricd must work), the metric deleted.
- `telemetry_resources` (as the demo user in project demo): a server (the
  verify flavor and test image, on a network of its own), a small image
  of known size, a 1 GiB volume (with Cinder), a container with an object
  of known size (with Swift); an earlier run's are removed first.
  Everything is named ``osdeploy-meter*``.
- `telemetry_instance`, `telemetry_image`, `telemetry_volume`,
  `telemetry_objects`: within `METER_TIMEOUT` of the resources' creation,
  Gnocchi (read as admin) holds each as a resource with measures: the
  instance's ``cpu`` and ``memory``/``memory.usage``, the image's
  ``image.size`` (the bytes uploaded), the volume's ``volume.size`` (1),
  the project's Swift account with a ``storage.objects*`` measure.
- `telemetry_usage`: the project's usage table, computed by
  `osdeploy.usage.collect` as `osdeploy usage` does, over the window since
  the resources were made, against what this run made and for how long
  (instance hours, CPU time, volume GB-hours, image and object bytes). The
  table goes to ``<deployment>/logs/verify-usage.txt``.
- `telemetry_cleanup`: removes what `telemetry_resources` made (it runs
  when the checks before it failed, too).

Gnocchi is read with ``refresh=true`` in the per-resource checks: the
measures Ceilometer sent are aggregated on reading, so each check waits
for Ceilometer (its polling interval, its notifications), not for
metricd's schedule.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from osdeploy.verify.compute import FLAVOR, IMAGE_NAME, POLL, _wait
from osdeploy.verify.core import PREFIX, CheckFailed, VerifyContext, check
from osdeploy.verify.dashboard import remove_named
from osdeploy.verify.identity import DEMO_NAME, DEMO_PASSWORD_KEY, demo_settings

if TYPE_CHECKING:
    from osdeploy.gnocchi import Gnocchi, Point
    from osdeploy.usage import UsageRow

#: Name prefix of what the telemetry checks make in the demo project.
METER = "osdeploy-meter"
NET_CIDR = "192.168.75.0/24"
IMAGE_BYTES = 6 * 1024
OBJECT_BYTES = 5000
VOLUME_GB = 1
#: Seconds from the resources' creation until Gnocchi must hold them all:
#: a few polling intervals (the lab polls every 60 s or less).
METER_TIMEOUT = 360
#: Seconds between two looks at Gnocchi (each a few requests).
METER_POLL = 5.0
READY_TIMEOUT = 300
#: Seconds gnocchi-metricd may take to aggregate a posted measure (it looks
#: for new measures every metric_processing_delay, 60 s by default).
METRICD_TIMEOUT = 180
#: Ceilometer's polling interval in the lab (at most), and the slack the
#: usage table's hours may be off by beyond it (notification delays,
#: metricd, the window's rounding to seconds).
POLLING_INTERVAL = 60
SLACK = 60
USAGE_LOG = "verify-usage.txt"
#: The resource `gnocchi_api` writes a measure to: a fixed id, so that a
#: killed run's is found and removed (with its metric) by the next one.
PROBE_RESOURCE = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{PREFIX}-gnocchi.osdeploy.invalid"))
PROBE_METRIC = "probe"
MEASURE_VALUE = 42.0


# -- pure helpers --------------------------------------------------------------


def timespan_seconds(value: Any) -> float:
    """Seconds of a Gnocchi timespan as its API writes them: ``"0:05:00"``,
    ``"30 days, 0:00:00"``, or a number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    days = 0.0
    if "day" in text:
        count, _, text = text.partition(" day")
        days = float(count)
        text = text.split(",", 1)[1].strip() if "," in text else "0:00:00"
    hours, minutes, seconds = (float(part) for part in text.split(":"))
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def pick_policy(policies: Sequence[dict[str, Any]]) -> str | None:
    """The archive policy with the finest granularity that keeps ``mean``
    (the quickest to show a posted measure); None when there is none."""
    usable = [
        (min(timespan_seconds(d["granularity"]) for d in p["definition"]), str(p["name"]))
        for p in policies
        if "mean" in (p.get("aggregation_methods") or []) and p.get("definition")
    ]
    return min(usable)[1] if usable else None


def usage_problems(
    rows: Sequence[UsageRow],
    expected: dict[str, Any],
    stop: datetime,
    tolerance: float = POLLING_INTERVAL + SLACK,
) -> list[str]:
    """What the usage table says wrongly about what verify made (empty: it agrees).

    ``expected``: ``server`` (id, launched: datetime, vcpus), ``volume`` (id,
    created: datetime, size), ``image`` (id, bytes), ``container`` (name
    ``<project>/<container>``, bytes, project); each optional."""
    by_id = {r.resource_id: r for r in rows}
    problems: list[str] = []
    server = expected.get("server")
    if server:
        row = by_id.get(server["id"])
        alive = (stop - server["launched"]).total_seconds()
        if row is None:
            problems.append(f"no instance row for server {server['id']}")
        else:
            if abs(row.hours * 3600 - alive) > tolerance:
                problems.append(
                    f"instance hours {row.hours:.4f} ({row.hours * 3600:.0f} s), the server "
                    f"has run {alive:.0f} s (tolerance {tolerance:.0f} s)"
                )
            cpu = row.cpu_seconds
            if cpu is None or cpu <= 0 or cpu > server["vcpus"] * (alive + tolerance):
                problems.append(
                    f"CPU time {cpu} s, want > 0 and <= {server['vcpus']} vCPU x {alive:.0f} s"
                )
    volume = expected.get("volume")
    if volume:
        row = by_id.get(volume["id"])
        alive = (stop - volume["created"]).total_seconds()
        want = volume["size"] * alive / 3600
        slack = volume["size"] * tolerance / 3600
        if row is None or row.disk_gb_hours is None:
            problems.append(f"no volume GB-hours for volume {volume['id']}")
        elif abs(row.disk_gb_hours - want) > slack:
            problems.append(
                f"volume GB-hours {row.disk_gb_hours:.5f}, want {want:.5f} "
                f"({volume['size']} GB x {alive:.0f} s)"
            )
    image = expected.get("image")
    if image:
        row = by_id.get(image["id"])
        if row is None or row.bytes != image["bytes"]:
            seen = "no row" if row is None else f"{row.bytes} bytes"
            problems.append(f"image {image['id']}: {seen}, uploaded {image['bytes']}")
    container = expected.get("container")
    if container:
        # Ceilometer names a container's resource <project>_<container>.
        row = by_id.get(container["name"]) or by_id.get(container["name"].replace("/", "_", 1))
        account = by_id.get(container["project"])
        # Stored bytes, not equal to the PUT but above zero and at most
        # it: Swift's account listing, which the pollster reads, learns a
        # container's bytes from the container-updater (every 300 s), and
        # a 5-minute mean mixes the polls before it (0) and after (PUT).
        if row is not None:
            if not row.bytes or row.bytes > container["bytes"]:
                problems.append(
                    f"container {container['name']}: {row.bytes} bytes, "
                    f"want more than 0 and at most the {container['bytes']} PUT"
                )
        elif account is None or not account.bytes:
            seen = "no row" if account is None else f"{account.bytes} bytes"
            problems.append(
                f"Swift account {container['project']}: {seen}, PUT {container['bytes']} "
                f"(and no row for container {container['name']})"
            )
    return problems


def _last(points: Sequence[Point]) -> float | None:
    from osdeploy.usage import last_value

    return last_value(points)


# -- gnocchi -------------------------------------------------------------------


def _gnocchi(ctx: VerifyContext) -> Gnocchi:
    from osdeploy.gnocchi import Gnocchi

    return Gnocchi(ctx.admin())


# Not one_attempt: a connection uwsgi dropped is tried again, and the probe
# resource (a fixed id) an interrupted attempt left is removed first.
@check("gnocchi_api")
def check_gnocchi_api(ctx: VerifyContext) -> str:
    gnocchi = _gnocchi(ctx)
    status = gnocchi.status()
    backlog = ((status.get("storage") or {}).get("summary") or {}).get("measures", "?")
    processors = len((status.get("metricd") or {}).get("processors") or [])
    policies = gnocchi.archive_policies()
    policy = pick_policy(policies)
    if policy is None:
        raise CheckFailed(
            f"Gnocchi at {gnocchi.endpoint()} has no archive policy keeping 'mean' — "
            "gnocchi-upgrade creates them; re-run `osdeploy deploy --services gnocchi`"
        )
    stale = gnocchi.delete_resource("generic", PROBE_RESOURCE)
    conn = ctx.admin()
    resource = gnocchi.create_resource(
        "generic",
        {
            "id": PROBE_RESOURCE,
            "project_id": conn.current_project_id,
            "user_id": conn.current_user_id,
            "metrics": {PROBE_METRIC: {"archive_policy_name": policy}},
        },
    )
    metric_id = str(resource["metrics"][PROBE_METRIC])
    try:
        gnocchi.add_measures(metric_id, [(datetime.now(UTC), MEASURE_VALUE)])
        started = time.monotonic()
        points = _wait(
            f"the measure posted to metric {metric_id} never showed aggregated",
            METRICD_TIMEOUT,
            lambda: gnocchi.measures(metric_id),
            interval=METER_POLL,
            explain=lambda m: (
                f"{m} — is gnocchi-metricd running? `journalctl -u gnocchi-metricd` on "
                f"{', '.join(h for h, _ in ctx.service_hosts('gnocchi'))}"
            ),
        )
        took = time.monotonic() - started
        if _last(points) != MEASURE_VALUE:
            raise CheckFailed(f"posted {MEASURE_VALUE}, Gnocchi aggregated {points}")
    finally:
        gnocchi.delete_resource("generic", PROBE_RESOURCE)
    note = " (an earlier run's probe removed first)" if stale else ""
    return (
        f"{len(policies)} archive policies, {backlog} measures waiting, {processors} metricd "
        f"processor(s); a measure posted to a {policy} metric read back as aggregated by "
        f"metricd after {took:.0f} s, its resource deleted{note}"
    )


# -- the demo project's resources ----------------------------------------------


def _demo(ctx: VerifyContext) -> Any:
    return ctx.connect(demo_settings(ctx), DEMO_PASSWORD_KEY)


def _sweep(ctx: VerifyContext, conn: Any) -> list[str]:
    """Remove everything named osdeploy-meter* from the demo project; what went."""
    removed = remove_named(ctx, conn, METER)
    own = conn.image.images(owner=conn.current_project_id)
    images = [i for i in own if str(i.name or "").startswith(METER)]
    for image in images:
        conn.image.delete_image(image)
    return removed + [i.name for i in images]


def _utc_time(value: Any, default: datetime) -> datetime:
    from osdeploy.usage import parse_time

    try:
        return parse_time(str(value or "")) or default
    except ValueError:
        return default


@check(
    "telemetry_resources",
    one_attempt=True,
    needs=("keystone_token_demo", "compute_servers", "gnocchi_api"),
)
def check_telemetry_resources(ctx: VerifyContext) -> str:
    conn = _demo(ctx)
    made: dict[str, Any] = {"project": conn.current_project_id, "start": datetime.now(UTC)}
    ctx.scratch["meter"] = made
    ctx.scratch["meter_deadline"] = time.monotonic() + METER_TIMEOUT
    try:
        removed = _sweep(ctx, conn)
        # The clock starts once an earlier run's leftovers are gone.
        made["start"] = datetime.now(UTC)
        ctx.scratch["meter_deadline"] = time.monotonic() + METER_TIMEOUT
        pending: list[Callable[[], None]] = []
        if "nova" in ctx.plan and "neutron" in ctx.plan:
            image = conn.image.find_image(IMAGE_NAME)
            flavor = conn.compute.find_flavor(FLAVOR["name"])
            if image is None or flavor is None:
                raise CheckFailed(
                    f"no image {IMAGE_NAME} or flavor {FLAVOR['name']} — compute_servers makes them"
                )
            network = conn.network.create_network(name=f"{METER}-net")
            conn.network.create_subnet(
                name=f"{METER}-subnet", network_id=network.id, ip_version=4, cidr=NET_CIDR
            )
            server = conn.compute.create_server(
                name=f"{METER}-server",
                image_id=image.id,
                flavor_id=flavor.id,
                networks=[{"uuid": network.id}],
            )

            def server_ready() -> None:
                ready = conn.compute.wait_for_server(
                    server, status="ACTIVE", failures=["ERROR"], interval=POLL, wait=READY_TIMEOUT
                )
                launched = _utc_time(getattr(ready, "launched_at", None), datetime.now(UTC))
                made["server"] = {"id": ready.id, "launched": launched, "vcpus": flavor.vcpus}

            pending.append(server_ready)
        if "cinder" in ctx.plan:
            volume = conn.block_storage.create_volume(name=f"{METER}-volume", size=VOLUME_GB)
            created = datetime.now(UTC)

            def volume_ready() -> None:
                conn.block_storage.wait_for_status(
                    volume, "available", failures=["error"], interval=POLL, wait=READY_TIMEOUT
                )
                made["volume"] = {"id": volume.id, "created": created, "size": VOLUME_GB}

            pending.append(volume_ready)
        data = os.urandom(IMAGE_BYTES)
        uploaded = conn.image.create_image(
            name=f"{METER}-image", data=data, disk_format="raw", container_format="bare", wait=True
        )
        made["image"] = {"id": uploaded.id, "bytes": IMAGE_BYTES}
        if "swift" in ctx.plan:
            container = f"{METER}-container"
            conn.object_store.create_container(name=container)
            conn.object_store.upload_object(
                container=container, name="meter.bin", data=os.urandom(OBJECT_BYTES)
            )
            made["container"] = {
                "name": f"{made['project']}/{container}",
                "bytes": OBJECT_BYTES,
                "project": made["project"],
            }
        for ready in pending:
            ready()
    finally:
        conn.close()
    note = f" (an earlier run's {len(removed)} removed first)" if removed else ""
    kinds = [k for k in ("server", "image", "volume", "container") if k in made]
    return f"as {DEMO_NAME}: {', '.join(kinds)} made{note}"


def _made(ctx: VerifyContext, key: str) -> dict[str, Any] | None:
    made = ctx.scratch.get("meter")
    if made is None:
        raise CheckFailed("skipped: telemetry_resources did not run")
    value = made.get(key)
    return dict(value) if value else None


def _until_metered(
    ctx: VerifyContext, what: str, look: Callable[[], str | None], hint: str
) -> tuple[str, float]:
    """Poll ``look`` (a description of what Gnocchi holds, or None) until it
    answers or the telemetry deadline passes; (its answer, seconds since the
    resources were made)."""
    deadline = float(ctx.scratch.get("meter_deadline", time.monotonic()))
    made = ctx.scratch["meter"]["start"]
    last: list[str] = []

    def answered() -> str | None:
        try:
            return look()
        except CheckFailed as exc:  # seen, not yet right: say it at the end
            last[:] = [str(exc)]
            return None

    found = _wait(
        what,
        max(deadline - time.monotonic(), 1.0),
        answered,
        interval=METER_POLL,
        explain=lambda m: f"{m}; last seen: {last[0] if last else 'nothing'} — {hint}",
    )
    return str(found), (datetime.now(UTC) - made).total_seconds()


CEILOMETER_HINT = (
    "see ceilometer-agent-notification.log and ceilometer-polling.log on the hosts, "
    "and gnocchi-api's log"
)


def _measured(gnocchi: Gnocchi, resource: dict[str, Any], name: str) -> list[Point]:
    metric = (resource.get("metrics") or {}).get(name)
    return gnocchi.measures(str(metric), refresh=True) if metric else []


@check("telemetry_instance")
def check_telemetry_instance(ctx: VerifyContext) -> str:
    if "nova" not in ctx.plan:
        return "skipped: Nova is not planned"
    server = _made(ctx, "server")
    if server is None:
        raise CheckFailed("skipped: telemetry_resources made no server")
    gnocchi = _gnocchi(ctx)

    def look() -> str | None:
        resource = gnocchi.resource("instance", server["id"])
        if resource is None:
            return None
        cpu = _measured(gnocchi, resource, "cpu")
        memory = _measured(gnocchi, resource, "memory") or _measured(
            gnocchi, resource, "memory.usage"
        )
        if not cpu or not memory:
            raise CheckFailed(
                f"instance resource with {len(cpu)} cpu and {len(memory)} memory points "
                f"(metrics: {', '.join(sorted(resource.get('metrics') or {}))})"
            )
        return (
            f"{len(cpu)} cpu points (last {(_last(cpu) or 0) / 1e9:.1f} s CPU), "
            f"{len(memory)} memory points (last {_last(memory):.0f} MB)"
        )

    seen, after = _until_metered(
        ctx,
        f"no instance resource with cpu and memory for server {server['id']}",
        look,
        CEILOMETER_HINT + " (compute polling on the server's host)",
    )
    return f"instance {server['id']} in Gnocchi {after:.0f} s after it was made: {seen}"


def _gauge_metered(
    ctx: VerifyContext, made: dict[str, Any], rtype: str, metric: str, want: float, hint: str
) -> str:
    """Wait until Gnocchi holds the ``rtype`` resource of ``made['id']`` whose
    ``metric`` last reads ``want``; the check's line."""
    gnocchi = _gnocchi(ctx)

    def look() -> str | None:
        resource = gnocchi.resource(rtype, made["id"])
        if resource is None:
            return None
        value = _last(_measured(gnocchi, resource, metric))
        if value != want:
            raise CheckFailed(f"{rtype} resource with {metric} {value}")
        return f"{metric} {value:.0f}"

    seen, after = _until_metered(
        ctx,
        f"no {rtype} resource with {metric} {want} for {rtype} {made['id']}",
        look,
        f"{CEILOMETER_HINT} ({hint})",
    )
    return f"{rtype} {made['id']} in Gnocchi {after:.0f} s after it was made: {seen}"


@check("telemetry_image")
def check_telemetry_image(ctx: VerifyContext) -> str:
    image = _made(ctx, "image")
    if image is None:
        raise CheckFailed("skipped: telemetry_resources made no image")
    line = _gauge_metered(
        ctx, image, "image", "image.size", image["bytes"], "glance's notifications"
    )
    return f"{line} bytes == bytes uploaded"


@check("telemetry_volume")
def check_telemetry_volume(ctx: VerifyContext) -> str:
    if "cinder" not in ctx.plan:
        return "skipped: Cinder is not planned"
    volume = _made(ctx, "volume")
    if volume is None:
        raise CheckFailed("skipped: telemetry_resources made no volume")
    line = _gauge_metered(
        ctx, volume, "volume", "volume.size", volume["size"], "cinder's notifications"
    )
    return f"{line} GB"


@check("telemetry_objects")
def check_telemetry_objects(ctx: VerifyContext) -> str:
    if "swift" not in ctx.plan:
        return "skipped: Swift is not planned"
    container = _made(ctx, "container")
    if container is None:
        raise CheckFailed("skipped: telemetry_resources made no container")
    gnocchi = _gnocchi(ctx)
    project = container["project"]

    def look() -> str | None:
        resource = gnocchi.resource("swift_account", project)
        if resource is None:
            return None
        metrics = sorted(
            n for n in (resource.get("metrics") or {}) if n.startswith("storage.objects")
        )
        seen = {name: _measured(gnocchi, resource, name) for name in metrics}
        seen = {name: points for name, points in seen.items() if points}
        if not seen:
            raise CheckFailed("swift_account resource without storage.objects* measures")
        return ", ".join(f"{name} {_last(points):.0f}" for name, points in seen.items())

    seen, after = _until_metered(
        ctx,
        f"no swift_account resource with storage.objects* measures for project {project}",
        look,
        CEILOMETER_HINT + " (swift proxy's ceilometer middleware, central polling)",
    )
    return f"Swift account {project} in Gnocchi {after:.0f} s after the PUT: {seen}"


@check("telemetry_usage")
def check_telemetry_usage(ctx: VerifyContext) -> str:
    from osdeploy.gnocchi import Gnocchi
    from osdeploy.usage import collect, format_table

    made = ctx.scratch.get("meter")
    if made is None:
        raise CheckFailed("skipped: telemetry_resources did not run")
    expected = {k: made[k] for k in ("server", "volume", "image", "container") if k in made}
    start = made["start"] - timedelta(seconds=POLLING_INTERVAL)
    gnocchi = Gnocchi(ctx.admin())
    seen: dict[str, Any] = {}

    def agrees() -> bool:
        stop = datetime.now(UTC)
        rows = collect(gnocchi, made["project"], start, stop)
        seen.update(rows=rows, stop=stop, problems=usage_problems(rows, expected, stop))
        return not seen["problems"]

    deadline = float(ctx.scratch.get("meter_deadline", time.monotonic()))
    try:
        _wait(
            "the usage table disagrees with what verify made",
            max(deadline - time.monotonic(), 2 * POLLING_INTERVAL),
            agrees,
            interval=METER_POLL,
            explain=lambda m: f"{m}: {'; '.join(seen.get('problems') or [])}",
        )
    finally:
        if "rows" in seen:
            window = f"{start:%H:%M:%S} to {seen['stop']:%H:%M:%S} UTC"
            title = f"project {DEMO_NAME} ({made['project']}), {window}"
            log = ctx.deploy_dir / "logs" / USAGE_LOG
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(format_table(seen["rows"], title), encoding="utf-8")
    rows = seen["rows"]
    by_id = {r.resource_id: r for r in rows}
    parts = []
    if "server" in expected:
        row = by_id[expected["server"]["id"]]
        parts.append(f"instance {row.hours * 3600:.0f} s, CPU {row.cpu_seconds:.1f} s")
    if "volume" in expected:
        parts.append(f"volume {by_id[expected['volume']['id']].disk_gb_hours:.4f} GB-h")
    if "image" in expected:
        parts.append(f"image {IMAGE_BYTES} bytes")
    if "container" in expected:
        container = expected["container"]
        stored = (
            by_id.get(container["name"])
            or by_id.get(container["name"].replace("/", "_", 1))
            or by_id.get(container["project"])
        )
        held = f"{stored.bytes:.0f}" if stored is not None and stored.bytes else "?"
        parts.append(f"objects {held} of {OBJECT_BYTES} bytes stored so far")
    return (
        f"{len(rows)} rows for project {DEMO_NAME} agree with what verify made: "
        + ", ".join(parts)
        + f" (table in {ctx.deploy_dir / 'logs' / USAGE_LOG})"
    )


@check("telemetry_cleanup", one_attempt=True)
def check_telemetry_cleanup(ctx: VerifyContext) -> str:
    conn = _demo(ctx)
    try:
        removed = _sweep(ctx, conn)
    finally:
        conn.close()
    return (
        f"removed {len(removed)} resources of project {DEMO_NAME}: {', '.join(removed) or 'none'}"
    )
