"""`make bench`: what a deploy costs, measured against its floor in one run.

Figures, all from the same run on the same machine (compare ratios, not
absolute seconds: the machines are noisy):
- cold deploy of the default three-host lab cloud (ctl1 control+network,
  cmp1 and cmp2 compute, all three storage; Ceph, Keystone, Glance,
  Placement, Neutron/OVN, Nova, Cinder, Swift);
- no-op re-run (nothing changed) and its changed counts, then the same with
  `--recheck` (every step on every host, none left out as converged);
- adding one compute host: `lab up --add cmp3:compute`, then
  `deploy -l cmp3` (only the deploy is timed);
- the floor: a plain `apt-get install` of the very packages the deploy
  installed, on three fresh lab hosts at once (a control and two computes,
  as the deploy installs its three hosts in parallel: on two cores a third
  install beside two costs about half as much again, so a floor of two
  hosts would leave a third of the deploy's package work out), services
  held back by policy-rc.d, Recommends left out as the deploy leaves them
  out;
- peak memory (working set: usage minus inactive page cache) of ctl1 and
  cmp1, sampled during the cold deploy, and the kernel's max usage figure;
- a restart of every host (`lab restart`, as a reboot would) to a passing
  `osdeploy verify` (the verify itself, servers and all, included);
- Swift through its proxy (openstacksdk, one keep-alive session): PUT then
  GET of SMALL_OBJECTS objects of 4 KiB (objects/s) and of one 64 MiB
  object LARGE_ROUNDS times (MB/s), beside the same writes (each fsynced, as
  Swift fsyncs each object) and reads as files on cmp1's own filesystem,
  and the ratios proxy over file (reads come from page cache on both sides).
Results are printed and written to .bench/results.json.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BENCH = ROOT / ".bench"
ENV = {
    **os.environ,
    "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
    "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(ROOT / "lab" / "containers.conf")),
}


#: The speed targets (issue 9): printed beside the figures, not enforced.
NOOP_TARGET_S = 60
ADD_HOST_TARGET_S = 150
COLD_RATIO_TARGET = 2.5
#: Each host of the cold deploy and the fresh host its packages go to for the floor.
FLOOR_HOSTS = {"ctl1": "apt1", "cmp1": "apt2", "cmp2": "apt3"}


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def osdeploy(deploy_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(BIN / "osdeploy"), "--dir", str(deploy_dir), *args]
    proc = subprocess.run(argv, env=ENV, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"bench: `{' '.join(argv[1:])}` failed:\n{proc.stdout[-3000:]}{proc.stderr}")
    return proc


def timed(deploy_dir: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    proc = osdeploy(deploy_dir, *args)
    return time.monotonic() - started, proc


def podman(*args: str) -> str:
    return subprocess.run(
        ["podman", *args], env=ENV, capture_output=True, text=True, check=True
    ).stdout


def host_exec(container: str, script: str) -> str:
    return podman("exec", container, "sh", "-c", script)


class MemorySampler(threading.Thread):
    """Samples a container's cgroup memory once a second (cgroup v1 or v2)."""

    def __init__(self, container: str) -> None:
        super().__init__(daemon=True)
        cgroup = podman("inspect", "--format", "{{.State.CgroupPath}}", container).strip()
        v1 = Path("/sys/fs/cgroup/memory") / cgroup.lstrip("/")
        self.dir = v1 if v1.exists() else Path("/sys/fs/cgroup") / cgroup.lstrip("/")
        self.peak_working_set = 0
        self.stop = threading.Event()

    def working_set(self) -> int:
        stat = dict(
            (line.split()[0], int(line.split()[1]))
            for line in (self.dir / "memory.stat").read_text().splitlines()
        )
        if (self.dir / "memory.usage_in_bytes").exists():
            usage = int((self.dir / "memory.usage_in_bytes").read_text())
            return usage - stat.get("total_inactive_file", 0)
        usage = int((self.dir / "memory.current").read_text())
        return usage - stat.get("inactive_file", 0)

    def kernel_peak(self) -> int:
        for name in ("memory.max_usage_in_bytes", "memory.peak"):
            if (self.dir / name).exists():
                return int((self.dir / name).read_text())
        return 0

    def run(self) -> None:
        while not self.stop.wait(1.0):
            try:
                self.peak_working_set = max(self.peak_working_set, self.working_set())
            except OSError:
                return


def summary_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(proc.stdout[proc.stdout.index("{") :])
    return data


def summary_changed(proc: subprocess.CompletedProcess[str]) -> dict[str, int]:
    data = summary_json(proc)
    return {host: counts["changed"] for host, counts in data["hosts"].items()}


def raw_install(container: str, packages: list[str]) -> threading.Thread:
    """Install packages plainly in a thread (services held back), the floor of a deploy."""
    script = (
        "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d"
        " && apt-get update -qq && DEBIAN_FRONTEND=noninteractive"
        " apt-get install -y -qq --no-install-recommends "
        + " ".join(packages)
        + " >/dev/null && rm /usr/sbin/policy-rc.d"
    )
    thread = threading.Thread(target=host_exec, args=(container, script))
    thread.start()
    return thread


#: MiB one sequential write of the volume bench puts down.
WRITE_MIB = 256


def openstack(cloud_dir: Path, *args: str) -> Any:
    """The openstack CLI on the bench cloud; its JSON output when it prints any."""
    argv = [str(BIN / "openstack"), "--os-cloud", "osdeploy", *args]
    env = {**ENV, "OS_CLIENT_CONFIG_FILE": str(cloud_dir / "clouds.yaml")}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"bench: `openstack {' '.join(args)}` failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout) if proc.stdout.strip().startswith(("{", "[")) else None


def until(what: str, probe: Any, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            sys.exit(f"bench: {what} (waited {timeout:.0f} s)")
        time.sleep(2)
    return value


def guest(key: Path, address: str, command: str) -> str | None:
    argv = [
        *("ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"),
        *("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"),
        *("-o", "LogLevel=ERROR", f"root@{address}", command),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    return proc.stdout if proc.returncode == 0 else None


#: The object bench: SMALL_OBJECTS objects of 4 KiB, and one object of 64 MiB
#: (a single PUT, well below Swift's 5 GiB: no segments) put and got LARGE_ROUNDS times.
SMALL_OBJECTS, SMALL_BYTES = 200, 4 * 1024
LARGE_ROUNDS, LARGE_BYTES = 2, 64 * 2**20
OBJECT_CONTAINER = "bench-objects"
#: Its phases in order: the name in results.json, its unit and what it counts.
OBJECT_PHASES = (
    ("put_4k", "per_s", SMALL_OBJECTS),
    ("get_4k", "per_s", SMALL_OBJECTS),
    ("put_64m", "mbps", LARGE_ROUNDS * LARGE_BYTES / 1e6),
    ("get_64m", "mbps", LARGE_ROUNDS * LARGE_BYTES / 1e6),
)
#: The same phases as files on a storage host, each write fsynced (argv: directory,
#: SMALL_OBJECTS, SMALL_BYTES, LARGE_ROUNDS, LARGE_BYTES); prints each phase's seconds.
FILE_FLOOR = """
import os, sys, time
where, count, small, rounds, large = sys.argv[1], *map(int, sys.argv[2:])
data = {f"{where}/small-{i}": os.urandom(small) for i in range(count)}
data[f"{where}/large"] = os.urandom(large)
smalls, larges = list(data)[:count], [f"{where}/large"] * rounds
def put(path):
    with open(path, "wb", buffering=0) as f:
        f.write(data[path])
        os.fsync(f.fileno())
def get(path):
    with open(path, "rb") as f:
        return f.read()
for step, paths in ((put, smalls), (get, smalls), (put, larges), (get, larges)):
    started = time.monotonic()
    for path in paths:
        step(path)
    print(time.monotonic() - started)
"""


def object_bench(cloud_dir: Path, host_container: str = "osdeploy-cloud-cmp1") -> dict[str, float]:
    """OBJECT_PHASES through the Swift proxy, in-process with openstacksdk (one
    connection, so one keep-alive session as a real client has), then as files
    in /var/lib of host_container (its own filesystem, as /srv/node is), and
    the ratios proxy over file. On another lab, from the repository:
    `.venv/bin/python -c 'import sys; sys.path[:0] = ["tools"]; from bench import *;
    print(object_bench(Path("<deploy dir>"), "<prefix>-cmp1"))'`."""
    import openstack  # slow import: only this part needs the SDK in-process

    from osdeploy.verify.object_storage import remove_containers

    os.environ["OS_CLIENT_CONFIG_FILE"] = str(cloud_dir / "clouds.yaml")
    conn = openstack.connect(cloud="osdeploy")
    store = conn.object_store
    data = {f"small-{i}": os.urandom(SMALL_BYTES) for i in range(SMALL_OBJECTS)}
    data["large"] = os.urandom(LARGE_BYTES)
    smalls, larges = list(data)[:SMALL_OBJECTS], ["large"] * LARGE_ROUNDS

    got: dict[str, bytes] = {}

    def put(name: str) -> None:
        store.upload_object(container=OBJECT_CONTAINER, name=name, data=data[name])

    def get(name: str) -> None:
        got[name] = store.download_object(name, container=OBJECT_CONTAINER)

    store.create_container(name=OBJECT_CONTAINER)  # and the token, before any timing
    seconds = []
    for step, names in ((put, smalls), (get, smalls), (put, larges), (get, larges)):
        started = time.monotonic()
        for name in names:
            step(name)
        seconds.append(time.monotonic() - started)
    if got != data:
        sys.exit("bench: objects read through the Swift proxy are not what was written")

    remove_containers(conn, OBJECT_CONTAINER)  # verify's: objects, then the container

    where = "/var/lib/osdeploy-bench-objects"
    sizes = (SMALL_OBJECTS, SMALL_BYTES, LARGE_ROUNDS, LARGE_BYTES)
    argv = ["python3", "-c", FILE_FLOOR, where, *map(str, sizes)]
    script = f"trap 'rm -rf {where}' EXIT; mkdir -p {where} && {shlex.join(argv)}"
    files = [float(x) for x in host_exec(host_container, script).split()]
    results: dict[str, float] = {}
    for (phase, unit, amount), proxy_s, file_s in zip(OBJECT_PHASES, seconds, files, strict=True):
        results[f"swift_{phase}_{unit}"] = round(amount / proxy_s, 1)
        results[f"host_file_{phase}_{unit}"] = round(amount / file_s, 1)
        results[f"swift_{phase}_over_host_file"] = round(file_s / proxy_s, 3)
    return results


def volume_bench(cloud_dir: Path) -> dict[str, float]:
    """A server on cmp1 reachable over ssh (floating IP), then: the time from
    `volume create` to the new disk seen by the guest (create + attach), and
    a sequential write of WRITE_MIB inside the guest to that RBD volume
    beside the same write to a file on cmp1's own filesystem (MB/s each)."""
    key = BENCH / "bench-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    cli = functools.partial(openstack, cloud_dir)
    cli("network", "create", "bench-net", "-f", "json")
    cli("subnet", "create", "--network", "bench-net", "--subnet-range", "192.168.95.0/24",
        "bench-subnet", "-f", "json")  # fmt: skip
    cli("router", "create", "--external-gateway", "public", "bench-router", "-f", "json")
    cli("router", "add", "subnet", "bench-router", "bench-subnet")
    cli("security", "group", "create", "bench-sg", "-f", "json")
    cli("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
        "bench-sg", "-f", "json")  # fmt: skip
    cli("keypair", "create", "--public-key", f"{key}.pub", "bench-key", "-f", "json")
    cli("server", "create", "--image", "osdeploy-test", "--flavor", "osdeploy-verify-tiny",
        "--network", "bench-net", "--security-group", "bench-sg", "--key-name", "bench-key",
        "--availability-zone", "nova:cmp1", "--wait", "bench-vm", "-f", "json")  # fmt: skip
    fip = cli("floating", "ip", "create", "public", "-f", "json")["floating_ip_address"]
    cli("server", "add", "floating", "ip", "bench-vm", fip)
    disks = "lsblk -dn -o NAME"
    before = set(until("ssh into the bench server", lambda: guest(key, fip, disks)).split())

    started = time.monotonic()
    volume = cli("volume", "create", "--size", "1", "bench-vol", "-f", "json")
    until("volume available", lambda: cli("volume", "show", volume["id"], "-f", "json")["status"]
          == "available")  # fmt: skip
    cli("server", "add", "volume", "bench-vm", "bench-vol")
    new = until("the volume in the guest", lambda: set((guest(key, fip, disks) or "").split())
                - before)  # fmt: skip
    create_attach = time.monotonic() - started

    # Seconds from /proc/uptime around the write, inside the guest.
    write = (
        "a=$(cut -d' ' -f1 /proc/uptime); "
        f"dd if=/dev/zero of={{target}} bs=1M count={WRITE_MIB} conv=fsync 2>/dev/null; "
        "b=$(cut -d' ' -f1 /proc/uptime); echo $a $b"
    )
    out = guest(key, fip, write.format(target=f"/dev/{next(iter(new))}")) or "0 0"
    t0, t1 = (float(x) for x in out.split())
    # A file on cmp1's own filesystem (in the lab host, not the machine's /tmp).
    target = "/var/lib/osdeploy-bench-write"
    host_write = write.format(target=target) + f"; rm -f {target}"
    h0, h1 = (float(x) for x in host_exec("osdeploy-cloud-cmp1", host_write).split())
    guest_mbps, host_mbps = WRITE_MIB * 1.048576 / (t1 - t0), WRITE_MIB * 1.048576 / (h1 - h0)

    cli("server", "delete", "--wait", "bench-vm")
    cli("floating", "ip", "delete", fip)
    until("volume detached", lambda: cli("volume", "show", "bench-vol", "-f", "json")["status"]
          == "available")  # fmt: skip
    cli("volume", "delete", "bench-vol")
    cli("router", "remove", "subnet", "bench-router", "bench-subnet")
    for kind, name in (("router", "bench-router"), ("network", "bench-net"),
                       ("security group", "bench-sg"), ("keypair", "bench-key")):  # fmt: skip
        cli(*kind.split(), "delete", name)
    return {
        "volume_create_attach_s": round(create_attach, 1),
        "guest_rbd_write_mbps": round(guest_mbps, 1),
        "host_file_write_mbps": round(host_mbps, 1),
        "guest_rbd_over_host_file": round(guest_mbps / host_mbps, 3),
    }


def main() -> int:
    cloud_dir, apt_dir = BENCH / "cloud", BENCH / "apt"
    if BENCH.exists():
        for sub in (cloud_dir, apt_dir):
            if (sub / "osdeploy.yml").exists():
                osdeploy(sub, "lab", "down")
        shutil.rmtree(BENCH)
    osdeploy(cloud_dir, "lab", "up")
    fresh_hosts = ("apt1:control,network", "apt2:compute", "apt3:compute")
    osdeploy(apt_dir, "lab", "up", "--hosts", *fresh_hosts)

    samplers = {h: MemorySampler(f"osdeploy-cloud-{h}") for h in ("ctl1", "cmp1", "cmp2")}
    for sampler in samplers.values():
        sampler.start()
    cold, _ = timed(cloud_dir, "deploy", "--json")
    for sampler in samplers.values():
        sampler.stop.set()
        sampler.join()
    noop, rerun = timed(cloud_dir, "deploy", "--json")
    # The same with every step on every host (no host left out as converged).
    recheck, rechecked = timed(cloud_dir, "deploy", "--recheck", "--json")
    osdeploy(cloud_dir, "lab", "up", "--add", "cmp3:compute")
    add_host, added_run = timed(cloud_dir, "deploy", "-l", "cmp3", "--json")

    # Every host restarted at once, until verify passes (it fails the bench if not).
    started = time.monotonic()
    osdeploy(cloud_dir, "lab", "restart")
    restart = time.monotonic() - started
    verify, _ = timed(cloud_dir, "verify")
    restart_to_verified = time.monotonic() - started
    volumes = volume_bench(cloud_dir)
    objects = object_bench(cloud_dir)

    # The floor: the packages the deploy added on each of its three hosts,
    # installed plainly on three fresh hosts at the same time.
    manual = "apt-mark showmanual | sort"
    fresh = set(host_exec("osdeploy-apt-apt1", manual).split())
    added = {
        host: sorted(set(host_exec(f"osdeploy-cloud-{host}", manual).split()) - fresh)
        for host in FLOOR_HOSTS
    }
    started = time.monotonic()
    threads = [
        raw_install(f"osdeploy-apt-{fresh_host}", added[host])
        for host, fresh_host in FLOOR_HOSTS.items()
    ]
    for thread in threads:
        thread.join()
    raw_apt = time.monotonic() - started

    results = {
        "cold_deploy_s": round(cold, 1),
        "noop_rerun_s": round(noop, 1),
        "noop_rerun_changed": summary_changed(rerun),
        "noop_rerun_converged": summary_json(rerun).get("converged", []),
        "noop_recheck_s": round(recheck, 1),
        "noop_recheck_changed": summary_changed(rechecked),
        "add_compute_host_s": round(add_host, 1),
        "add_compute_host_changed": summary_changed(added_run),
        "restart_all_hosts_s": round(restart, 1),
        "restart_to_passing_verify_s": round(restart_to_verified, 1),
        "verify_after_restart_s": round(verify, 1),
        "raw_apt_install_s": round(raw_apt, 1),
        "cold_over_raw_apt": round(cold / raw_apt, 2),
        "packages": added,
        "peak_working_set_mib": {h: round(s.peak_working_set / 2**20) for h, s in samplers.items()},
        "kernel_max_usage_mib": {h: round(s.kernel_peak() / 2**20) for h, s in samplers.items()},
        **volumes,
        **objects,
    }
    (BENCH / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    count = sum(len(p) for p in added.values())
    noop_ok = noop < NOOP_TARGET_S and set(results["noop_rerun_changed"].values()) == {0}
    print(f"cold three-host deploy (ceph, keystone ... swift):   {cold:7.1f} s")
    print(
        f"no-op re-run:                                        {noop:7.1f} s  "
        f"changed={results['noop_rerun_changed']}  "
        f"(target < {NOOP_TARGET_S} s, changed=0: {_met(noop_ok)})"
    )
    print(
        f"no-op re-run, every step (--recheck):                {recheck:7.1f} s  "
        f"changed={results['noop_recheck_changed']}"
    )
    print(
        f"add one compute host (deploy -l cmp3):               {add_host:7.1f} s  "
        f"(target < {ADD_HOST_TARGET_S} s: {_met(add_host < ADD_HOST_TARGET_S)})"
    )
    print(
        f"restart every host to a passing verify:              {restart_to_verified:7.1f} s  "
        f"(restart {restart:.0f} s, verify {verify:.0f} s)"
    )
    print(
        f"raw apt-get install, same packages on {len(FLOOR_HOSTS)} hosts:        "
        f"{raw_apt:7.1f} s  ({count} names)"
    )
    print(
        f"cold deploy / raw apt install:                       {cold / raw_apt:7.2f}x  "
        f"(target <= {COLD_RATIO_TARGET}x: {_met(cold / raw_apt <= COLD_RATIO_TARGET)})"
    )
    print(f"peak memory, working set (MiB):                      {results['peak_working_set_mib']}")
    print(f"kernel max usage incl. page cache (MiB):             {results['kernel_max_usage_mib']}")
    attach, ratio = volumes["volume_create_attach_s"], volumes["guest_rbd_over_host_file"]
    print(f"volume create + attach, to the disk in the guest:    {attach:7.1f} s")
    print(
        f"sequential write {WRITE_MIB} MiB, guest to RBD volume:     "
        f"{volumes['guest_rbd_write_mbps']:7.1f} MB/s  (a file on cmp1: "
        f"{volumes['host_file_write_mbps']:.1f} MB/s, ratio {ratio:.3f})"
    )
    for size, label, unit, shown in (
        ("4k", f"{SMALL_OBJECTS} objects of 4 KiB", "per_s", " /s"),
        ("64m", f"one object of 64 MiB x{LARGE_ROUNDS}", "mbps", " MB/s"),
    ):
        phases = [f"{op}_{size}" for op in ("put", "get")]
        swift = [objects[f"swift_{phase}_{unit}"] for phase in phases]
        files = [objects[f"host_file_{phase}_{unit}"] for phase in phases]
        ratios = [objects[f"swift_{phase}_over_host_file"] for phase in phases]
        print(
            f"{label + ', Swift proxy PUT, GET:':<53}{swift[0]:7.1f}{shown}  {swift[1]:.1f}{shown}"
            f"  (files on cmp1: {files[0]:.1f}, {files[1]:.1f}{shown}; "
            f"ratios {ratios[0]:.3f}, {ratios[1]:.3f})"
        )
    for sub in (cloud_dir, apt_dir):
        osdeploy(sub, "lab", "down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
