"""Fold osdeploy_events records into progress and a run summary, and show them.

The events come from plugins/callback/osdeploy_events.py (one JSON object per
line, see that file for the schema). Folding is pure (`Progress.apply`,
`summarize`); the display classes at the bottom are the only side effects.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from osdeploy.inventory import CONVERGED_GROUP

#: Counter names of a host, in display order. ansible's "failures" is "failed" here.
HOST_COUNTERS = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
#: Lines and characters of a failure message shown on the console (the log has all).
MSG_MAX_LINES = 20
MSG_MAX_CHARS = 2000
#: How many of the run's longest task results the summary names.
SLOWEST_COUNT = 10


@dataclass(frozen=True)
class Failure:
    host: str
    task: str
    role: str
    play: str
    kind: str  # "failed" or "unreachable"
    msg: str


@dataclass(frozen=True)
class TaskTime:
    """The seconds one host spent on one task (a looped task: all its items)."""

    host: str
    role: str
    task: str
    play: str
    seconds: float


@dataclass(frozen=True)
class Summary:
    hosts: dict[str, dict[str, int]]
    roles: dict[str, float]
    total_seconds: float
    failures: tuple[Failure, ...]
    log: str = ""
    #: Changed task results per role (booked like time: to the play's first role).
    changed: dict[str, int] = field(default_factory=dict)
    #: The run's longest task results, longest first (see `slowest`).
    slowest: tuple[TaskTime, ...] = ()
    #: Hosts left out of every play: unchanged since the last successful run.
    converged: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures and not any(
            c["failed"] or c["unreachable"] for c in self.hosts.values()
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "hosts": self.hosts,
            "roles": {name: round(secs, 1) for name, secs in self.roles.items()},
            "changed": dict(self.changed),
            "total_seconds": round(self.total_seconds, 1),
            "failures": [
                {
                    "host": f.host,
                    "task": f.task,
                    "role": f.role,
                    "play": f.play,
                    "kind": f.kind,
                    "msg": f.msg,
                }
                for f in self.failures
            ],
            "slowest": [
                {
                    "host": t.host,
                    "role": t.role,
                    "task": t.task,
                    "play": t.play,
                    "seconds": round(t.seconds, 1),
                }
                for t in self.slowest
            ],
            "converged": list(self.converged),
            "log": self.log,
        }


def _empty_counts() -> dict[str, int]:
    return dict.fromkeys(HOST_COUNTERS, 0)


def role_key(role: str, play: str) -> str:
    """Where a task's time is booked: its role, else its play ("play: <name>")."""
    return role or f"play: {play or '?'}"


def task_label(role: str, task: str) -> str:
    """A task as ansible names it: "role : task", or the task alone outside a role."""
    return f"{role} : {task}" if role else task


def slowest(timings: Iterable[TaskTime], count: int = SLOWEST_COUNT) -> tuple[TaskTime, ...]:
    """The `count` longest task results, longest first; equal times stay in run order."""
    return tuple(sorted(timings, key=lambda t: -t.seconds)[:count])


@dataclass
class Progress:
    """Running state of a playbook run, built from events in arrival order."""

    play: str = ""
    role: str = ""
    task: str = ""
    tasks_started: int = 0
    role_started_at: float | None = None
    first_time: float | None = None
    last_time: float | None = None
    _task_started_at: float | None = None
    _task_role_key: str = ""
    _play_role: str = ""
    roles: dict[str, float] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    stats: dict[str, dict[str, int]] | None = None
    failures: list[Failure] = field(default_factory=list)
    #: Every host's time on every task it ran (skipped results left out), in run order.
    timings: list[TaskTime] = field(default_factory=list)
    converged: list[str] = field(default_factory=list)

    @property
    def tasks_done(self) -> int:
        """Tasks finished: every started task except the one running now."""
        if self.stats is not None:
            return self.tasks_started
        return max(self.tasks_started - 1, 0)

    def _close_task(self, now: float) -> None:
        if self._task_started_at is not None:
            spent = max(now - self._task_started_at, 0.0)
            self.roles[self._task_role_key] = self.roles.get(self._task_role_key, 0.0) + spent
            self._task_started_at = None

    def apply(self, event: Mapping[str, Any]) -> str | None:
        """Fold one event in. Returns a line worth printing in plain mode, else None."""
        kind = str(event.get("event", ""))
        now = float(event.get("time", 0.0) or 0.0)
        if now:
            if self.first_time is None:
                self.first_time = now
            self.last_time = now
        line: str | None = None
        if kind == "play_start":
            self._close_task(now)
            self.play = str(event.get("name", ""))
            self.role = ""
            self.task = ""
            self._task_role_key = ""
            self.role_started_at = None
            self._play_role = ""
            line = f"play: {self.play}"
        elif kind == "task_start":
            self._close_task(now)
            role = str(event.get("role", ""))
            play = str(event.get("play", self.play))
            self.task = str(event.get("name", ""))
            self.tasks_started += 1
            self._task_started_at = now
            # A play's time is booked to its first role (the service): the
            # shared roles it includes (common, openstack_service) are part
            # of that service's cost.
            if role and not self._play_role:
                self._play_role = role
                line = f"role: {role} ({play})"
            key = role_key(self._play_role, play)
            if key != self._task_role_key or self.role_started_at is None:
                self.role_started_at = now
            self._task_role_key = key
            self.roles.setdefault(key, 0.0)
            self.changed.setdefault(key, 0)
            self.role = role
        elif kind.startswith("runner_"):
            self._apply_result(kind.removeprefix("runner_"), event)
        elif kind == "stats":
            self._close_task(now)
            hosts = event.get("hosts", {})
            if isinstance(hosts, dict):
                self.stats = {
                    str(host): _stats_counts(values)
                    for host, values in hosts.items()
                    if isinstance(values, dict)
                }
        return line

    def _result_seconds(self, event: Mapping[str, Any]) -> float | None:
        """The host's own time on the task ("duration"); in files from before that
        field, the time since the task started (the same under the linear strategy
        when every host has a fork)."""
        duration = event.get("duration")
        if isinstance(duration, int | float) and not isinstance(duration, bool):
            return max(float(duration), 0.0)
        now = float(event.get("time", 0.0) or 0.0)
        if self._task_started_at is None or not now:
            return None
        return max(now - self._task_started_at, 0.0)

    def _apply_result(self, status: str, event: Mapping[str, Any]) -> None:
        host = str(event.get("host", "?"))
        task = str(event.get("task", ""))
        role = str(event.get("role", ""))
        counts = self.counts.setdefault(host, _empty_counts())
        seconds = self._result_seconds(event) if status != "skipped" else None
        if seconds is not None:
            self.timings.append(TaskTime(host, role, task, self.play, seconds))
        if event.get("group") == CONVERGED_GROUP and host not in self.converged:
            self.converged.append(host)
        if status in ("ok", "changed"):
            counts["ok"] += 1
            if status == "changed":
                counts["changed"] += 1
                key = self._task_role_key or role_key("", self.play)
                self.changed[key] = self.changed.get(key, 0) + 1
        elif status == "skipped":
            counts["skipped"] += 1
        elif status == "failed":
            if event.get("ignored"):
                counts["ok"] += 1
                counts["ignored"] += 1
                return
            if event.get("rescued"):
                counts["rescued"] += 1
                return
            counts["failed"] += 1
        elif status == "unreachable":
            counts["unreachable"] += 1
        if status in ("failed", "unreachable"):
            self.failures.append(
                Failure(
                    host=host,
                    task=task,
                    role=role,
                    play=self.play,
                    kind=status,
                    msg=str(event.get("msg", "")),
                )
            )

    def summary(self, log: str = "", total_seconds: float | None = None) -> Summary:
        hosts = self.stats if self.stats is not None else self.counts
        failures = self.failures
        if self.stats is not None:
            # A failure inside a block with rescue is not a failure of the
            # run: keep only those of hosts that ansible counts as failed.
            failures = [
                f
                for f in failures
                if (f.kind == "failed" and self.stats.get(f.host, {}).get("failed", 0))
                or (f.kind == "unreachable" and self.stats.get(f.host, {}).get("unreachable", 0))
            ]
        if total_seconds is None:
            total_seconds = (
                (self.last_time - self.first_time)
                if self.first_time is not None and self.last_time is not None
                else 0.0
            )
        return Summary(
            hosts={host: dict(counts) for host, counts in sorted(hosts.items())},
            roles=dict(self.roles),
            total_seconds=total_seconds,
            failures=tuple(failures),
            log=log,
            changed=dict(self.changed),
            slowest=slowest(self.timings),
            converged=tuple(sorted(self.converged)),
        )


def _stats_counts(values: Mapping[str, Any]) -> dict[str, int]:
    counts = _empty_counts()
    for key in HOST_COUNTERS:
        source = "failures" if key == "failed" else key
        counts[key] = int(values.get(source, 0) or 0)
    return counts


def summarize(events: Iterable[Mapping[str, Any]], log: str = "") -> Summary:
    """The summary of a run from its events (pure)."""
    progress = Progress()
    for event in events:
        progress.apply(event)
    return progress.summary(log=log)


def parse_event_line(line: str) -> dict[str, Any] | None:
    """One events-file line as a dict; None for blank or broken lines."""
    line = line.strip()
    if not line:
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def shorten(msg: str, max_lines: int = MSG_MAX_LINES, max_chars: int = MSG_MAX_CHARS) -> str:
    """A failure message cut to a readable size, saying that it was cut."""
    msg = msg.strip()
    lines = msg.splitlines()
    cut = False
    if len(lines) > max_lines:
        lines = lines[-max_lines:]
        cut = True
    text = "\n".join(lines)
    if len(text) > max_chars:
        text = text[-max_chars:]
        cut = True
    return ("... (see the log for all of it)\n" + text) if cut else text


def format_seconds(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s"


# -- display (side effects) --------------------------------------------------


class Display(Protocol):
    def start(self) -> None: ...
    def update(self, progress: Progress, line: str | None) -> None: ...
    def stop(self) -> None: ...


class PlainDisplay:
    """One line per play and role start: readable in CI logs."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def start(self) -> None:
        pass

    def update(self, progress: Progress, line: str | None) -> None:
        if line:
            self._console.print(Text(f"osdeploy: {line}"), highlight=False)

    def stop(self) -> None:
        pass


@dataclass(frozen=True)
class Snapshot:
    """What the live display shows; replaced whole, so the refresh thread never sees
    a half-updated state."""

    play: str = ""
    role: str = ""
    task: str = ""
    role_started_at: float | None = None
    tasks_done: int = 0
    hosts: int = 0
    hosts_failing: int = 0

    @classmethod
    def of(cls, p: Progress) -> Snapshot:
        return cls(
            play=p.play,
            role=p.role,
            task=p.task,
            role_started_at=p.role_started_at,
            tasks_done=p.tasks_done,
            hosts=len(p.counts),
            hosts_failing=sum(1 for c in p.counts.values() if c["failed"] or c["unreachable"]),
        )


class LiveDisplay:
    """A rich live panel: play, role, task, tasks done, elapsed times."""

    def __init__(self, console: Console) -> None:
        self._snapshot = Snapshot()
        self._started = time.monotonic()
        # get_renderable: Live re-renders on every refresh, so times keep ticking.
        self._live = Live(
            console=console,
            refresh_per_second=4,
            transient=True,
            get_renderable=self._render,
        )

    def _render(self) -> RenderableType:
        s = self._snapshot
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("play", s.play or "starting ansible-playbook ...")
        role_elapsed = ""
        if s.role_started_at is not None:
            role_elapsed = f"  ({format_seconds(time.time() - s.role_started_at)})"
        grid.add_row("role", (s.role or "-") + role_elapsed)
        grid.add_row("task", s.task or "-")
        failing = f", {s.hosts_failing} failing" if s.hosts_failing else ""
        grid.add_row("done", f"{s.tasks_done} tasks, {s.hosts} hosts answered{failing}")
        grid.add_row("time", format_seconds(time.monotonic() - self._started))
        return Group(grid)

    def start(self) -> None:
        self._live.start()

    def update(self, progress: Progress, line: str | None) -> None:
        self._snapshot = Snapshot.of(progress)

    def stop(self) -> None:
        self._live.stop()


def make_display(console: Console) -> Display:
    return LiveDisplay(console) if console.is_terminal else PlainDisplay(console)


def slowest_table(timings: Iterable[TaskTime]) -> Table:
    """Rank, time, host, "role : task" and play of each of the slowest task results."""
    table = Table(title="slowest tasks", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("time", justify="right")
    table.add_column("host")
    table.add_column("role : task")
    table.add_column("play")
    for rank, timing in enumerate(timings, start=1):
        # Text: task and play names are the playbooks' words, never rich markup
        table.add_row(
            str(rank),
            format_seconds(timing.seconds),
            Text(timing.host),
            Text(task_label(timing.role, timing.task)),
            Text(timing.play),
        )
    return table


def print_summary(console: Console, summary: Summary) -> None:
    """The end-of-run report: hosts, role times, slowest tasks, total, failures, log path."""
    hosts = Table(title="hosts", title_justify="left")
    hosts.add_column("host")
    for name in HOST_COUNTERS:
        hosts.add_column(name, justify="right")
    for host, counts in summary.hosts.items():
        bad = counts["failed"] or counts["unreachable"]
        hosts.add_row(
            Text(host, style="red" if bad else ""), *(str(counts[name]) for name in HOST_COUNTERS)
        )
    console.print(hosts)
    if summary.roles:
        roles = Table(title="per role", title_justify="left")
        roles.add_column("role")
        roles.add_column("changed", justify="right")
        roles.add_column("time", justify="right")
        for role, secs in summary.roles.items():
            roles.add_row(role, str(summary.changed.get(role, 0)), format_seconds(secs))
        console.print(roles)
    if summary.slowest:
        console.print(slowest_table(summary.slowest))
    if summary.converged:
        console.print(
            Text(
                f"unchanged since the last successful run, left out: {', '.join(summary.converged)}"
                " (osdeploy deploy --recheck runs every step on them too)"
            ),
            highlight=False,
            soft_wrap=True,
        )
    for failure in summary.failures:
        where = task_label(failure.role, failure.task)
        console.print(
            Text(f"{failure.kind.upper()}: {failure.host}: {where}", style="bold red"),
            highlight=False,
            soft_wrap=True,
        )
        if failure.msg:
            console.print(Text(shorten(failure.msg)), highlight=False, soft_wrap=True)
    console.print(f"total time {format_seconds(summary.total_seconds)}", highlight=False)
    # soft_wrap: a path must stay one piece to be copied
    console.print(Text(f"log: {summary.log}"), highlight=False, soft_wrap=True)


def summary_json(summary: Summary) -> str:
    return json.dumps(summary.to_json(), indent=2)


def read_new_events(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Complete lines appended to the events file since offset, and the new offset."""
    try:
        with path.open("rb") as stream:
            stream.seek(offset)
            data = stream.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    events = [
        event
        for raw in data[: end + 1].decode("utf-8", errors="replace").splitlines()
        if (event := parse_event_line(raw)) is not None
    ]
    return events, offset + end + 1
