"""`osdeploy usage`: a project's billable usage over a time window, from Gnocchi.

Ceilometer publishes every resource it meters to Gnocchi with the
project's id and the resource's lifetime (``started_at``, ``ended_at``)
and, for instances, Nova's ``launched_at``/``deleted_at``. The table has
one row per resource of the project that lived in the window ``[since,
until]`` (instances, volumes, images, Swift accounts and containers) and
a total row:

- **hours**: the part of the resource's life inside the window. An
  instance lives from ``launched_at`` (else ``started_at``) to
  ``deleted_at`` (else ``ended_at``, else the window's end); the other
  types from ``started_at`` to ``ended_at``. Gnocchi sets ``started_at``
  when Ceilometer first reports the resource (within one polling interval
  of its creation) and ``ended_at`` at its delete notification.
- **vCPU-h**, **RAM GB-h**: the instance's ``vcpus`` and ``memory`` (MiB)
  gauges, their last value in the window, times its hours.
- **CPU s**: CPU time used in the window, from the ``cpu`` counter
  (nanoseconds since the guest started): the sum of its increases between
  points, a drop counting as a restart from zero; from zero when the
  instance started inside the window, else from its first point in it.
- **disk GB-h**: a volume's ``volume.size`` (GiB), last value, times its hours.
- **bytes**: an image's ``image.size``; a Swift container's
  ``storage.containers.objects.size`` (container resources: id
  ``<project>_<container>``), else the account's ``storage.objects.size``:
  the last value in the window.

Measures come from Gnocchi's aggregates API (``POST /v1/aggregates``, the
resources found by a project-and-window search, ``mean`` per point, the
finest granularity the archive policy keeps); resources from ``POST
/v1/search/resource/<type>``. Points are aggregates (the lab's policies:
5 minutes), so values are as fine as the policy and as fresh as the last
polling interval.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from osdeploy.errors import InputError, OsdeployError

if TYPE_CHECKING:
    from pathlib import Path

    from osdeploy.catalog import Catalog
    from osdeploy.config import Config
    from osdeploy.gnocchi import Gnocchi, Point
    from osdeploy.plan import Plan

#: Resource types of Ceilometer's gnocchi_resources.yaml the table bills,
#: with the metrics each row reads (only those a resource has are asked for).
METRICS: dict[str, tuple[str, ...]] = {
    "instance": ("cpu", "vcpus", "memory"),
    "volume": ("volume.size",),
    "image": ("image.size",),
    "swift_account": ("storage.objects.size", "storage.containers.objects.size"),
}
NOT_PLANNED = (
    "gnocchi is not in this deployment's plan: add ceilometer to services in "
    "osdeploy.yml and deploy"
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
NS = 1e9


# -- times ---------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """``"1h"``, ``"30m"``, ``"2d"``, ``"1h30m"``, ``"90s"``, ``"1w"`` -> a timedelta."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _DURATION.sub("", compact):
        raise InputError(
            f"{text!r} is not a duration: write a number and a unit s, m, h, d or w "
            "(30m, 1h, 2d, 1h30m)"
        )
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION.findall(compact))
    if seconds <= 0:
        raise InputError(f"{text!r}: the duration must be longer than zero")
    return timedelta(seconds=seconds)


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time as Gnocchi or Nova write it, in UTC (naive ones are
    UTC); None for none, "" or "None"."""
    value = (text or "").strip()
    if not value or value == "None":
        return None
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def parse_when(text: str, now: datetime, option: str) -> datetime:
    """A moment on the command line: a duration ago (``1h``) or an ISO time."""
    try:
        return now - parse_duration(text)
    except InputError:
        pass
    try:
        when = parse_time(text)
    except ValueError:
        when = None
    if when is None:
        raise InputError(
            f"{option} {text}: write a duration before now (30m, 1h, 2d) "
            "or a time (2026-01-31T12:00:00, UTC)"
        )
    return when


def window(since: str, until: str | None, now: datetime) -> tuple[datetime, datetime]:
    """(start, stop) of ``--since``/``--until``; refuses an empty window."""
    start = parse_when(since, now, "--since")
    stop = parse_when(until, now, "--until") if until else now
    if stop <= start:
        raise InputError(
            f"--since {since} is not before --until {until or 'now'}: nothing to count"
        )
    return start, stop


def overlap_hours(
    life_start: datetime | None, life_end: datetime | None, start: datetime, stop: datetime
) -> float:
    """Hours of a life (no end: still alive) inside [start, stop]."""
    first = max(start, life_start) if life_start else start
    last = min(stop, life_end) if life_end else stop
    return max(0.0, (last - first).total_seconds() / 3600)


def lifetime(resource: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    """(start, end) of a Gnocchi resource: an instance's ``launched_at`` and
    ``deleted_at`` when Nova's metadata gave them (and they read as times),
    else ``started_at`` and ``ended_at``."""

    def first_time(*keys: str) -> datetime | None:
        for key in keys:
            try:
                when = parse_time(str(resource.get(key) or ""))
            except ValueError:  # metadata in a shape Nova did not mean as a time
                continue
            if when is not None:
                return when
        return None

    return first_time("launched_at", "started_at"), first_time("deleted_at", "ended_at")


# -- measures ------------------------------------------------------------------


def finest(points: Sequence[Point]) -> list[Point]:
    """The points of the finest granularity among them, oldest first."""
    if not points:
        return []
    grain = min(g for _, g, _ in points)
    return sorted((p for p in points if p[1] == grain), key=lambda p: p[0])


def last_value(points: Sequence[Point]) -> float | None:
    fine = finest(points)
    return fine[-1][2] if fine else None


def counter_increase(values: Sequence[float], from_zero: bool) -> float:
    """What a cumulative counter gained over ``values`` (oldest first): the
    sum of its rises; a drop is a restart from zero (a reboot, a migration),
    so the value after it counts whole. ``from_zero``: the counter started
    inside the window, so the first value counts whole too."""
    if not values:
        return 0.0
    total = values[0] if from_zero else 0.0
    for before, after in itertools.pairwise(values):
        total += after - before if after >= before else after
    return total


# -- the table -----------------------------------------------------------------


@dataclass
class UsageRow:
    resource_id: str
    name: str
    type: str
    hours: float = 0.0
    vcpu_hours: float | None = None
    cpu_seconds: float | None = None
    ram_gb_hours: float | None = None
    disk_gb_hours: float | None = None
    bytes: float | None = None
    #: What the row was computed from (for verify's log), not printed.
    seen: dict[str, Any] = field(default_factory=dict, repr=False)


def _series(measures: Mapping[str, Any], metric: str) -> list[Point]:
    return list((measures.get(metric) or {}).get("mean") or [])


def usage_row(
    resource_type: str,
    resource: Mapping[str, Any],
    measures: Mapping[str, Any],
    start: datetime,
    stop: datetime,
) -> UsageRow:
    """One resource's row from its Gnocchi record and its measures in the window
    (metric name -> aggregation -> points), by the rules of this module's doc."""
    life_start, life_end = lifetime(resource)
    hours = overlap_hours(life_start, life_end, start, stop)
    rid = str(resource.get("original_resource_id") or resource.get("id") or "")
    name = str(resource.get("display_name") or resource.get("name") or "")
    row = UsageRow(rid, name, resource_type, hours)
    row.seen = {"start": life_start, "end": life_end}
    if resource_type == "instance":
        vcpus = last_value(_series(measures, "vcpus"))
        memory = last_value(_series(measures, "memory"))
        cpu = [v for _, _, v in finest(_series(measures, "cpu"))]
        row.vcpu_hours = vcpus * hours if vcpus is not None else None
        row.ram_gb_hours = memory / 1024 * hours if memory is not None else None
        if cpu:
            started_inside = life_start is not None and life_start >= start
            row.cpu_seconds = counter_increase(cpu, started_inside) / NS
        row.seen.update(vcpus=vcpus, memory_mb=memory, cpu_points=len(cpu))
    elif resource_type == "volume":
        size = last_value(_series(measures, "volume.size"))
        row.disk_gb_hours = size * hours if size is not None else None
        row.seen.update(size_gb=size)
    elif resource_type == "image":
        row.bytes = last_value(_series(measures, "image.size"))
    elif resource_type == "swift_account":
        container = last_value(_series(measures, "storage.containers.objects.size"))
        row.bytes = (
            container
            if container is not None
            else last_value(_series(measures, "storage.objects.size"))
        )
        # A container's resource (Ceilometer names it <project>_<container>)
        # carries the per-container meters; the account's does not.
        row.type = "swift_container" if container is not None else "swift_account"
    return row


def usage_rows(
    resources: Mapping[str, Sequence[Mapping[str, Any]]],
    measures: Mapping[str, Mapping[str, Mapping[str, Any]]],
    start: datetime,
    stop: datetime,
) -> list[UsageRow]:
    """Rows of every resource (type -> Gnocchi records), with the measures of
    each (Gnocchi resource id -> metric -> aggregation -> points); by type, then name."""
    rows = [
        usage_row(rtype, resource, measures.get(str(resource.get("id")), {}), start, stop)
        for rtype in METRICS
        for resource in resources.get(rtype, ())
    ]
    order = [*METRICS, "swift_container"]
    return sorted(rows, key=lambda r: (order.index(r.type), r.name, r.resource_id))


def _total(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _account_of(container_id: str) -> str:
    """The project (account) part of a container's resource id:
    ``<project>_<container>`` (Ceilometer's) or ``<project>/<container>``."""
    return re.split("[/_]", container_id, maxsplit=1)[0]


def total_row(rows: Sequence[UsageRow]) -> UsageRow:
    """Sums per column; hours are instance hours (what a provider bills by the
    hour); bytes count a Swift account's only when no container of it has a row
    (the account holds its containers' bytes)."""
    containers = {_account_of(r.resource_id) for r in rows if r.type == "swift_container"}
    return UsageRow(
        "",
        "total",
        "",
        hours=sum(r.hours for r in rows if r.type == "instance"),
        vcpu_hours=_total(r.vcpu_hours for r in rows),
        cpu_seconds=_total(r.cpu_seconds for r in rows),
        ram_gb_hours=_total(r.ram_gb_hours for r in rows),
        disk_gb_hours=_total(r.disk_gb_hours for r in rows),
        bytes=_total(
            r.bytes for r in rows if r.type != "swift_account" or r.resource_id not in containers
        ),
    )


COLUMNS = ("resource", "name", "type", "hours", "vCPU-h", "CPU s", "RAM GB-h", "disk GB-h", "bytes")


def _number(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if digits == 0 else f"{value:.{digits}f}"


def format_table(rows: Sequence[UsageRow], title: str = "") -> str:
    """The rows and a total line as an aligned text table (numbers right-aligned)."""
    body = list(rows) + ([total_row(rows)] if rows else [])
    cells = [
        [
            r.resource_id,
            r.name,
            r.type,
            _number(r.hours, 3),
            _number(r.vcpu_hours, 3),
            _number(r.cpu_seconds, 1),
            _number(r.ram_gb_hours, 3),
            _number(r.disk_gb_hours, 3),
            _number(r.bytes, 0),
        ]
        for r in body
    ]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(COLUMNS)]

    def line(values: Sequence[str]) -> str:
        parts = [v.ljust(widths[i]) if i < 3 else v.rjust(widths[i]) for i, v in enumerate(values)]
        return "  ".join(parts).rstrip()

    out = [title] if title else []
    out.append(line(COLUMNS))
    out += [line(c) for c in cells] if rows else ["(no metered resources in this window)"]
    return "\n".join(out) + "\n"


# -- from Gnocchi --------------------------------------------------------------


def collect(gnocchi: Gnocchi, project_id: str, start: datetime, stop: datetime) -> list[UsageRow]:
    """The project's rows: per resource type, one search and one aggregates
    call per metric the found resources have."""
    from osdeploy.gnocchi import project_window

    query = project_window(project_id, start, stop)
    resources: dict[str, list[dict[str, Any]]] = {}
    measures: dict[str, dict[str, Any]] = {}
    for rtype, names in METRICS.items():
        found = gnocchi.search(rtype, query)
        resources[rtype] = found
        present = {name for r in found for name in (r.get("metrics") or {})}
        for name in names:
            if name not in present:
                continue
            got = gnocchi.aggregates(rtype, query, [name], start, stop)
            for resource_id, by_metric in got.items():
                measures.setdefault(resource_id, {}).update(by_metric)
    return usage_rows(resources, measures, start, stop)


def _utc(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def run_usage(
    deploy_dir: Path,
    config: Config,
    plan: Plan,
    catalog: Catalog,
    project: str,
    since: str,
    until: str | None,
    now: datetime | None = None,
) -> int:
    """Print the project's usage table; InputError when it cannot be asked."""
    start, stop = window(since, until, now or datetime.now(UTC))
    if "gnocchi" not in plan:
        raise InputError(NOT_PLANNED)
    from osdeploy.cloud import cloud_settings, connect
    from osdeploy.gnocchi import Gnocchi
    from osdeploy.openrc import admin_password
    from osdeploy.verify.core import explain

    settings = cloud_settings(config, catalog)
    conn = connect(settings, admin_password(deploy_dir))
    try:
        found = conn.identity.find_project(project)
        if found is None:
            raise InputError(
                f"--project {project}: no such project in the cloud; "
                "`openstack project list` shows the names (clouds.yaml in the deployment dir)"
            )
        rows = collect(Gnocchi(conn), found.id, start, stop)
    except OsdeployError:
        raise
    except Exception as exc:  # keystoneauth/sdk: one line that says what to try
        raise OsdeployError(f"usage of project {project}: {explain(exc, settings)}") from exc
    finally:
        conn.close()
    title = f"project {found.name} ({found.id}), {_utc(start)} to {_utc(stop)}"
    print(format_table(rows, title), end="")
    return 0
