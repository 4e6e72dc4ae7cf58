"""The e2e suite drives the real `osdeploy` command against real lab hosts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Lab:
    """A deployment directory with its lab hosts; every command is recorded."""

    def __init__(self, deploy_dir: Path) -> None:
        self.dir = deploy_dir
        self.runs: list[Run] = []

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
        env.setdefault("CONTAINERS_CONF", str(ROOT / "lab" / "containers.conf"))
        env["OS_CLIENT_CONFIG_FILE"] = str(self.dir / "clouds.yaml")
        return env

    def run(self, *args: str, timeout: float = 1800) -> Run:
        argv = [str(BIN / "osdeploy"), "--dir", str(self.dir), *args]
        return self.run_raw(argv, timeout=timeout)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start an osdeploy command without waiting for it (output discarded)."""
        argv = [str(BIN / "osdeploy"), "--dir", str(self.dir), *args]
        return subprocess.Popen(
            argv, env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
        )

    def run_raw(self, argv: list[str], timeout: float = 300) -> Run:
        proc = subprocess.run(
            argv, env=self.env(), capture_output=True, text=True, timeout=timeout, check=False
        )
        result = Run(argv, proc.returncode, proc.stdout, proc.stderr)
        self.runs.append(result)
        return result


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    deploy_dir = ROOT / ".lab" / "e2e"
    lab = Lab(deploy_dir)
    if deploy_dir.exists():
        lab.run("lab", "down")
        shutil.rmtree(deploy_dir)
    # The default lab: ctl1 (control, network), cmp1 and cmp2 (compute).
    up = lab.run("lab", "up", timeout=900)
    assert up.returncode == 0, up.output
    yield lab
    if not os.environ.get("OSDEPLOY_KEEP_LAB"):
        lab.run("lab", "down")
