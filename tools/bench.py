"""`make bench`: what a deploy costs, measured against its floor in one run.

Figures, all from the same run on the same machine (compare ratios, not
absolute seconds: the machines are noisy):
- cold deploy of the foundation slice onto a fresh lab host;
- no-op re-run (nothing changed) and its changed count;
- a plain `apt-get install` of the very packages the deploy installed, on
  another fresh lab host, services held back by policy-rc.d: the floor;
- the deployed lab host's peak memory (working set: usage minus inactive
  page cache) sampled during the deploy, and the kernel's max usage figure.
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

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BENCH = ROOT / ".bench"
ENV = {
    **os.environ,
    "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
    "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(ROOT / "lab" / "containers.conf")),
}


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


def summary_changed(proc: subprocess.CompletedProcess[str]) -> dict[str, int]:
    data = json.loads(proc.stdout[proc.stdout.index("{") :])
    return {host: counts["changed"] for host, counts in data["hosts"].items()}


def main() -> int:
    if BENCH.exists():
        for sub in ("slice", "apt"):
            if (BENCH / sub / "osdeploy.yml").exists():
                osdeploy(BENCH / sub, "lab", "down")
        shutil.rmtree(BENCH)
    slice_dir, apt_dir = BENCH / "slice", BENCH / "apt"
    osdeploy(slice_dir, "lab", "up", "--hosts", "ctl1:control,network")
    osdeploy(apt_dir, "lab", "up", "--hosts", "apt1:control")
    slice_ctr, apt_ctr = "osdeploy-slice-ctl1", "osdeploy-apt-apt1"

    sampler = MemorySampler(slice_ctr)
    sampler.start()
    cold, _ = timed(slice_dir, "deploy", "--json")
    sampler.stop.set()
    sampler.join()
    noop, rerun = timed(slice_dir, "deploy", "--json")

    # The floor: the packages the deploy added, installed plainly.
    manual = "apt-mark showmanual | sort"
    added = sorted(
        set(host_exec(slice_ctr, manual).split()) - set(host_exec(apt_ctr, manual).split())
    )
    started = time.monotonic()
    host_exec(
        apt_ctr,
        "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d"
        " && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
        + " ".join(added)
        + " >/dev/null && rm /usr/sbin/policy-rc.d",
    )
    raw_apt = time.monotonic() - started

    results = {
        "cold_deploy_s": round(cold, 1),
        "noop_rerun_s": round(noop, 1),
        "noop_rerun_changed": summary_changed(rerun),
        "raw_apt_install_s": round(raw_apt, 1),
        "cold_over_raw_apt": round(cold / raw_apt, 2),
        "packages": added,
        "peak_working_set_mib": round(sampler.peak_working_set / 2**20),
        "kernel_max_usage_mib": round(sampler.kernel_peak() / 2**20),
    }
    (BENCH / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"cold deploy (mariadb, rabbitmq, memcached, keystone): {cold:7.1f} s")
    print(
        f"no-op re-run:                                        {noop:7.1f} s  "
        f"changed={results['noop_rerun_changed']}"
    )
    print(f"raw apt-get install of the same {len(added)} packages:        {raw_apt:7.1f} s")
    print(f"cold deploy / raw apt install:                       {cold / raw_apt:7.2f}x")
    print(
        f"lab host peak memory (working set):                  "
        f"{results['peak_working_set_mib']:7d} MiB "
        f"(kernel max usage incl. page cache {results['kernel_max_usage_mib']} MiB)"
    )
    for sub in (slice_dir, apt_dir):
        osdeploy(sub, "lab", "down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
