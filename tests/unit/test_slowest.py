"""The slowest tasks of a run: folded from the events, in the summary, its table and JSON."""

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from osdeploy.progress import SLOWEST_COUNT, TaskTime, print_summary, slowest, summarize
from osdeploy.runner import load_events

#: A real cold deploy of the three-host lab (ctl1, cmp1, cmp2), trimmed to some of its
#: plays: Prepare every host, Keystone, OVN metadata agents, the cell mapping; then stats.
#: Its results have no "duration" (written before the field existed).
REAL_EVENTS = Path(__file__).parent / "fixtures" / "deploy-cold.events.jsonl"


def ev(kind: str, t: float, **fields: Any) -> dict[str, Any]:
    return {"event": kind, "time": t, **fields}


def one_task(name: str, start: float, *results: dict[str, Any]) -> list[dict[str, Any]]:
    return [ev("task_start", start, name=name, role="r", play="p"), *results]


def result(kind: str, t: float, host: str, task: str, **fields: Any) -> dict[str, Any]:
    return ev(f"runner_{kind}", t, host=host, task=task, role="r", changed=False, **fields)


def slowest_of(*events: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(task, host, seconds) of the slowest results of one play "p" made of `events`."""
    summary = summarize([ev("play_start", 0.0, name="p"), *events])
    return [(t.task, t.host, round(t.seconds, 3)) for t in summary.slowest]


def test_longest_first_one_entry_per_host() -> None:
    assert slowest_of(
        *one_task(
            "install",
            0.0,
            result("changed", 5.0, "h1", "install", duration=5.0),
            result("changed", 9.0, "h2", "install", duration=9.0),
            result("changed", 7.0, "h3", "install", duration=7.0),
        ),
        *one_task("configure", 9.0, result("ok", 17.0, "h1", "configure", duration=8.0)),
    ) == [
        ("install", "h2", 9.0),
        ("configure", "h1", 8.0),
        ("install", "h3", 7.0),
        ("install", "h1", 5.0),
    ]


def test_an_entry_names_host_role_task_and_play() -> None:
    events = [
        ev("play_start", 0.0, name="Deploy Keystone"),
        ev("task_start", 0.0, name="Install", role="common", play="Deploy Keystone"),
        ev("runner_changed", 61.0, host="ctl1", task="Install", role="common", duration=61.04),
    ]
    summary = summarize(events)
    assert summary.slowest == (TaskTime("ctl1", "common", "Install", "Deploy Keystone", 61.04),)
    assert json.loads(json.dumps(summary.to_json()))["slowest"] == [
        {
            "host": "ctl1",
            "role": "common",
            "task": "Install",
            "play": "Deploy Keystone",
            "seconds": 61.0,
        }
    ]
    assert summarize([]).to_json()["slowest"] == []


def test_only_the_ten_longest_and_ties_stay_in_run_order() -> None:
    timings = [TaskTime(f"h{i}", "r", f"t{i}", "p", float(i % 3)) for i in range(30)]
    top = slowest(timings)
    assert len(top) == SLOWEST_COUNT
    assert [t.seconds for t in top] == [2.0] * 10
    assert [t.task for t in top] == [f"t{i}" for i in range(2, 30, 3)]


def test_skipped_results_do_not_count() -> None:
    assert slowest_of(
        *one_task(
            "maybe",
            0.0,
            result("skipped", 50.0, "h1", "maybe", duration=50.0),
            result("ok", 1.0, "h2", "maybe", duration=1.0),
        )
    ) == [("maybe", "h2", 1.0)]


def test_failed_ignored_and_unreachable_results_count() -> None:
    assert slowest_of(
        *one_task(
            "sync db",
            0.0,
            result("failed", 4.0, "h1", "sync db", duration=4.0, ignored=False, msg="x"),
            result("failed", 3.0, "h2", "sync db", duration=3.0, ignored=True, msg="x"),
            result("unreachable", 30.0, "h3", "sync db", duration=30.0, msg="timeout"),
        )
    ) == [("sync db", "h3", 30.0), ("sync db", "h1", 4.0), ("sync db", "h2", 3.0)]


def test_old_files_without_duration_use_the_time_since_task_start() -> None:
    assert slowest_of(
        *one_task(
            "install",
            10.0,
            result("changed", 12.5, "h1", "install"),
            result("changed", 16.0, "h2", "install", duration=2.0),  # the field wins
        ),
        *one_task("next", 16.0, result("ok", 16.25, "h1", "next")),
    ) == [("install", "h1", 2.5), ("install", "h2", 2.0), ("next", "h1", 0.25)]


def test_a_broken_duration_falls_back_too() -> None:
    assert slowest_of(*one_task("t", 0.0, result("ok", 3.0, "h1", "t", duration="soon"))) == [
        ("t", "h1", 3.0)
    ]


def _printed(console: Console) -> str:
    summary = summarize(load_events(REAL_EVENTS), log="/srv/lab/logs/deploy.log")
    print_summary(console, summary)
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def test_the_table_is_plain_text_when_not_on_a_terminal() -> None:
    text = _printed(Console(file=io.StringIO(), width=120, force_terminal=False))
    assert "\x1b" not in text
    lines = [line.rstrip() for line in text.splitlines()]
    heads = [lines.index(title) for title in ("per role", "slowest tasks")]
    assert heads == sorted(heads)  # after the per-role times
    assert text.index("slowest tasks") < text.index("total time")
    row = next(line for line in lines if line.startswith("│  1 │"))
    assert "common : Install the packages" in row
    assert "OVN metadata agents" in row


def test_on_a_terminal_the_rows_carry_no_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only rich's own header bold and title italic: nothing for NO_COLOR to strip."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    text = _printed(Console(file=io.StringIO(), width=120, force_terminal=True))
    table = text[text.index("slowest tasks") : text.index("total time")]
    rows = [line for line in table.splitlines() if line.startswith("│")]
    assert len([row for row in rows if re.match(r"│ +\d+ │", row)]) == SLOWEST_COUNT
    assert not any("\x1b" in row for row in rows)
    assert set(re.findall(r"\x1b\[[0-9;]*m", table)) <= {"\x1b[0m", "\x1b[1m", "\x1b[3m"}


def test_a_real_run_names_its_slowest_tasks() -> None:
    events = load_events(REAL_EVENTS)
    summary = summarize(events)
    top = summary.slowest
    assert len(top) == SLOWEST_COUNT
    assert [t.seconds for t in top] == sorted((t.seconds for t in top), reverse=True)
    run_hosts = set(summary.hosts)
    assert run_hosts == {"ctl1", "cmp1", "cmp2"}
    assert {t.host for t in top} == run_hosts
    started = {(e["role"], e["name"], e["play"]) for e in events if e["event"] == "task_start"}
    assert all((t.role, t.task, t.play) in started for t in top)
    # installing packages is where a cold deploy spends its time, most on the compute hosts
    assert [(t.host, t.task) for t in top[:3]] == [
        ("cmp2", "Install the packages"),
        ("cmp1", "Install the packages"),
        ("ctl1", "Install the packages"),
    ]
    assert top[0].seconds > 60
    assert all(0 < t.seconds < summary.total_seconds for t in top)
