"""Pure parts of the runner and the progress fold: command, environment, summary."""

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from osdeploy import PROJECT_ROOT, progress, runner
from osdeploy.errors import OsdeployError
from osdeploy.progress import Progress, format_seconds, read_new_events, shorten
from osdeploy.runner import DeployOptions, build_command, build_env, summarize

DEPLOY = Path("/srv/lab")


def test_command_minimal() -> None:
    cmd = build_command(DEPLOY, DeployOptions())
    assert Path(cmd[0]).name == "ansible-playbook"
    assert cmd[1:] == ["-i", "/srv/lab/inventory", str(PROJECT_ROOT / "playbooks" / "site.yml")]


def test_command_all_options() -> None:
    opts = DeployOptions(
        services=("keystone", "memcached"),
        limit="ctl1",
        tags="keystone-config",
        check=True,
        diff=True,
        extra_vars=("a=1", "@vars.yml"),
        verbose=3,
    )
    cmd = build_command(DEPLOY, opts, playbook="keystone.yml")
    assert cmd[1:] == [
        "-i",
        "/srv/lab/inventory",
        str(PROJECT_ROOT / "playbooks" / "keystone.yml"),
        "-l",
        "ctl1",
        "-t",
        "keystone-config",
        "-C",
        "-D",
        "-e",
        '{"osdeploy_run_services": ["keystone", "memcached"]}',
        "-e",
        "a=1",
        "-e",
        "@vars.yml",
        "-vvv",
    ]
    services = json.loads(cmd[cmd.index("-e") + 1])
    assert services == {"osdeploy_run_services": ["keystone", "memcached"]}


def test_command_is_an_argument_list_without_shell_quoting() -> None:
    cmd = build_command(DEPLOY, DeployOptions(extra_vars=("msg='a b; rm -rf /'",)))
    assert "msg='a b; rm -rf /'" in cmd


def test_env_sets_config_colour_and_events() -> None:
    env = build_env(Path("/srv/lab/logs/x.events.jsonl"), {"PATH": "/bin", "HOME": "/root"})
    assert env["ANSIBLE_CONFIG"] == str(PROJECT_ROOT / "ansible.cfg")
    assert env["ANSIBLE_FORCE_COLOR"] == "0"
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == "osdeploy_events"
    assert env["OSDEPLOY_EVENTS"] == "/srv/lab/logs/x.events.jsonl"
    assert env["PATH"] == "/bin"


def test_env_keeps_callbacks_the_user_enabled() -> None:
    env = build_env(Path("/e"), {"ANSIBLE_CALLBACKS_ENABLED": "profile_tasks"})
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == "profile_tasks,osdeploy_events"
    again = build_env(Path("/e"), env)
    assert again["ANSIBLE_CALLBACKS_ENABLED"] == "profile_tasks,osdeploy_events"


def test_redact_hides_user_extra_vars_only() -> None:
    cmd = build_command(
        DEPLOY, DeployOptions(services=("keystone",), extra_vars=("admin_pw=hunter2",))
    )
    text = runner.redact_command(cmd)
    assert "hunter2" not in text
    assert "<hidden>" in text
    assert "osdeploy_run_services" in text


@pytest.mark.parametrize(("rc", "code"), [(0, 0), (1, 1), (2, 1), (4, 1), (250, 1)])
def test_exit_code(rc: int, code: int) -> None:
    assert runner.exit_code(rc) == code


def test_log_paths_are_utc_stamped() -> None:
    log, events = runner.log_paths(DEPLOY, 0.0)
    assert log == DEPLOY / "logs" / "deploy-19700101T000000Z.log"
    assert events == DEPLOY / "logs" / "deploy-19700101T000000Z.events.jsonl"


def _plan(*names: str) -> Any:
    return SimpleNamespace(services=tuple(SimpleNamespace(name=n) for n in names))


def test_run_deploy_refuses_unplanned_services(tmp_path: Path) -> None:
    (tmp_path / "inventory").mkdir()
    with pytest.raises(OsdeployError, match="glance not in this deployment's plan"):
        runner._check_inputs(
            tmp_path,
            _plan("mariadb", "keystone"),
            DeployOptions(services=("glance",)),
            "site.yml",
        )


def test_run_deploy_needs_an_inventory(tmp_path: Path) -> None:
    with pytest.raises(OsdeployError, match="no inventory"):
        runner.run_deploy(tmp_path, _plan("keystone"), DeployOptions())


# -- summarize ----------------------------------------------------------------


def ev(kind: str, t: float, **fields: Any) -> dict[str, Any]:
    return {"event": kind, "time": t, **fields}


def run_events() -> list[dict[str, Any]]:
    return [
        ev("playbook_start", 100.0, playbook="site.yml"),
        ev("play_start", 100.0, name="Group hosts"),
        ev("task_start", 100.0, name="Group by service", role="", play="Group hosts"),
        ev("runner_ok", 101.0, host="ctl1", task="Group by service", role="", changed=False),
        ev("play_start", 101.0, name="Deploy MariaDB"),
        ev("task_start", 101.0, name="Install packages", role="mariadb", play="Deploy MariaDB"),
        ev("runner_changed", 110.0, host="ctl1", task="Install", role="mariadb", changed=True),
        ev("task_start", 110.0, name="Skip me", role="mariadb", play="Deploy MariaDB"),
        ev("runner_skipped", 111.0, host="ctl1", task="Skip me", role="mariadb", changed=False),
        ev("play_start", 111.0, name="Deploy Keystone"),
        ev("task_start", 111.0, name="Sync db", role="keystone", play="Deploy Keystone"),
        ev(
            "runner_failed",
            115.0,
            host="ctl1",
            task="Sync db",
            role="keystone",
            changed=False,
            ignored=False,
            msg="non-zero return code\nOperationalError",
        ),
        ev("task_start", 115.0, name="Probe", role="keystone", play="Deploy Keystone"),
        ev(
            "runner_failed",
            116.0,
            host="ctl2",
            task="Probe",
            role="keystone",
            changed=False,
            ignored=True,
            msg="ignored",
        ),
        ev(
            "runner_unreachable",
            116.0,
            host="ctl3",
            task="Probe",
            role="keystone",
            changed=False,
            msg="Failed to connect",
        ),
        ev(
            "stats",
            117.0,
            hosts={
                "ctl1": {"ok": 2, "changed": 1, "failures": 1, "unreachable": 0, "skipped": 1},
                "ctl2": {"ok": 1, "changed": 0, "failures": 0, "unreachable": 0, "ignored": 1},
                "ctl3": {"ok": 0, "changed": 0, "failures": 0, "unreachable": 1},
            },
        ),
    ]


def test_summarize_counts_times_and_failures() -> None:
    summary = summarize(run_events(), log="/srv/lab/logs/deploy.log")
    assert summary.hosts["ctl1"] == {
        "ok": 2,
        "changed": 1,
        "unreachable": 0,
        "failed": 1,
        "skipped": 1,
        "rescued": 0,
        "ignored": 0,
    }
    assert summary.hosts["ctl3"]["unreachable"] == 1
    assert summary.roles == {
        "play: Group hosts": 1.0,
        "mariadb": 10.0,
        "keystone": 6.0,
    }
    assert summary.changed == {"play: Group hosts": 0, "mariadb": 1, "keystone": 0}
    assert summary.total_seconds == 17.0
    assert [(f.host, f.task, f.kind) for f in summary.failures] == [
        ("ctl1", "Sync db", "failed"),
        ("ctl3", "Probe", "unreachable"),
    ]
    assert summary.failures[0].play == "Deploy Keystone"
    assert summary.failures[0].msg.endswith("OperationalError")
    assert not summary.ok


def test_summary_json_shape() -> None:
    data = summarize(run_events(), log="/x.log").to_json()
    assert set(data) == {
        "hosts",
        "roles",
        "changed",
        "total_seconds",
        "failures",
        "slowest",
        "converged",
        "log",
    }
    assert data["log"] == "/x.log"
    assert data["failures"][0] == {
        "host": "ctl1",
        "task": "Sync db",
        "role": "keystone",
        "play": "Deploy Keystone",
        "kind": "failed",
        "msg": "non-zero return code\nOperationalError",
    }
    json.dumps(data)


def test_summarize_without_stats_counts_results() -> None:
    events = [e for e in run_events() if e["event"] != "stats"]
    summary = summarize(events)
    assert summary.hosts["ctl1"]["failed"] == 1
    assert summary.hosts["ctl2"] == {
        **dict.fromkeys(progress.HOST_COUNTERS, 0),
        "ok": 1,
        "ignored": 1,
    }
    assert len(summary.failures) == 2


def test_rescued_failure_is_not_a_failure() -> None:
    events = [
        ev("play_start", 0.0, name="p"),
        ev("task_start", 0.0, name="try", role="r", play="p"),
        ev("runner_failed", 1.0, host="h", task="try", role="r", rescued=True, msg="x"),
        ev("task_start", 1.0, name="rescue", role="r", play="p"),
        ev("runner_ok", 2.0, host="h", task="rescue", role="r"),
        ev("stats", 2.0, hosts={"h": {"ok": 1, "rescued": 1}}),
    ]
    summary = summarize(events)
    assert summary.failures == ()
    assert summary.ok


def test_failure_of_a_host_that_ended_fine_is_dropped() -> None:
    events = [
        ev("play_start", 0.0, name="p"),
        ev("task_start", 0.0, name="try", role="r", play="p"),
        ev("runner_failed", 1.0, host="h", task="try", role="r", msg="x"),
        ev("stats", 2.0, hosts={"h": {"ok": 1, "rescued": 1}}),
    ]
    assert summarize(events).failures == ()


def test_progress_plain_lines_once_per_play_and_role() -> None:
    p = Progress()
    lines = [p.apply(e) for e in run_events()]
    assert [line for line in lines if line] == [
        "play: Group hosts",
        "play: Deploy MariaDB",
        "role: mariadb (Deploy MariaDB)",
        "play: Deploy Keystone",
        "role: keystone (Deploy Keystone)",
    ]
    assert p.tasks_done == 5


def test_plain_line_and_time_go_to_the_first_role_of_a_play() -> None:
    p = Progress()
    events = [
        ev("play_start", 0.0, name="Deploy MariaDB"),
        ev("task_start", 1.0, name="a", role="mariadb", play="Deploy MariaDB"),
        ev("task_start", 2.0, name="b", role="common", play="Deploy MariaDB"),
        ev("task_start", 3.0, name="c", role="mariadb", play="Deploy MariaDB"),
        ev("play_start", 4.0, name="Deploy Keystone"),
        ev("task_start", 5.0, name="d", role="common", play="Deploy Keystone"),
    ]
    lines = [line for e in events if (line := p.apply(e))]
    assert lines == [
        "play: Deploy MariaDB",
        "role: mariadb (Deploy MariaDB)",
        "play: Deploy Keystone",
        "role: common (Deploy Keystone)",
    ]
    assert p.role_started_at == 5.0
    # common's task inside the MariaDB play is MariaDB's cost
    assert set(p.roles) == {"mariadb", "common"}


def test_progress_live_fields() -> None:
    p = Progress()
    for e in run_events()[:8]:
        p.apply(e)
    assert (p.play, p.role, p.task) == ("Deploy MariaDB", "mariadb", "Skip me")
    assert p.tasks_done == 2
    assert p.role_started_at == 101.0


def test_summarize_ignores_unknown_events() -> None:
    assert summarize([{"event": "future_thing", "time": 1.0}, {}]).hosts == {}


def test_read_new_events_only_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    assert read_new_events(path, 0) == ([], 0)
    path.write_text('{"event":"a","time":1}\n{"event":"b"', encoding="utf-8")
    events, offset = read_new_events(path, 0)
    assert [e["event"] for e in events] == ["a"]
    with path.open("a", encoding="utf-8") as f:
        f.write(',"time":2}\nnot json\n')
    events, offset = read_new_events(path, offset)
    assert [e["event"] for e in events] == ["b"]
    assert read_new_events(path, offset) == ([], offset)


def test_shorten_keeps_the_end() -> None:
    msg = "\n".join(f"line {i}" for i in range(100))
    short = shorten(msg, max_lines=5)
    assert short.splitlines()[-1] == "line 99"
    assert "see the log" in short
    assert shorten("one line") == "one line"


@pytest.mark.parametrize(
    ("secs", "text"), [(0.04, "0.0s"), (12.34, "12.3s"), (75, "1m15s"), (3725, "1h02m05s")]
)
def test_format_seconds(secs: float, text: str) -> None:
    assert format_seconds(secs) == text


# -- the converged-host skip's fingerprint ----------------------------------------


def _deployment(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "src"
    for name, text in {
        "ansible.cfg": "[defaults]\n",
        "playbooks/site.yml": "---\n",
        "roles/nova/tasks/main.yml": "---\n",
        "roles/nova/README.md": "# nova\n",
        "roles/nova/molecule/default/molecule.yml": "---\n",
        "plugins/filter/f.py": "x = 1\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    deploy = tmp_path / "deploy"
    (deploy / "inventory/group_vars/all").mkdir(parents=True)
    (deploy / "inventory/hosts.yml").write_text("all: {}\n")
    (deploy / "passwords.yml").write_text("nova_password: s3cret\n")
    (deploy / "inventory/group_vars/all/passwords.yml").symlink_to("../../../passwords.yml")
    return root, deploy


def _fingerprint(root: Path, deploy: Path, opts: DeployOptions | None = None) -> str:
    opts = opts or DeployOptions()
    return runner.inputs_fingerprint(runner.fingerprint_files(deploy, root), opts, "2.19.0")


def test_fingerprint_reads_code_inventory_and_passwords_only(tmp_path: Path) -> None:
    root, deploy = _deployment(tmp_path)
    assert sorted(runner.fingerprint_files(deploy, root)) == [
        "inventory/group_vars/all/passwords.yml",
        "inventory/hosts.yml",
        "source/ansible.cfg",
        "source/playbooks/site.yml",
        "source/plugins/filter/f.py",
        "source/roles/nova/tasks/main.yml",
    ]


def test_fingerprint_changes_with_every_input_that_reaches_a_host(tmp_path: Path) -> None:
    root, deploy = _deployment(tmp_path)
    first = _fingerprint(root, deploy)
    assert _fingerprint(root, deploy) == first
    assert _fingerprint(root, deploy, DeployOptions(limit="cmp1", check=True, verbose=2)) == first
    assert _fingerprint(root, deploy, DeployOptions(services=("nova",))) != first
    assert _fingerprint(root, deploy, DeployOptions(extra_vars=("a=1",))) != first
    assert (
        runner.inputs_fingerprint(runner.fingerprint_files(deploy, root), DeployOptions(), "2.20")
        != first
    )
    (root / "roles/nova/README.md").write_text("# changed\n")
    assert _fingerprint(root, deploy) == first
    for changed in (deploy / "passwords.yml", root / "roles/nova/tasks/main.yml"):
        text = changed.read_text()
        changed.write_text(text + "# more\n")
        assert _fingerprint(root, deploy) != first, changed
        changed.write_text(text)
    assert _fingerprint(root, deploy) == first


def test_fingerprint_goes_to_the_command_and_is_shown_in_the_log() -> None:
    cmd = build_command(DEPLOY, DeployOptions(), fingerprint="abc123")
    assert cmd[-2:] == ["-e", "osdeploy_converged_fingerprint=abc123"]
    assert "osdeploy_converged_fingerprint=abc123" in runner.redact_command(cmd)
    assert "osdeploy_converged_fingerprint" not in " ".join(build_command(DEPLOY, DeployOptions()))


def test_summary_names_the_converged_hosts() -> None:
    events = [
        {
            "event": "play_start",
            "name": "Find the hosts an earlier run left converged",
            "time": 1.0,
        },
        {"event": "task_start", "name": "Leave converged hosts out", "role": "", "time": 1.0},
        *(
            {
                "event": "runner_ok",
                "host": h,
                "task": "Leave converged hosts out",
                "role": "",
                "changed": False,
                "group": f"osdeploy_converged_{h != 'cmp2'}",
                "time": 1.5,
            }
            for h in ("ctl1", "cmp1", "cmp2")
        ),
    ]
    summary = summarize(events)
    assert summary.converged == ("cmp1", "ctl1")
    assert summary.to_json()["converged"] == ["cmp1", "ctl1"]
