"""The Molecule stack image: the shared base of the service scenarios, built once.

MariaDB, RabbitMQ, memcached and Keystone (plus the openstack CLI) are
converged once by the scenario roles/common/molecule/stack, the container
is stopped cleanly and committed as ``localhost/osdeploy-molecule-stack:current``.
The scenarios of glance, placement, nova, neutron and openstack_service
start from it (their .env.yml sets MOLECULE_OSDEPLOY_IMAGE) and converge
only common and their own roles on top (the services' address is the same
in every container, so the stack needs nothing): the role under test
converges from nothing, and idempotence runs as always.

The image carries a label with the hash of its recipe: the stack's roles,
the shared Molecule files, the filters and catalog they read, and the host
image it was made from. It is rebuilt only when that hash changes, so a
second ``make molecule`` reuses it and a changed keystone default rebuilds it.

Usage: python tools/molecule_stack.py   (the Makefile's molecule-stack target)
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "localhost/osdeploy-molecule-stack:current"
HOST_IMAGE = "localhost/osdeploy-host:trixie"
CONTAINER = "osd-molecule-stack"
SCENARIO_DIR = ROOT / "roles" / "common"
ENV_FILE = "molecule/stack/.env.yml"
LABEL = "osdeploy.recipe"
#: What the image is made of: the stack's roles (their own scenarios' tests
#: left out) and everything Molecule and the roles read besides.
RECIPE_ROLES = ("common", "mariadb", "rabbitmq", "memcached", "keystone", "openstack_service")
RECIPE_PATHS = (
    ".config/molecule",
    "plugins",
    "installer/osdeploy/catalog.yml",
    "installer/osdeploy/catalog.py",
    "installer/osdeploy/wiring.py",
)


def recipe_files() -> list[Path]:
    """Every file the stack image is made from, in a stable order."""
    files: list[Path] = []
    for role in RECIPE_ROLES:
        for path in sorted((ROOT / "roles" / role).rglob("*")):
            rel = path.relative_to(ROOT / "roles" / role)
            if rel.parts[:2] == ("molecule", "default") or "__pycache__" in rel.parts:
                continue
            if path.is_file():
                files.append(path)
    for name in RECIPE_PATHS:
        base = ROOT / name
        candidates = sorted(base.rglob("*")) if base.is_dir() else [base]
        files += [p for p in candidates if p.is_file() and "__pycache__" not in p.parts]
    return files


def podman(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        sys.exit(f"molecule-stack: podman {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def recipe_hash() -> str:
    digest = hashlib.sha256(podman("image", "inspect", "--format", "{{.Id}}", HOST_IMAGE).encode())
    for path in recipe_files():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def molecule(*args: str) -> None:
    argv = ["molecule", "--env-file", ENV_FILE, *args, "--scenario-name", "stack"]
    if subprocess.run(argv, cwd=SCENARIO_DIR, check=False).returncode != 0:
        subprocess.run(["molecule", "--env-file", ENV_FILE, "destroy", "-s", "stack"],
                       cwd=SCENARIO_DIR, check=False)  # fmt: skip
        sys.exit(f"molecule-stack: `molecule {' '.join(args)}` failed; see the output above")


def main() -> int:
    # The host image first (built only when its own recipe changed).
    if subprocess.run(["osdeploy", "lab", "image"], check=False).returncode != 0:
        sys.exit("molecule-stack: `osdeploy lab image` failed; see the output above")
    wanted = recipe_hash()
    label = '{{ index .Config.Labels "' + LABEL + '" }}'
    if podman("image", "inspect", "--format", label, IMAGE, check=False) == wanted:
        print(f"molecule-stack: {IMAGE} is current (recipe {wanted})")
        return 0
    print(f"molecule-stack: building {IMAGE} (recipe {wanted})", flush=True)
    started = time.monotonic()
    molecule("destroy")
    molecule("converge")
    # A clean shutdown first (systemd in the container stops MariaDB and the
    # rest), so the committed files are consistent.
    podman("stop", "--time", "120", CONTAINER)
    podman("commit", "--quiet", "--change", f"LABEL {LABEL}={wanted}", CONTAINER, IMAGE)
    molecule("destroy")
    print(f"molecule-stack: {IMAGE} built in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
