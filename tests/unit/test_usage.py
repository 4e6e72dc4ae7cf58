"""`osdeploy usage`: durations, lifetimes, counters, the rows and the table (pure logic)."""

from datetime import UTC, datetime, timedelta

import pytest

from osdeploy.errors import InputError
from osdeploy.gnocchi import metric_operations, project_window
from osdeploy.usage import (
    counter_increase,
    finest,
    format_table,
    last_value,
    lifetime,
    overlap_hours,
    parse_duration,
    parse_time,
    parse_when,
    total_row,
    usage_row,
    usage_rows,
    window,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
START = NOW - timedelta(hours=1)


def at(minutes: float) -> str:
    """An ISO time ``minutes`` after START, as Gnocchi writes it."""
    return (START + timedelta(minutes=minutes)).isoformat()


def points(*values: float, grain: float = 300.0, first: float = 0.0) -> list:
    return [(at(first + i * grain / 60), grain, v) for i, v in enumerate(values)]


# -- times ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600), ("30m", 1800), ("2d", 172800), ("1h30m", 5400), ("90s", 90), ("1w", 604800)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "1", "h", "1x", "yesterday", "0m", "-1h"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(InputError, match="duration"):
        parse_duration(text)


def test_parse_time_utc_naive_and_empty() -> None:
    assert parse_time("2026-12-06T11:00:00+00:00") == NOW - timedelta(hours=1)
    assert parse_time("2026-12-06T11:00:00.000000") == NOW - timedelta(hours=1)
    assert parse_time("2026-12-06T12:00:00+01:00") == NOW - timedelta(hours=1)
    assert parse_time("2026-12-06 11:00:00Z") == NOW - timedelta(hours=1)
    assert parse_time("") is None
    assert parse_time("None") is None


def test_parse_when_duration_or_time() -> None:
    assert parse_when("2h", NOW, "--since") == NOW - timedelta(hours=2)
    assert parse_when("2026-12-06T10:00:00", NOW, "--since") == NOW - timedelta(hours=2)
    with pytest.raises(InputError, match="--until soon: write a duration"):
        parse_when("soon", NOW, "--until")


def test_window_defaults_to_now_and_refuses_an_empty_one() -> None:
    assert window("1h", None, NOW) == (START, NOW)
    assert window("2h", "1h", NOW) == (NOW - timedelta(hours=2), START)
    with pytest.raises(InputError, match="not before"):
        window("1h", "2h", NOW)


def test_overlap_hours_clips_to_the_window() -> None:
    assert overlap_hours(None, None, START, NOW) == 1.0
    assert overlap_hours(START + timedelta(minutes=30), None, START, NOW) == 0.5
    assert overlap_hours(START - timedelta(hours=5), START + timedelta(minutes=15), START, NOW) == (
        0.25
    )
    assert overlap_hours(NOW + timedelta(hours=1), None, START, NOW) == 0.0


def test_lifetime_prefers_novas_times() -> None:
    resource = {
        "started_at": at(2),
        "ended_at": None,
        "launched_at": "2026-12-06T11:01:00.000000",
        "deleted_at": None,
    }
    assert lifetime(resource) == (START + timedelta(minutes=1), None)
    assert lifetime({"launched_at": "soon", "started_at": at(2)}) == (
        START + timedelta(minutes=2),
        None,
    )
    assert lifetime({"started_at": at(2), "ended_at": at(10)}) == (
        START + timedelta(minutes=2),
        START + timedelta(minutes=10),
    )


# -- measures ------------------------------------------------------------------


def test_finest_keeps_the_smallest_granularity_in_time_order() -> None:
    coarse = [(at(0), 3600.0, 9.0)]
    fine = [(at(5), 300.0, 2.0), (at(0), 300.0, 1.0)]
    assert finest(coarse + fine) == [(at(0), 300.0, 1.0), (at(5), 300.0, 2.0)]
    assert last_value(coarse + fine) == 2.0
    assert last_value([]) is None


def test_counter_increase_from_zero_and_over_restarts() -> None:
    assert counter_increase([5.0, 8.0, 12.0], from_zero=True) == 12.0
    assert counter_increase([5.0, 8.0, 12.0], from_zero=False) == 7.0
    # rebooted after 8: counted whole from the restart
    assert counter_increase([5.0, 8.0, 3.0, 4.0], from_zero=True) == 12.0
    assert counter_increase([], from_zero=True) == 0.0


# -- rows ----------------------------------------------------------------------


def test_instance_row() -> None:
    resource = {
        "id": "srv-1",
        "display_name": "web",
        "started_at": at(30),
        "ended_at": None,
        "launched_at": None,
    }
    measures = {
        "cpu": {"mean": points(2e9, 5e9, first=30)},
        "vcpus": {"mean": points(2.0, 2.0, first=30)},
        "memory": {"mean": points(2048.0, 2048.0, first=30)},
    }
    row = usage_row("instance", resource, measures, START, NOW)
    assert (row.resource_id, row.name, row.type) == ("srv-1", "web", "instance")
    assert row.hours == 0.5
    assert row.vcpu_hours == 1.0
    assert row.ram_gb_hours == 1.0
    assert row.cpu_seconds == 5.0  # started inside the window: counted from zero
    assert row.disk_gb_hours is None and row.bytes is None


def test_instance_row_started_before_the_window_counts_from_its_first_point() -> None:
    resource = {"id": "srv-1", "started_at": at(-600), "ended_at": at(20)}
    measures = {"cpu": {"mean": points(100e9, 103e9)}}
    row = usage_row("instance", resource, measures, START, NOW)
    assert row.cpu_seconds == 3.0
    assert row.hours == pytest.approx(20 / 60)
    assert row.vcpu_hours is None  # no vcpus metric: unknown, not zero


def test_volume_image_and_swift_rows() -> None:
    volume = usage_row(
        "volume",
        {"id": "v", "display_name": "data", "started_at": at(0), "ended_at": at(30)},
        {"volume.size": {"mean": points(10.0)}},
        START,
        NOW,
    )
    assert volume.disk_gb_hours == 5.0
    image = usage_row(
        "image",
        {"id": "i", "name": "img", "started_at": at(0), "ended_at": None},
        {"image.size": {"mean": points(4096.0)}},
        START,
        NOW,
    )
    assert (image.name, image.bytes) == ("img", 4096.0)
    container = usage_row(
        "swift_account",
        {"id": "uuid5", "original_resource_id": "proj/box", "started_at": at(0)},
        {
            "storage.containers.objects.size": {"mean": points(7.0, 9.0)},
        },
        START,
        NOW,
    )
    assert (container.resource_id, container.type, container.bytes) == (
        "proj/box",
        "swift_container",
        9.0,
    )
    account = usage_row(
        "swift_account",
        {"id": "proj", "started_at": at(0)},
        {"storage.objects.size": {"mean": points(12.0)}},
        START,
        NOW,
    )
    assert (account.type, account.bytes) == ("swift_account", 12.0)


def test_usage_rows_match_measures_by_gnocchi_id_and_sort_by_type() -> None:
    resources = {
        "image": [{"id": "i", "name": "a", "started_at": at(0)}],
        "instance": [{"id": "s", "display_name": "z", "started_at": at(0)}],
    }
    measures = {"i": {"image.size": {"mean": points(1.0)}}}
    rows = usage_rows(resources, measures, START, NOW)
    assert [(r.type, r.bytes) for r in rows] == [("instance", None), ("image", 1.0)]


def test_total_counts_an_account_only_without_its_containers() -> None:
    rows = [
        usage_row(
            "swift_account",
            {"id": "p", "started_at": at(0)},
            {"storage.objects.size": {"mean": points(10.0)}},
            START,
            NOW,
        ),
        usage_row(
            "swift_account",
            {"id": "x", "original_resource_id": "p_box", "started_at": at(0)},
            {"storage.containers.objects.size": {"mean": points(10.0)}},
            START,
            NOW,
        ),
        usage_row(
            "instance",
            {"id": "s", "started_at": at(0)},
            {"vcpus": {"mean": points(1.0)}},
            START,
            NOW,
        ),
    ]
    total = total_row(rows)
    assert total.bytes == 10.0
    assert total.hours == 1.0  # instance hours only
    assert total.vcpu_hours == 1.0
    assert total.disk_gb_hours is None
    assert total_row(rows[:1]).bytes == 10.0


# -- table ---------------------------------------------------------------------


def test_format_table_aligns_and_totals() -> None:
    rows = [
        usage_row(
            "instance",
            {"id": "s-1", "display_name": "web", "started_at": at(0)},
            {"vcpus": {"mean": points(2.0)}, "cpu": {"mean": points(1.5e9)}},
            START,
            NOW,
        ),
        usage_row(
            "image",
            {"id": "i-1", "name": "img", "started_at": at(0)},
            {"image.size": {"mean": points(1234567.0)}},
            START,
            NOW,
        ),
    ]
    text = format_table(rows, "project demo")
    lines = text.splitlines()
    assert lines[0] == "project demo"
    assert lines[1].split() == [
        "resource",
        "name",
        "type",
        "hours",
        "vCPU-h",
        "CPU",
        "s",
        "RAM",
        "GB-h",
        "disk",
        "GB-h",
        "bytes",
    ]
    assert lines[2].split() == ["s-1", "web", "instance", "1.000", "2.000", "1.5", "-", "-", "-"]
    assert lines[3].split()[-1] == "1,234,567"
    assert lines[4].split()[:2] == ["total", "1.000"]
    assert len({len(line) for line in lines[1:3]}) == 1  # numbers right-aligned to one edge


def test_format_table_without_rows() -> None:
    assert "(no metered resources in this window)" in format_table([])


# -- the Gnocchi requests' bodies ------------------------------------------------


def test_metric_operations() -> None:
    assert metric_operations(["cpu"]) == "(metric (cpu mean))"
    assert metric_operations(["a", "b"], "max") == "(metric (a max) (b max))"


def test_project_window_filter() -> None:
    query = project_window("p1", START, NOW)
    assert query == {
        "and": [
            {"=": {"project_id": "p1"}},
            {"or": [{"=": {"ended_at": None}}, {">=": {"ended_at": START.isoformat()}}]},
            {"<=": {"started_at": NOW.isoformat()}},
        ]
    }
