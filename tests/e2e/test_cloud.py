"""The three-host lab cloud end to end, grown the way an operator grows one.

Every service but Nova first, from bare hosts (Keystone, Glance, Placement,
Neutron with OVN, Ceph, Cinder and Swift, and what they need; osdeploy killed
halfway, then run again), then Nova added by itself on the control host
and two computes (nothing else may change or restart); a re-run that
changes nothing while verify passes with real servers and volumes, then
one that leaves every converged host out; drift by hand, seen and left
alone by check and diff mode, then repaired; the README's tour from the
CLI (a volume in a server, lsblk over ssh from this machine), a storage
host stopped under it (Swift objects read and stored meanwhile), then
every host restarted at once, the stopped one with them: verify again, the
same server answers at its floating IP with its volume's data unchanged,
and a deploy after it leaves every host out; a fourth host joined as a
compute and storage host (an object readable throughout, the same rings on
every Swift host, its device in them), with a server on it; precheck
refuses a host cloned from another.

The tests run in file order and build on each other (one lab for the session).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from osdeploy.catalog import load_catalog
from osdeploy.runner import load_events
from osdeploy.secrets import IDENTIFIER_SUFFIXES
from osdeploy.verify.storage import guest_disk_script, parse_disk_line

from .conftest import BIN, Lab, Run

HOSTS = ("ctl1", "cmp1", "cmp2")
#: Every OpenStack service that has a role: the whole cloud.
FULL = list(load_catalog().deployable("openstack"))
#: Units whose restart would mean "adding nova touched another service", per host.
_STORAGE_UNITS = ("ceph-osd@*", "cinder-volume", "cinder-backup")
WATCHED_UNITS = {
    "ctl1": (
        *("mariadb", "rabbitmq-server", "memcached", "keystone", "glance-api", "placement-api"),
        *("neutron-api", "neutron-rpc-server", "ovn-northd", "ovs-vswitchd", "ovn-controller"),
        *("ceph-mon@ctl1", "ceph-mgr@ctl1", "cinder-api", "cinder-scheduler", *_STORAGE_UNITS),
        "apache2",
    ),
    "cmp1": ("ovs-vswitchd", "ovn-controller", "neutron-ovn-metadata-agent", *_STORAGE_UNITS),
    "cmp2": ("ovs-vswitchd", "ovn-controller", "neutron-ovn-metadata-agent", *_STORAGE_UNITS),
}


def _summary(run: Run) -> dict[str, Any]:
    assert run.returncode == 0, run.output[-6000:]
    summary: dict[str, Any] = json.loads(run.stdout[run.stdout.index("{") :])
    assert summary["failures"] == []
    return summary


def _set_services(lab: Lab, services: list[str]) -> None:
    path = lab.dir / "osdeploy.yml"
    data = yaml.safe_load(path.read_text())
    data["services"] = services
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _openstack(lab: Lab, *args: str, timeout: float = 300) -> Any:
    argv = [str(BIN / "openstack"), "--os-cloud", "osdeploy", *args, "-f", "json"]
    run = lab.run_raw(argv, timeout=timeout)
    assert run.returncode == 0, run.output[-3000:]
    return json.loads(run.stdout) if run.stdout.strip() else None


def _cli(lab: Lab, *args: str) -> None:
    """An openstack command that prints nothing (no -f json)."""
    run = lab.run_raw([str(BIN / "openstack"), "--os-cloud", "osdeploy", *args])
    assert run.returncode == 0, run.output[-3000:]


def _put_object(lab: Lab, name: str, data: bytes) -> None:
    """An object of container e2e-objects, stored with the openstack client."""
    path = lab.dir / f"e2e-object-{name}"
    path.write_bytes(data)
    _openstack(lab, "object", "create", "--name", name, "e2e-objects", str(path))


def _get_object(lab: Lab, name: str) -> bytes:
    """The bytes the openstack client reads of an object of e2e-objects."""
    path = lab.dir / f"e2e-object-{name}.read"
    _cli(lab, "object", "save", "--file", str(path), "e2e-objects", name)
    return path.read_bytes()


def _object_reader(lab: Lab, container: str, name: str) -> Callable[[], bytes]:
    """Reads an object from this process, one GET per call with the token
    kept: a poll through the openstack CLI would start a Python every time,
    CPU the deploy it watches needs."""
    import openstack.config
    import openstack.connection

    config = openstack.config.OpenStackConfig(config_files=[str(lab.dir / "clouds.yaml")])
    conn = openstack.connection.Connection(config=config.get_one(cloud="osdeploy"))
    return lambda: bytes(conn.object_store.download_object(name, container=container))


def _started(lab: Lab, host: str) -> dict[str, str]:
    """When each watched unit on ``host`` last (re)started (monotonic µs)."""
    run = lab.run(
        "lab",
        "ssh",
        host,
        "systemctl",
        "show",
        "-p",
        "Id,ActiveEnterTimestampMonotonic",
        *(f"{u}.service" for u in WATCHED_UNITS[host]),
    )
    assert run.returncode == 0, run.output
    blocks = [b for b in run.stdout.strip().split("\n\n") if b.strip()]
    result = {}
    for block in blocks:
        values = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        result[values["Id"]] = values["ActiveEnterTimestampMonotonic"]
    return result


def _wait_console(lab: Lab, server: str, text: str, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while True:
        argv = [str(BIN / "openstack"), "--os-cloud", "osdeploy", "console", "log", "show", server]
        run = lab.run_raw(argv)
        if run.returncode == 0 and text in run.stdout:
            return run.stdout
        assert time.monotonic() < deadline, f"{text!r} not on the console of {server}"
        time.sleep(5)


# -- everything but nova, from bare hosts ------------------------------------------


def _events(lab: Lab) -> list[dict[str, Any]]:
    """Every event of every run so far, oldest run first."""
    paths = sorted((lab.dir / "logs").glob("deploy-*.events.jsonl"))
    return [event for path in paths for event in load_events(path)]


def _kill_deploy_in(lab: Lab, play: str, role: str, timeout: float = 3600) -> str:
    """Start a deploy and SIGKILL osdeploy as soon as a task of ``role`` in
    ``play`` has finished on some host; returns that task. ansible-playbook is
    left to notice by itself (osdeploy has no chance to stop it)."""
    seen = len(_events(lab))
    proc = lab.start("deploy")
    deadline = time.monotonic() + timeout
    while True:
        events = _events(lab)[seen:]
        starts = [i for i, e in enumerate(events) if e["event"] == "play_start"]
        begun = [i for i in starts if events[i]["name"] == play]
        in_play = events[begun[0] :] if begun else []
        done = [
            e
            for e in in_play
            if e.get("role") == role and e["event"] in ("runner_ok", "runner_changed")
        ]
        if done:
            break
        assert proc.poll() is None, f"deploy ended (code {proc.returncode}) before {play} began"
        assert time.monotonic() < deadline, f"{play} did not begin within {timeout:.0f} s"
        time.sleep(1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return f"{done[0]['task']} ({done[0]['host']})"


def test_cold_deploy_without_nova_killed_midway_then_rerun(lab: Lab) -> None:
    # Bare hosts: every service of the cloud but nova, the leaf nothing else
    # needs; the next tests add nova alone. osdeploy is killed in the middle
    # (mariadb, rabbitmq, memcached and keystone done, glance begun), as a
    # lost session or a power cut on the deploy machine would; the re-run
    # finishes the cloud (verify proves it, after nova is added).
    _set_services(lab, [s for s in FULL if s != "nova"])
    killed_after = _kill_deploy_in(lab, "Glance", "glance")
    summary = _summary(lab.run("deploy", "--json", timeout=3600))
    assert set(summary["hosts"]) == set(HOSTS)
    assert "nova" not in summary["changed"], summary["changed"]
    # What the killed run did is done: the re-run changes only later roles.
    finished = {"mariadb", "rabbitmq", "memcached", "keystone"}
    assert not finished & {r for r, n in summary["changed"].items() if n}, summary["changed"]
    assert summary["changed"].get("neutron"), summary["changed"]
    print(f"killed after: {killed_after}; re-run changed: {summary['changed']}")


def test_public_endpoint_serves_version_document(lab: Lab) -> None:
    clouds = yaml.safe_load((lab.dir / "clouds.yaml").read_text())
    auth_url = clouds["clouds"]["osdeploy"]["auth"]["auth_url"].rstrip("/")
    with urllib.request.urlopen(auth_url, timeout=10) as response:  # noqa: S310 (lab host)
        document = json.load(response)
    assert document["version"]["id"].startswith("v3"), document


# -- nova added alone ------------------------------------------------------------------


def test_plan_shows_nova_as_the_only_addition(lab: Lab) -> None:
    _set_services(lab, FULL)
    run = lab.run("plan", "--services", "nova")
    assert run.returncode == 0, run.output
    assert run.stdout.splitlines()[-1] == "this run adds: nova (new)", run.stdout


def test_adding_nova_changes_nothing_else(lab: Lab) -> None:
    before = {host: _started(lab, host) for host in HOSTS}
    summary = _summary(lab.run("deploy", "--services", "nova", "--json", timeout=3600))
    # common installs the run's packages (nova's) up front, in one
    # transaction per host; every other change is nova's own (ceph: its
    # client entry point, which nova runs for its keyring and libvirt secrets).
    changed = {role: n for role, n in summary["changed"].items() if n}
    assert set(changed) <= {"common", "nova", "ceph"} and "nova" in changed, summary["changed"]
    assert all(summary["hosts"][h]["changed"] > 0 for h in HOSTS), summary["hosts"]
    after = {host: _started(lab, host) for host in HOSTS}
    assert after == before, "a service other than nova restarted"
    services = _openstack(lab, "compute", "service", "list")
    assert {s["Binary"] for s in services} >= {"nova-scheduler", "nova-conductor", "nova-compute"}


def _verify_passes(lab: Lab, *args: str) -> list[str]:
    """osdeploy verify: every check passes; its PASS lines."""
    run = lab.run("verify", *args, timeout=1800)
    assert run.returncode == 0, run.output
    lines = [line for line in run.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert lines and all(line.startswith("PASS") for line in lines), run.stdout
    print(run.stdout)  # each check's time, in the log (-rP)
    return lines


@contextlib.contextmanager
def _cli_server(
    lab: Lab,
    name: str,
    cidr: str,
    marker: str,
    *server_args: str,
    before_boot: Callable[[], Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """network + subnet + server through the openstack CLI, up to the console marker.

    ``before_boot`` runs once the subnet exists. Yields the server as
    created; deletes what it made, whatever happens (a router interface
    ``before_boot`` added too).
    """
    _openstack(lab, "network", "create", f"{name}-net")
    try:
        _openstack(
            lab,
            "subnet",
            "create",
            "--network",
            f"{name}-net",
            "--subnet-range",
            cidr,
            f"{name}-subnet",
        )
        if before_boot is not None:
            before_boot()
        server: dict[str, Any] = _openstack(
            lab,
            "server",
            "create",
            "--image",
            "osdeploy-test",
            "--flavor",
            "osdeploy-verify-tiny",
            "--network",
            f"{name}-net",
            *server_args,
            "--wait",
            name,
        )
        listed = _openstack(lab, "server", "list")
        assert [s["Status"] for s in listed if s["Name"] == name] == ["ACTIVE"], listed
        _wait_console(lab, name, marker)
        yield server
    finally:
        cli = [str(BIN / "openstack"), "--os-cloud", "osdeploy"]
        lab.run_raw([*cli, "server", "delete", "--wait", name])
        for router in _openstack(lab, "router", "list") if before_boot is not None else []:
            lab.run_raw([*cli, "router", "remove", "subnet", router["ID"], f"{name}-subnet"])
        lab.run_raw([*cli, "network", "delete", f"{name}-net"])


def _ssh_guest(key: Any, address: str, command: str, timeout: float = 180) -> str:
    """Run ``command`` as root in the guest at a floating IP, from this machine."""
    argv = [
        *("ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"),
        *("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"),
        *("-o", "LogLevel=ERROR", f"root@{address}", command),
    ]
    deadline = time.monotonic() + timeout
    while True:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if run.returncode == 0:
            return run.stdout
        assert time.monotonic() < deadline, f"ssh root@{address}: {run.stderr[-500:]}"
        time.sleep(5)


#: The guest's shell: sha256 of 8 MiB of the disk at an offset in MiB, read
#: past the guest's page cache (its data must come from Ceph).
_READ = (
    "sync; echo 3 > /proc/sys/vm/drop_caches; "
    "dd if=/dev/{disk} bs=1M skip={at} count=8 2>/dev/null | sha256sum"
)
_WRITE = "dd if=/dev/urandom of=/dev/{disk} bs=1M seek={at} count=8 conv=fsync 2>/dev/null"


def _changed(summary: dict[str, Any]) -> dict[str, int]:
    return {host: counts["changed"] for host, counts in summary["hosts"].items()}


def test_second_deploy_changes_nothing_while_verify_runs(lab: Lab) -> None:
    # The last run deployed nova alone: this one, with every service, runs
    # every step of every role on every host (no host is converged for
    # these inputs yet) and changes nothing, while verify puts servers and
    # volumes on the cloud and every check passes: a re-run on a cloud in
    # use restarts nothing and disturbs nothing that runs on it. (Not the
    # check that stops a storage host's Swift servers: the deploy would
    # start them again. It runs in the verify after the restart.)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        deploy = pool.submit(lab.run, "deploy", "--json", timeout=1800)
        lines = _verify_passes(lab, "--skip", "swift_storage_host_down")
        summary = _summary(deploy.result())
    assert summary["converged"] == [], summary["converged"]
    assert _changed(summary) == dict.fromkeys(HOSTS, 0)
    for check in (
        "glance_image_roundtrip",
        "glance_metadefs",
        "neutron_agents",
        "nova_hypervisors",
        "compute_servers",
        "compute_cross_host_ping",
        "compute_floating_ip",
        "compute_live_migration",
        "compute_lifecycle",
        "horizon_browser_pages",
        "horizon_browser_launch",
        "gnocchi_api",
        "telemetry_instance",
        "telemetry_volume",
        "telemetry_objects",
        "telemetry_usage",
    ):
        assert any(f" {check} " in line for line in lines), check
    # The browser steps left one screenshot each, named by step.
    shots = sorted(p.name for p in (lab.dir / "logs" / "verify-horizon").glob("*.png"))
    for step in ("login-page", "overview", "instances", "launched-active", "wrong-password"):
        assert any(name.endswith(f"-{step}.png") for name in shots), (step, shots)


def test_usage_bills_what_verify_metered(lab: Lab) -> None:
    # The verify above made (and removed) the demo project's osdeploy-meter
    # server, volume, image and object: they lived in the last hour, so the
    # billing table has them, from Gnocchi, and the openstack client reads
    # the same measures.
    run = lab.run("usage", "--project", "demo", "--since", "1h", timeout=300)
    assert run.returncode == 0, run.output
    print(run.stdout)
    rows = {line.split()[2]: line for line in run.stdout.splitlines() if "osdeploy-meter" in line}
    assert {"instance", "image", "volume"} <= set(rows), run.stdout
    assert any(line.lstrip().startswith("total") for line in run.stdout.splitlines()), run.stdout
    instances = _openstack(lab, "metric", "resource", "list", "--type", "instance")
    metered = [r for r in instances if r.get("display_name") == "osdeploy-meter-server"]
    assert metered, instances
    cpu = _openstack(lab, "metric", "measures", "show", "cpu", "--resource-id", metered[-1]["id"])
    assert cpu and all(point["value"] >= 0 for point in cpu), cpu
    nosuch = lab.run("usage", "--project", "osdeploy-nosuch", "--since", "1h", timeout=300)
    assert nosuch.returncode == 2 and "no such project" in nosuch.output, nosuch.output


def test_third_deploy_leaves_every_converged_host_out(lab: Lab) -> None:
    summary = _summary(lab.run("deploy", "--json", timeout=1800))
    assert summary["converged"] == sorted(HOSTS), summary
    assert _changed(summary) == dict.fromkeys(HOSTS, 0)
    # Only the probe ran: no service role, on no host.
    assert not set(summary["roles"]) & {"common", "keystone", "nova", "neutron"}, summary["roles"]
    print(f"no-op re-run with every host converged: {summary['total_seconds']} s")


#: The file edited by hand on cmp2, and its sha256sum line from before
#: (the check mode test drifts, the next one repairs).
_DRIFTED_CONF = "/etc/nova/nova.conf"
_DRIFT: dict[str, str] = {}


def _newest_log(lab: Lab, suffix: str = ".log") -> Path:
    """The newest deploy's log (or, with suffix ".events.jsonl", its events)."""
    return sorted((lab.dir / "logs").glob(f"deploy-*{suffix}"))[-1]


def _changed_tasks(lab: Lab) -> dict[str, set[str]]:
    """Per host, the tasks (and handlers) the newest deploy reported changed."""
    changed: dict[str, set[str]] = {}
    for event in load_events(_newest_log(lab, ".events.jsonl")):
        if event["event"] == "runner_changed":
            changed.setdefault(event["host"], set()).add(f"{event['role']}: {event['task']}")
    return changed


def test_check_and_diff_mode_sees_drift_and_leaves_it(lab: Lab) -> None:
    # Drift by hand on both computes, then -C -D with every step on every
    # host (--recheck): on ctl1 nothing would change; on the computes only
    # what the drift calls for (nova's config and its restart on cmp2,
    # chrony started on cmp1), and nothing is done (the next test finds the
    # drift still there). nova.conf holds passwords: the test reads its
    # checksum only, and -D prints no diff of it though there is one (the
    # secrets test looks at this run's output too).
    original = lab.run("lab", "ssh", "cmp2", "sudo", "sha256sum", _DRIFTED_CONF).stdout
    assert _DRIFTED_CONF in original
    _DRIFT["original"] = original
    edit = f"echo '# by hand' | sudo tee -a {_DRIFTED_CONF} >/dev/null"
    assert lab.run("lab", "ssh", "cmp2", edit).returncode == 0
    assert lab.run("lab", "ssh", "cmp1", "sudo systemctl stop chrony").returncode == 0
    run = lab.run("deploy", "-C", "-D", "--recheck", "--json", "--skip-precheck", timeout=1800)
    summary = _summary(run)
    assert summary["converged"] == []
    assert _changed(summary) == {"ctl1": 0, "cmp1": 1, "cmp2": 2}, _changed(summary)
    assert _changed_tasks(lab) == {
        "cmp1": {"common: Start and enable chrony"},
        "cmp2": {"openstack_service: Write /etc/nova/nova.conf", "nova: Restart nova-compute"},
    }
    log = _newest_log(lab).read_text()
    assert "# by hand" not in log and "# by hand" not in run.output


def test_a_host_changed_by_hand_runs_every_step_and_is_repaired(lab: Lab) -> None:
    # The drift the check mode run saw and left: the probe sees it too,
    # ctl1 stays converged and is left out.
    summary = _summary(lab.run("deploy", "--json", timeout=1800))
    assert summary["converged"] == ["ctl1"], summary["converged"]
    changed = _changed(summary)
    assert changed["ctl1"] == 0 and changed["cmp1"] > 0 and changed["cmp2"] > 0, changed
    repaired = lab.run("lab", "ssh", "cmp2", "sudo", "sha256sum", _DRIFTED_CONF).stdout
    assert repaired == _DRIFT["original"]
    assert lab.run("lab", "ssh", "cmp1", "systemctl is-active chrony").stdout.strip() == "active"
    log = _newest_log(lab).read_text()
    assert "cmp2 runs every step: /etc/nova/nova.conf changed" in log
    assert "cmp1 runs every step: chrony.service not running" in log


def test_no_secret_in_logs_or_console(lab: Lab) -> None:
    passwords = yaml.safe_load((lab.dir / "passwords.yml").read_text())
    assert passwords, "passwords.yml is empty"
    logs = sorted((lab.dir / "logs").glob("*.log"))
    assert logs, "the runner wrote no log"
    texts = [log.read_text(errors="replace") for log in logs]
    texts += [run.output for run in lab.runs]
    for name, secret in passwords.items():
        if name.endswith(IDENTIFIER_SUFFIXES):
            continue  # an fsid or a libvirt secret's UUID: identifiers, not secrets
        for text in texts:
            assert str(secret) not in text, f"value of {name} leaked"


# -- a restart of every host, as after a reboot of the machine ------------------------


def _guest_disk(key: Any, address: str, volume_id: str) -> str:
    """The guest's name for a volume's disk, found by its serial with
    verify's own guest script."""
    found = parse_disk_line(_ssh_guest(key, address, guest_disk_script(volume_id, write=False)))
    assert found, f"no disk with the serial of volume {volume_id} in the guest"
    return found[0]


def test_a_volume_outlives_a_storage_host_down_and_a_restart_of_every_host(lab: Lab) -> None:
    # The README's tour: a server with a key pair and a floating IP, a Cinder
    # volume added to it, lsblk over ssh from the machine that runs the lab
    # (the lab routes the external network here). Then a storage host (cmp2,
    # not the server's) goes down: the volume stays readable and writable,
    # a new volume can be made. Then every host restarts at once, cmp2 back
    # with them, as after a reboot of the machine: verify passes again (Ceph
    # HEALTH_OK, every OSD up, every PG active+clean: cmp2's OSD caught up
    # with the writes it missed), and the same server runs again
    # (nova-compute starts it), answers ping and ssh at its floating IP from
    # here, with the volume attached and its data, both writes, unchanged.
    key = lab.dir / "e2e-key"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    cli = [str(BIN / "openstack"), "--os-cloud", "osdeploy"]
    _openstack(lab, "router", "create", "--external-gateway", "public", "e2e-vol-router")
    _openstack(lab, "security", "group", "create", "e2e-vol-sg")
    _openstack(lab, "keypair", "create", "--public-key", f"{key}.pub", "e2e-vol-key")
    fip = None
    try:
        for rule in (("--protocol", "icmp"), ("--protocol", "tcp", "--dst-port", "22")):
            _openstack(lab, "security", "group", "rule", "create", *rule, "e2e-vol-sg")
        with _cli_server(
            lab,
            "e2e-vol",
            "192.168.87.0/24",
            "OSDEPLOY-SSHD",
            *("--security-group", "e2e-vol-sg", "--key-name", "e2e-vol-key"),
            *("--availability-zone", "nova:cmp1"),
            before_boot=lambda: _cli(
                lab, "router", "add", "subnet", "e2e-vol-router", "e2e-vol-subnet"
            ),
        ):
            volume = _openstack(lab, "volume", "create", "--size", "1", "e2e-vol-disk")
            fip = _openstack(lab, "floating", "ip", "create", "public")["floating_ip_address"]
            _cli(lab, "server", "add", "floating", "ip", "e2e-vol", fip)
            before = _ssh_guest(key, fip, "lsblk -dn -o NAME,SIZE")
            deadline = time.monotonic() + 120
            while _openstack(lab, "volume", "show", volume["id"])["status"] != "available":
                assert time.monotonic() < deadline, "volume never became available"
                time.sleep(3)
            _cli(lab, "server", "add", "volume", "e2e-vol", "e2e-vol-disk")
            deadline = time.monotonic() + 120
            while True:
                after = _ssh_guest(key, fip, "lsblk -dn -o NAME,SIZE")
                new = set(after.splitlines()) - set(before.splitlines())
                if new:
                    break
                assert time.monotonic() < deadline, f"no new disk in lsblk: {after}"
                time.sleep(3)
            assert [line.split()[1] for line in new] == ["1G"], after
            disk = next(iter(new)).split()[0]
            assert _guest_disk(key, fip, volume["id"]) == disk

            def written(at: int) -> str:
                return _ssh_guest(key, fip, _WRITE.format(disk=disk, at=at) + "; " + read(at))

            def read(at: int) -> str:
                return _READ.format(disk=disk, at=at)

            first = written(0).split()[0]
            _openstack(lab, "container", "create", "e2e-objects")
            _put_object(lab, "before", b"stored with every storage host up")
            stop = lab.run("lab", "stop", "cmp2", timeout=300)
            assert stop.returncode == 0, stop.output
            try:
                # Reads and writes wait for Ceph to mark cmp2's OSD down.
                assert _ssh_guest(key, fip, read(0), timeout=300).split()[0] == first
                second = written(8).split()[0]
                # Swift goes on with two of its three copies (cmp2's is missed).
                assert _get_object(lab, "before") == b"stored with every storage host up"
                _put_object(lab, "during", b"stored with cmp2 down")
                spare = _openstack(lab, "volume", "create", "--size", "1", "e2e-vol-degraded")
                deadline = time.monotonic() + 180
                while _openstack(lab, "volume", "show", spare["id"])["status"] != "available":
                    assert time.monotonic() < deadline, "no new volume with a storage host down"
                    time.sleep(3)
                _cli(lab, "volume", "delete", spare["id"])
            finally:
                # Every host at once; cmp2 starts with them.
                restart = lab.run("lab", "restart", timeout=900)
                restarted = time.monotonic()
                assert restart.returncode == 0, restart.output
            _verify_passes(lab)
            # No unit failed on any host: a boot starts only what is set up
            # to run (the lab image masks nvme-cli's NVMe-oF unit).
            for host in HOSTS:
                failed = lab.run("lab", "ssh", host, "systemctl --failed --no-legend --plain")
                assert failed.returncode == 0 and not failed.stdout.strip(), (host, failed.output)
            # Its qemu ended with the host; nova-compute started it again
            # (resume_guests_state_on_host_boot), the volume still attached.
            shown = _openstack(lab, "server", "show", "e2e-vol")
            assert shown["status"] == "ACTIVE", shown
            # power_state 1: running (the JSON output keeps nova's number).
            assert shown["OS-EXT-STS:power_state"] in (1, "Running"), shown
            ping = ["ping", "-c", "2", "-W", "2", fip]
            # Counted from the restart, not from verify's end: the guest
            # boots again with its host (nova-compute starts it), however
            # long verify takes. It had verify's 205 s and 120 s more when
            # verify ran one check at a time; now verify takes ~130 s.
            deadline = restarted + 360
            while subprocess.run(ping, capture_output=True, check=False).returncode != 0:
                assert time.monotonic() < deadline, f"{fip} does not answer ping after the restart"
                time.sleep(5)
            disk = _guest_disk(key, fip, volume["id"])
            sums = [_ssh_guest(key, fip, read(at)).split()[0] for at in (0, 8)]
            assert sums == [first, second], "the volume's data changed across the restart"
            assert _get_object(lab, "during") == b"stored with cmp2 down"
            _cli(lab, "server", "remove", "volume", "e2e-vol", "e2e-vol-disk")
    finally:
        if fip:
            lab.run_raw([*cli, "floating", "ip", "delete", fip])
        lab.run_raw([*cli, "volume", "delete", "e2e-vol-disk"])
        lab.run_raw([*cli, "keypair", "delete", "e2e-vol-key"])
        lab.run_raw([*cli, "router", "delete", "e2e-vol-router"])
        lab.run_raw([*cli, "security", "group", "delete", "e2e-vol-sg"])
        lab.run_raw([*cli, "container", "delete", "--recursive", "e2e-objects"])


def test_a_deploy_after_the_restart_leaves_every_host_out(lab: Lab) -> None:
    # A restart changes nothing a deploy would: every host is still as the
    # last run left it (no false drift from the boot), and nothing changes.
    summary = _summary(lab.run("deploy", "--json", timeout=1800))
    assert summary["converged"] == sorted(HOSTS), summary["converged"]
    assert _changed(summary) == dict.fromkeys(HOSTS, 0)


# -- scale out ----------------------------------------------------------------------


def test_fourth_host_joins_as_compute_and_storage(lab: Lab) -> None:
    # cmp3 comes with the compute and storage roles and is deployed alone
    # (-l cmp3): nova-compute, a Ceph OSD and a Swift device. The rings,
    # built on ctl1, reach every Swift host (the same bytes on all four)
    # and hold cmp3's device; an object stored before reads back equal all
    # the while.
    _openstack(lab, "container", "create", "e2e-objects")
    _put_object(lab, "kept", b"stored before cmp3 came")
    up = lab.run("lab", "up", "--add", "cmp3:compute,storage", timeout=600)
    assert up.returncode == 0, up.output
    plan = lab.run("plan").stdout.splitlines()[-1]
    assert "nova (adds cmp3)" in plan and "swift (adds cmp3)" in plan, plan
    read = _object_reader(lab, "e2e-objects", "kept")
    reads: list[bool | str] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        deploy = pool.submit(lab.run, "deploy", "-l", "cmp3", "--json", timeout=1800)
        while not deploy.done():
            try:
                reads.append(read() == b"stored before cmp3 came")
            except Exception as exc:  # every failed read is reported
                reads.append(repr(exc))
            time.sleep(2)
        summary = _summary(deploy.result())
    assert reads and all(r is True for r in reads), reads
    assert summary["hosts"]["cmp3"]["changed"] > 0
    hypervisors = _openstack(lab, "hypervisor", "list")
    assert any(h["Hypervisor Hostname"].split(".")[0] == "cmp3" for h in hypervisors), hypervisors
    rings = "cd /etc/swift && sudo md5sum account.ring.gz container.ring.gz object.ring.gz"
    sums = {host: lab.run("lab", "ssh", host, rings).stdout for host in (*HOSTS, "cmp3")}
    assert len(set(sums.values())) == 1, sums
    builder = lab.run("lab", "ssh", "ctl1", "sudo swift-ring-builder /etc/swift/object.builder")
    assert "4 zones, 4 devices" in builder.stdout, builder.output
    _cli(lab, "container", "delete", "--recursive", "e2e-objects")


def test_a_server_lands_on_the_new_host(lab: Lab) -> None:
    with _cli_server(
        lab,
        "e2e-cmp3",
        "192.168.89.0/24",
        "OSDEPLOY-TESTIMAGE-UP",
        "--availability-zone",
        "nova:cmp3",
    ) as server:
        assert server["OS-EXT-SRV-ATTR:host"] == "cmp3", server


def test_validate_error_touches_no_host(lab: Lab) -> None:
    config = lab.dir / "osdeploy.yml"
    good = config.read_text()
    try:
        config.write_text(good.replace("services:", "services:\n- nosuchservice", 1))
        before = sorted((lab.dir / "logs").glob("*.log"))
        run = lab.run("deploy")
        assert run.returncode == 2, run.output
        assert "nosuchservice" in run.stderr
        assert sorted((lab.dir / "logs").glob("*.log")) == before
    finally:
        config.write_text(good)


def test_precheck_refuses_hosts_that_share_a_machine_id(lab: Lab) -> None:
    hosts = ("ctl1", "cmp1", "cmp2", "cmp3")
    ids = {h: lab.run("lab", "ssh", h, "cat", "/etc/machine-id").stdout.strip() for h in hosts}
    # Every lab host has its own (the image carries none of its build).
    assert len(set(ids.values())) == len(hosts), ids

    def set_id(value: str) -> Run:
        # One word: ssh hands the command to the remote shell.
        return lab.run("lab", "ssh", "cmp3", f"echo {value} | sudo tee /etc/machine-id >/dev/null")

    try:
        # cmp3 as a clone of ctl1 would be.
        assert set_id(ids["ctl1"]).returncode == 0
        before = sorted((lab.dir / "logs").glob("*.log"))
        run = lab.run("deploy")
        assert run.returncode == 2, run.output
        assert re.search(
            rf"^precheck: cmp3 \(\S+\): machine id {ids['ctl1']} is also ctl1's — ",
            run.stdout,
            re.MULTILINE,
        ), run.output
        assert run.stdout.splitlines()[-1] == "precheck: 3 of 4 hosts ok", run.output
        assert sorted((lab.dir / "logs").glob("*.log")) == before
    finally:
        assert set_id(ids["cmp3"]).returncode == 0
