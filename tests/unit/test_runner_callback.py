"""The osdeploy_events callback plugin's message extraction and event writing."""

import importlib.util
import json
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from osdeploy import PROJECT_ROOT


def _load_plugin() -> ModuleType:
    path = PROJECT_ROOT / "plugins/callback/osdeploy_events.py"
    spec = importlib.util.spec_from_file_location("osdeploy_events_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plugin = _load_plugin()


def test_declares_itself_as_needing_enabling() -> None:
    cls = plugin.CallbackModule
    assert cls.CALLBACK_TYPE == "notification"
    assert cls.CALLBACK_NEEDS_ENABLED is True
    assert cls.CALLBACK_NAME == "osdeploy_events"


@pytest.mark.parametrize(
    "result",
    [
        {"_ansible_no_log": True, "msg": "pw=x", "stderr": "pw=x"},
        {"censored": "the output has been hidden", "msg": "pw=x"},
    ],
)
def test_censored_results_say_only_hidden(result: dict[str, Any]) -> None:
    assert plugin._message(result) == "output hidden (no_log)"


def test_message_joins_msg_and_stderr() -> None:
    result = {"msg": "non-zero return code", "stderr": "boom\n", "stdout": "ignored"}
    assert plugin._message(result) == "non-zero return code\nboom"


def test_message_falls_back_to_stdout() -> None:
    assert plugin._message({"stdout": "only this"}) == "only this"


def test_message_of_a_loop_names_the_failed_item() -> None:
    result = {
        "msg": "One or more items failed",
        "results": [
            {"item": "a", "failed": False},
            {"item": "b", "failed": True, "msg": "no package b"},
        ],
    }
    assert plugin._message(result) == 'One or more items failed\nitem "b": no package b'


def test_message_of_a_loop_hides_no_log_items() -> None:
    result = {
        "msg": "One or more items failed",
        "results": [{"failed": True, "censored": "hidden", "_ansible_no_log": True}],
    }
    assert plugin._message(result) == "One or more items failed\nitem: output hidden (no_log)"


def test_long_messages_are_clipped() -> None:
    text = plugin._message({"msg": "x" * 10000})
    assert len(text) <= plugin.MAX_MSG
    assert text.endswith("(truncated)")


class _Task(SimpleNamespace):
    pass


def _result(no_log: Any, data: dict[str, Any]) -> Any:
    task = _Task(name="Set password", action="command", no_log=no_log, _role=None, _parent=None)
    host = SimpleNamespace(get_name=lambda: "ctl1")
    return SimpleNamespace(task=task, host=host, result=data)


def _callback(tmp_path: Path) -> tuple[Any, Path]:
    path = tmp_path / "events.jsonl"
    cb = plugin.CallbackModule()
    cb._path = str(path)
    return cb, path


def test_runner_events_and_no_log_task(tmp_path: Path) -> None:
    cb, path = _callback(tmp_path)
    cb.v2_runner_on_ok(_result(False, {"changed": True}))
    cb.v2_runner_on_failed(_result(True, {"msg": "secret-value", "changed": False}))
    cb.v2_runner_on_unreachable(_result(False, {"msg": "Failed to connect"}))
    cb._stream.close()
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["event"] for e in events] == ["runner_changed", "runner_failed", "runner_unreachable"]
    assert "secret-value" not in path.read_text()
    assert events[1]["msg"] == "output hidden (no_log)"
    assert events[1]["ignored"] is False
    assert events[2]["msg"] == "Failed to connect"
    assert events[0] == {
        "event": "runner_changed",
        "time": events[0]["time"],
        "host": "ctl1",
        "task": "Set password",
        "role": "",
        "changed": True,
    }


def test_without_a_path_nothing_is_written(tmp_path: Path) -> None:
    cb = plugin.CallbackModule()
    cb._path = None
    cb.v2_runner_on_ok(_result(False, {}))
    assert cb._stream is None


def test_result_carries_the_hosts_own_duration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cb, path = _callback(tmp_path)
    clock = iter([100.0, 102.5])
    monkeypatch.setattr(plugin.time, "monotonic", lambda: next(clock))
    result = _result(False, {"changed": False})
    cb.v2_runner_on_start(result.host, result.task)
    cb.v2_runner_on_ok(result)
    cb.v2_runner_on_ok(result)  # a second result without a start: no duration
    cb._stream.close()
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert first["duration"] == 2.5
    assert "duration" not in second


def test_a_new_play_forgets_starts_without_a_result(tmp_path: Path) -> None:
    cb, _path = _callback(tmp_path)
    result = _result(False, {})
    cb.v2_runner_on_start(result.host, result.task)  # an include: no result follows
    cb.v2_playbook_on_play_start(SimpleNamespace(get_name=lambda: "next play"))
    assert cb._started == {}
