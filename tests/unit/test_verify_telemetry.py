"""Telemetry checks: archive policy choice and the usage table judged against what verify made."""

from datetime import UTC, datetime, timedelta

from osdeploy.usage import UsageRow
from osdeploy.verify.telemetry import pick_policy, timespan_seconds, usage_problems

STOP = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LAUNCHED = STOP - timedelta(seconds=300)
PROJECT = "0123456789abcdef0123456789abcdef"


def test_timespan_seconds_as_gnocchi_writes_them() -> None:
    assert timespan_seconds("0:05:00") == 300
    assert timespan_seconds("1:00:00") == 3600
    assert timespan_seconds("30 days, 0:00:00") == 30 * 86400
    assert timespan_seconds("1 day, 0:00:01") == 86401
    assert timespan_seconds(60) == 60
    assert timespan_seconds(1.5) == 1.5


def test_pick_policy_finest_with_mean() -> None:
    policies = [
        {
            "name": "low",
            "aggregation_methods": ["mean"],
            "definition": [{"granularity": "0:05:00"}],
        },
        {
            "name": "high",
            "aggregation_methods": ["max"],
            "definition": [{"granularity": "0:00:01"}],
        },
        {
            "name": "medium",
            "aggregation_methods": ["mean", "max"],
            "definition": [{"granularity": "1:00:00"}, {"granularity": "0:01:00"}],
        },
    ]
    assert pick_policy(policies) == "medium"
    assert pick_policy(policies[1:2]) is None
    assert pick_policy([]) is None


def expected() -> dict:
    return {
        "server": {"id": "srv", "launched": LAUNCHED, "vcpus": 1},
        "volume": {"id": "vol", "created": LAUNCHED, "size": 1},
        "image": {"id": "img", "bytes": 6144},
        "container": {"name": f"{PROJECT}/box", "bytes": 5000, "project": PROJECT},
    }


def rows(
    hours: float = 280 / 3600,
    cpu_seconds: float | None = 2.5,
    disk_gb_hours: float = 300 / 3600,
    image_bytes: float = 6144,
    container_bytes: float = 5000,
) -> list[UsageRow]:
    """The table of what ``expected`` made, with one value changed."""
    return [
        UsageRow("srv", "s", "instance", hours=hours, cpu_seconds=cpu_seconds),
        UsageRow("vol", "v", "volume", hours=300 / 3600, disk_gb_hours=disk_gb_hours),
        UsageRow("img", "i", "image", hours=0.1, bytes=image_bytes),
        UsageRow(f"{PROJECT}/box", "", "swift_container", hours=0.1, bytes=container_bytes),
    ]


def test_usage_agrees_with_what_verify_made() -> None:
    assert usage_problems(rows(), expected(), STOP) == []


def test_usage_instance_hours_off_by_more_than_the_tolerance() -> None:
    problems = usage_problems(rows(hours=10 / 3600), expected(), STOP)
    assert problems == ["instance hours 0.0028 (10 s), the server has run 300 s (tolerance 120 s)"]


def test_usage_cpu_time_must_be_positive_and_bounded() -> None:
    assert "CPU time 0.0 s" in usage_problems(rows(cpu_seconds=0.0), expected(), STOP)[0]
    assert "CPU time None s" in usage_problems(rows(cpu_seconds=None), expected(), STOP)[0]
    assert usage_problems(rows(cpu_seconds=1000.0), expected(), STOP)[0].startswith("CPU time")


def test_usage_volume_image_and_object_bytes() -> None:
    assert usage_problems(rows(disk_gb_hours=1.0), expected(), STOP)[0].startswith(
        "volume GB-hours 1.00000, want 0.08333"
    )
    assert usage_problems(rows(image_bytes=6000.0), expected(), STOP) == [
        "image img: 6000.0 bytes, uploaded 6144"
    ]
    # Stored bytes lag (container-updater) and are 5-minute means: above
    # zero and at most what was PUT.
    assert usage_problems(rows(container_bytes=2500.0), expected(), STOP) == []
    for wrong in (0.0, 5001.0):
        assert usage_problems(rows(container_bytes=wrong), expected(), STOP) == [
            f"container {PROJECT}/box: {wrong} bytes, want more than 0 and at most the 5000 PUT"
        ]


def test_usage_container_row_named_as_ceilometer_names_it() -> None:
    found = [*rows()[:3], UsageRow(f"{PROJECT}_box", "", "swift_account", bytes=0)]
    assert usage_problems(found, expected(), STOP) == [
        f"container {PROJECT}/box: 0 bytes, want more than 0 and at most the 5000 PUT"
    ]


def test_usage_object_bytes_from_the_account_without_a_container_row() -> None:
    found = [*rows()[:3], UsageRow(PROJECT, "", "swift_account", bytes=5003)]
    assert usage_problems(found, expected(), STOP) == []
    found[-1].bytes = 0
    assert "Swift account" in usage_problems(found, expected(), STOP)[0]


def test_usage_missing_rows() -> None:
    problems = usage_problems([], expected(), STOP)
    assert problems[0] == "no instance row for server srv"
    assert len(problems) == 4
    assert usage_problems([], {}, STOP) == []
