# Copyright: osdeploy contributors
# Apache License 2.0
"""Write Ansible progress as JSON lines for the osdeploy runner.

The runner (osdeploy.runner) sets OSDEPLOY_EVENTS to the path of an events
file, enables this plugin with ANSIBLE_CALLBACKS_ENABLED=osdeploy_events and
reads the file while ansible-playbook runs. One JSON object per line; every
object has "event" (the kind) and "time" (UNIX seconds). Kinds and fields:

  playbook_start  {playbook}
  play_start      {name}
  task_start      {name, role, play, handler}
  runner_ok       {host, task, role, changed, duration[, group]}   (ok, nothing changed;
                  group: the group a group_by task put the host in)
  runner_changed  {host, task, role, changed, duration}
  runner_skipped  {host, task, role, changed, duration}
  runner_failed   {host, task, role, changed, duration, ignored, rescued, msg}
  runner_unreachable {host, task, role, changed, duration, msg}
  stats           {hosts: {host: {ok, changed, failures, unreachable,
                                  skipped, rescued, ignored}}}

"ignored" is true under ignore_errors; "rescued" is true when the task sits in
a block with a rescue section (the run goes on). "duration" is the seconds
from the moment a worker took the task up for that host to its result, so it
is the host's own time even when forks make hosts wait for a worker: a looped
task is one result per host, all its items included. It is absent where
ansible gave a result without starting a worker (meta tasks) and in files
written before it existed; readers then fall back to the time since the
task's task_start. Task arguments are never
written. Results of no_log tasks are never written either: their "msg" is
only "output hidden (no_log)". Without
OSDEPLOY_EVENTS set the plugin does nothing, so it is harmless in plain
ansible-playbook runs.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: osdeploy_events
type: notification
short_description: write progress events as JSON lines for osdeploy
description:
  - Writes one JSON object per line (play, task and per-host result events,
    final stats) to the file named by OSDEPLOY_EVENTS.
  - Never writes task arguments or results of no_log tasks.
requirements:
  - enable in configuration (the osdeploy runner does this)
options:
  path:
    description: File the events are appended to; nothing is written when unset.
    env:
      - name: OSDEPLOY_EVENTS
    type: path
"""

NO_LOG_MSG = "output hidden (no_log)"
#: Longest message copied from a result; the runner shortens it further for display.
MAX_MSG = 4000


def _clip(text: str) -> str:
    text = text.strip()
    if len(text) <= MAX_MSG:
        return text
    return text[: MAX_MSG - 20] + " ... (truncated)"


def _is_censored(result: Any) -> bool:
    return isinstance(result, dict) and bool(result.get("_ansible_no_log") or "censored" in result)


def _message(result: Any) -> str:
    """The human reason of a failed/unreachable result, or "" (never no_log output)."""
    if not isinstance(result, dict):
        return ""
    if _is_censored(result):
        return NO_LOG_MSG
    parts: list[str] = []
    msg = result.get("msg")
    if msg:
        parts.append(msg if isinstance(msg, str) else json.dumps(msg, default=str))
    for key in ("stderr", "module_stderr"):
        value = result.get(key)
        if isinstance(value, str) and value.strip() and value.strip() not in parts:
            parts.append(value.strip())
    if not parts:
        stdout = result.get("stdout") or result.get("module_stdout")
        if isinstance(stdout, str) and stdout.strip():
            parts.append(stdout.strip())
    # Loops: the task-level msg is generic ("One or more items failed");
    # add the first failed item's own reason.
    items = result.get("results")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and item.get("failed"):
                reason = _message(item)
                label = item.get("_ansible_item_label", item.get("item"))
                if _is_censored(item):
                    parts.append(f"item: {NO_LOG_MSG}")
                elif reason:
                    try:
                        label_text = json.dumps(label, default=str)
                    except (TypeError, ValueError):
                        label_text = "?"
                    parts.append(f"item {label_text[:200]}: {reason}")
                break
    return _clip("\n".join(parts))


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "osdeploy_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stream: Any = None
        self._play = ""
        self._path: str | None = None
        #: When a worker took a task up for a host: (host, task uuid) -> monotonic seconds.
        self._started: dict[tuple[str, str], float] = {}

    def set_options(
        self, task_keys: Any = None, var_options: Any = None, direct: Any = None
    ) -> None:
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        path = self.get_option("path") or os.environ.get("OSDEPLOY_EVENTS")
        self._path = str(path) if path else None

    # -- output ---------------------------------------------------------------

    def _emit(self, event: str, **fields: Any) -> None:
        if self._path is None:
            return
        if self._stream is None:
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._stream = os.fdopen(fd, "a", encoding="utf-8", buffering=1)
        record = {"event": event, "time": round(time.time(), 3), **fields}
        self._stream.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")
        self._stream.flush()

    # -- helpers --------------------------------------------------------------

    @staticmethod
    def _role_of(task: Any) -> str:
        role = getattr(task, "_role", None)
        if role is None:
            return ""
        try:
            return str(role.get_name(include_role_fqcn=False))
        except TypeError:
            return str(role.get_name())

    @staticmethod
    def _task_name(task: Any) -> str:
        name = getattr(task, "name", None)
        if name:
            return str(name)
        return str(getattr(task, "action", "") or "unnamed task")

    @staticmethod
    def _in_rescued_block(task: Any) -> bool:
        """True when the task sits in the `block:` part of a block that has a `rescue:`."""
        try:
            child = task
            parent = getattr(task, "_parent", None)
            while parent is not None:
                rescue = getattr(parent, "rescue", None)
                body = getattr(parent, "block", None)
                uuid = getattr(child, "_uuid", None)
                if (
                    rescue
                    and isinstance(body, list)
                    and any(getattr(item, "_uuid", object()) == uuid for item in body)
                ):
                    return True
                child, parent = parent, getattr(parent, "_parent", None)
        except Exception:  # best effort: never break a run over a progress hint
            return False
        return False

    @staticmethod
    def _start_key(host: Any, task: Any) -> tuple[str, str]:
        return str(host.get_name()), str(getattr(task, "_uuid", ""))

    @staticmethod
    def _result_dict(result: Any) -> Any:
        data = getattr(result, "result", None)
        if data is None:
            data = getattr(result, "_result", {})
        return data

    def _runner(self, event: str, result: Any, **extra: Any) -> None:
        task = getattr(result, "task", None) or result._task
        host = getattr(result, "host", None) or result._host
        data = self._result_dict(result)
        if getattr(task, "no_log", False) is True and isinstance(data, dict):
            data = {"censored": True, "changed": data.get("changed", False)}
        changed = bool(data.get("changed", False)) if isinstance(data, dict) else False
        if event == "runner_ok" and changed:
            event = "runner_changed"
        fields: dict[str, Any] = {
            "host": host.get_name(),
            "task": self._task_name(task),
            "role": self._role_of(task),
            "changed": changed,
        }
        started = self._started.pop(self._start_key(host, task), None)
        if started is not None:
            fields["duration"] = round(max(time.monotonic() - started, 0.0), 3)
        if event in ("runner_failed", "runner_unreachable"):
            fields["msg"] = _message(data)
        # group_by: the group the host joined (the runner reads converged hosts from it).
        if isinstance(data, dict) and isinstance(data.get("add_group"), str):
            fields["group"] = data["add_group"]
        fields.update(extra)
        self._emit(event, **fields)

    # -- playbook events ------------------------------------------------------

    def v2_playbook_on_start(self, playbook: Any) -> None:
        self._emit("playbook_start", playbook=os.path.basename(str(playbook._file_name)))  # noqa: PTH119

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._play = str(play.get_name()).strip()
        # Includes start a worker but give no runner result: forget their starts.
        self._started.clear()
        self._emit("play_start", name=self._play)

    def v2_playbook_on_task_start(self, task: Any, is_conditional: Any) -> None:
        self._emit(
            "task_start",
            name=self._task_name(task),
            role=self._role_of(task),
            play=self._play,
            handler=False,
        )

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._emit(
            "task_start",
            name=self._task_name(task),
            role=self._role_of(task),
            play=self._play,
            handler=True,
        )

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        self._started[self._start_key(host, task)] = time.monotonic()

    def v2_runner_on_ok(self, result: Any) -> None:
        self._runner("runner_ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        task = getattr(result, "task", None) or result._task
        self._runner(
            "runner_failed",
            result,
            ignored=bool(ignore_errors),
            rescued=not ignore_errors and self._in_rescued_block(task),
        )

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._runner("runner_skipped", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._runner("runner_unreachable", result)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        hosts = {}
        for host in sorted(stats.processed):
            counts = stats.summarize(host)
            hosts[host] = {
                key: int(counts.get(key, 0))
                for key in (
                    "ok",
                    "changed",
                    "failures",
                    "unreachable",
                    "skipped",
                    "rescued",
                    "ignored",
                )
            }
        self._emit("stats", hosts=hosts)
        if self._stream is not None:
            self._stream.close()
            self._stream = None
