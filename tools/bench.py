"""`make bench`: what a deploy costs, measured against its floor in one run.

Figures, all from the same run on the same machine (compare ratios, not
absolute seconds: the machines are noisy):
- cold deploy of the default three-host lab cloud (ctl1 control+network,
  cmp1 and cmp2 compute; keystone, glance, placement, neutron/OVN, nova);
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
  `osdeploy verify` (the verify itself, servers and all, included).
Results are printed and written to .bench/results.json.
"""

from __future__ import annotations

import json
import os
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

    samplers = {h: MemorySampler(f"osdeploy-cloud-{h}") for h in ("ctl1", "cmp1")}
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
    }
    (BENCH / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    count = sum(len(p) for p in added.values())
    noop_ok = noop < NOOP_TARGET_S and set(results["noop_rerun_changed"].values()) == {0}
    print(f"cold three-host deploy (keystone ... nova):          {cold:7.1f} s")
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
    for sub in (cloud_dir, apt_dir):
        osdeploy(sub, "lab", "down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
