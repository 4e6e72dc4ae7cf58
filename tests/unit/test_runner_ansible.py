"""The runner and the osdeploy_events callback with a real ansible-playbook.

Hosts use `ansible_connection: local`: no network, no SSH, a few seconds.
The playbook lives in a temporary project root; the callback plugin is the
repository's own.
"""

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from osdeploy import PROJECT_ROOT, runner

SECRET = "s3cr3t-Never-Shown"

ROLE_TASKS = f"""
- name: Say hello
  ansible.builtin.command: echo hello
  changed_when: true
- name: Fail with a secret under no_log
  ansible.builtin.command: "sh -c 'echo {SECRET} >&2; exit 3'"
  changed_when: false
  no_log: true
  ignore_errors: true
- name: Loop with a secret item under no_log
  ansible.builtin.command: "sh -c 'echo {{{{ item }}}} >&2; exit 1'"
  changed_when: false
  loop: ["{SECRET}"]
  no_log: true
  ignore_errors: true
- name: Recover from a failure
  block:
    - name: Fail inside a block
      ansible.builtin.command: "false"
      changed_when: false
  rescue:
    - name: Rescue it
      ansible.builtin.debug:
        msg: rescued
"""

PLAYBOOK = """
- name: Test play
  hosts: all
  gather_facts: false
  roles: [demo]
  tasks:
    - name: Skip this
      ansible.builtin.debug:
        msg: never
      when: false
    - name: Fail for real
      ansible.builtin.command: "sh -c 'echo boom >&2; exit 2'"
      changed_when: false
      when: fail_now | default(true) | bool
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    (root / "playbooks").mkdir(parents=True)
    (root / "roles/demo/tasks").mkdir(parents=True)
    (root / "roles/demo/tasks/main.yml").write_text(ROLE_TASKS, encoding="utf-8")
    (root / "playbooks/test.yml").write_text(PLAYBOOK, encoding="utf-8")
    (root / "ansible.cfg").write_text(
        "[defaults]\n"
        f"callback_plugins = {PROJECT_ROOT / 'plugins/callback'}\n"
        f"roles_path = {root / 'roles'}\n"
        "retry_files_enabled = false\n"
        "nocows = true\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(runner, "PROJECT_ROOT", root)
    return root


@pytest.fixture
def deploy_dir(tmp_path: Path) -> Path:
    deploy = tmp_path / "deploy"
    (deploy / "inventory").mkdir(parents=True)
    python = os.environ.get("OSDEPLOY_TEST_PYTHON") or runner.sys.executable
    hosts = {
        "all": {
            "hosts": {
                name: {"ansible_connection": "local", "ansible_python_interpreter": python}
                for name in ("h1", "h2")
            }
        }
    }
    (deploy / "inventory/hosts.yml").write_text(json.dumps(hosts), encoding="utf-8")
    return deploy


def _plan() -> Any:
    return SimpleNamespace(services=(SimpleNamespace(name="keystone"),))


pytestmark = pytest.mark.skipif(
    not Path(runner.ansible_playbook_path()).is_file(), reason="ansible-playbook not installed"
)


def _run_files(deploy_dir: Path) -> tuple[Path, Path]:
    logs = deploy_dir / "logs"
    (log,) = sorted(logs.glob("deploy-*.log"))
    (events,) = sorted(logs.glob("deploy-*.events.jsonl"))
    return log, events


def test_failed_run(project: Path, deploy_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = runner.run_deploy(deploy_dir, _plan(), runner.DeployOptions(), playbook="test.yml")
    out, err = capsys.readouterr()
    assert rc == 1

    log, events_path = _run_files(deploy_dir)
    assert stat.S_IMODE((deploy_dir / "logs").stat().st_mode) == 0o700
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    log_text = log.read_text(encoding="utf-8")
    assert "TASK [demo : Say hello]" in log_text  # ansible's own human output
    assert "exited with code 2" in log_text

    events = runner.load_events(events_path)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "playbook_start"
    assert kinds[-1] == "stats"
    assert "runner_changed" in kinds
    assert "runner_skipped" in kinds

    for text in (out, err, log_text, events_path.read_text(encoding="utf-8")):
        assert SECRET not in text
    hidden = [e for e in events if e["event"] == "runner_failed" and e["ignored"]]
    assert len(hidden) == 4  # two no_log tasks on two hosts
    assert {e["msg"] for e in hidden} == {"output hidden (no_log)"}
    rescued = [e for e in events if e["event"] == "runner_failed" and e.get("rescued")]
    assert {e["host"] for e in rescued} == {"h1", "h2"}
    results = [e for e in events if e["event"].startswith("runner_")]
    # every host's result says how long that host spent on the task (loops included)
    assert all(e["duration"] >= 0 for e in results)
    loop = [e for e in results if e["task"] == "Loop with a secret item under no_log"]
    assert sorted(e["host"] for e in loop) == ["h1", "h2"]
    starts = [e for e in events if e["event"] == "task_start"]
    assert all(set(e) == {"event", "time", "name", "role", "play", "handler"} for e in starts)
    assert starts[0]["role"] == "demo"

    # summary on stdout: table, the real failure with its message, the log path
    assert "FAILED: h1: Fail for real" in out
    assert "boom" in out
    # rescued: not a failure (the slowest-tasks table may still name it)
    assert "FAILED: h1: demo : Fail inside a block" not in out
    assert str(log) in out
    assert "slowest tasks" in out
    # not a TTY: one plain line per play and role on stderr
    assert "osdeploy: play: Test play" in err
    assert "osdeploy: role: demo (Test play)" in err


def test_json_success(project: Path, deploy_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    opts = runner.DeployOptions(json=True, extra_vars=("fail_now=false",))
    rc = runner.run_deploy(deploy_dir, _plan(), opts, playbook="test.yml")
    out, _err = capsys.readouterr()
    assert rc == 0
    data = json.loads(out)
    assert data["failures"] == []
    assert data["hosts"]["h1"]["changed"] == 1
    assert data["hosts"]["h1"]["rescued"] == 1
    assert data["hosts"]["h1"]["ignored"] == 2
    assert data["hosts"]["h1"]["failed"] == 0
    # play-level tasks after the role are booked to it
    assert set(data["roles"]) == {"demo"}
    assert data["total_seconds"] > 0
    assert {entry["host"] for entry in data["slowest"]} == {"h1", "h2"}
    assert all(
        set(entry) == {"host", "role", "task", "play", "seconds"} for entry in data["slowest"]
    )
    log, _events = _run_files(deploy_dir)
    assert data["log"] == str(log)
    assert "fail_now" not in log.read_text(encoding="utf-8").splitlines()[0]


def test_ansible_error_is_reported(
    project: Path, deploy_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "playbooks/bad.yml").write_text("- hosts: all\n  tasks: [{nosuch: {}}]\n")
    rc = runner.run_deploy(deploy_dir, _plan(), runner.DeployOptions(json=True), playbook="bad.yml")
    data = json.loads(capsys.readouterr().out)
    assert rc == 1
    (failure,) = data["failures"]
    assert failure["kind"] == "error"
    assert "exited with code" in failure["msg"]
    assert "nosuch" in failure["msg"]


SLEEP_PLAYBOOK = """
- name: Sleep play
  hosts: h1
  gather_facts: false
  tasks:
    - name: Sleep long
      ansible.builtin.command: sleep {seconds}
      changed_when: false
"""

KILLED_RUN = """
import sys
from pathlib import Path
from types import SimpleNamespace
from osdeploy import runner
runner.PROJECT_ROOT = Path(sys.argv[1])
deploy = Path(sys.argv[2])
plan = SimpleNamespace(services=(SimpleNamespace(name="keystone"),))
with runner.deployment_lock(deploy) as fd:
    runner.run_deploy(deploy, plan, runner.DeployOptions(), playbook="sleep.yml", lock_fd=fd)
"""


def test_killed_osdeploy_takes_ansible_down_and_frees_the_lock(
    project: Path, deploy_dir: Path
) -> None:
    # osdeploy killed outright (SIGKILL: no handler runs) mid-task: its
    # ansible-playbook stops too, and the next run gets the lock once it has.
    # A length of sleep no other process on the machine has: the test looks
    # for the command line afterwards.
    sleep = f"sleep {120 + os.getpid() % 1000}.{time.time_ns() % 1000:03d}"
    playbook = SLEEP_PLAYBOOK.format(seconds=sleep.split()[1])
    (project / "playbooks/sleep.yml").write_text(playbook, encoding="utf-8")
    proc = subprocess.Popen(
        [runner.sys.executable, "-c", KILLED_RUN, str(project), str(deploy_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while "Sleep long" not in "".join(
        p.read_text() for p in (deploy_dir / "logs").glob("*.events.jsonl")
    ):
        assert proc.poll() is None and time.monotonic() < deadline, "the run did not start"
        time.sleep(0.2)
    with (
        pytest.raises(runner.OsdeployError, match="still running"),
        runner.deployment_lock(deploy_dir, wait=0),
    ):
        pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    started = time.monotonic()
    with runner.deployment_lock(deploy_dir, wait=30):
        waited = time.monotonic() - started
    assert waited < 30
    log, _ = _run_files(deploy_dir)
    # ansible-playbook stopped its task (SIGINT) rather than sleep on alone.
    assert (
        sleep
        not in subprocess.run(
            ["ps", "-eo", "args"], capture_output=True, text=True, check=True
        ).stdout
    ), log.read_text()
