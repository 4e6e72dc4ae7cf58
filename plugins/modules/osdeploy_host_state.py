#!/usr/bin/python3
"""Ansible module: has this host stayed as the last successful run left it?

osdeploy's converged-host skip (docs/architecture.md, "Converged hosts"):
after a successful run the last play records, on each host, the run's
inputs fingerprint (a hash of the code, the inventory, the passwords and the
run's options, computed by the runner) beside what the host looked like:
its OS release, CPU count, hostname and addresses, dpkg's database, every
file under /etc (path, size, mtime; what services rewrite by themselves left
out) and the enabled services that ran. The next run with the same inputs
asks this module first, on every host at once: a host whose record matches
in every part is left out of every play, so a re-run with nothing to do
costs one probe per host instead of every role's checks.

A host that does not match runs every step, and its record is removed
first, so that a run cut off on it leaves no record behind. Check mode
removes and writes nothing. ``compare`` and ``etc_listing`` are pure
and unit-tested (tests/unit/test_host_state.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

DOCUMENTATION = r"""
module: osdeploy_host_state
short_description: Record or compare what a successful osdeploy run left on a host
description:
  - C(record) writes the host's state beside the run's fingerprint.
  - C(probe) compares the host with its record; C(converged) says whether
    it matches in every part, C(reason) what differs. A host that does not
    match loses its record (not in check mode).
options:
  fingerprint: {type: str, required: true, description: The run's inputs fingerprint.}
  state: {type: str, required: true, choices: [probe, record], description: What to do.}
  path:
    type: str
    default: /var/lib/osdeploy/converged.json
    description: Where the record is kept.
"""

#: Under /etc, what running services rewrite by themselves: the Open vSwitch
#: database (/etc/openvswitch/conf.db), libvirt's definitions of running
#: guests and their AppArmor profiles; and what a boot or the container
#: engine writes.
ETC_SKIP_DIRS = ("/etc/openvswitch", "/etc/libvirt/qemu", "/etc/apparmor.d/libvirt")
ETC_SKIP_FILES = (
    "/etc/resolv.conf",
    "/etc/hostname",
    "/etc/ld.so.cache",
    "/etc/adjtime",
    # systemd-update-done writes it at the first boot after a package install.
    "/etc/.updated",
)
#: How many changed paths a reason names.
REASON_PATHS = 3


def etc_listing(entries: Iterable[tuple[str, int, float]]) -> dict[str, str]:
    """``{path: "size mtime"}`` of the files under /etc that count, from (path, size, mtime)."""
    return {
        path: f"{size} {mtime:.6f}"
        for path, size, mtime in entries
        if path not in ETC_SKIP_FILES
        and not any(path == d or path.startswith(d + "/") for d in ETC_SKIP_DIRS)
    }


def _walk_etc(top: str = "/etc") -> Iterable[tuple[str, int, float]]:
    device = Path(top).stat().st_dev
    for root, dirs, files in os.walk(top):
        here = Path(root)
        dirs[:] = sorted(
            d for d in dirs if not (here / d).is_symlink() and (here / d).stat().st_dev == device
        )
        for name in files:
            path = here / name
            try:
                st = path.lstat()
            except OSError:
                continue
            if not path.is_symlink():
                yield str(path), st.st_size, st.st_mtime


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def _running_units() -> list[str]:
    """Enabled services that run now; socket-activated ones (they may rest) left out."""
    listed = _run(
        ["systemctl", "list-units", "--type=service", "--state=running", "--no-legend", "--plain"]
    ).split("\n")
    names = [line.split()[0] for line in listed if line.strip()]
    if not names:
        return []
    shown = _run(["systemctl", "show", "-p", "Id,UnitFileState,TriggeredBy", *names])
    units = []
    for block in shown.strip().split("\n\n"):
        values = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if values.get("UnitFileState") == "enabled" and not values.get("TriggeredBy"):
            units.append(values["Id"])
    return sorted(units)


def _addresses() -> list[str]:
    out = _run(["ip", "-4", "-o", "address", "show", "scope", "global"])
    return sorted(line.split()[3] for line in out.splitlines() if len(line.split()) > 3)


def _os_release() -> str:
    values = {}
    with Path("/etc/os-release").open(encoding="utf-8") as handle:
        for line in handle:
            key, _, value = line.strip().partition("=")
            values[key] = value.strip('"')
    return f"{values.get('ID', '?')} {values.get('VERSION_ID', '?')}"


def collect(fingerprint: str) -> dict[str, Any]:
    """This host's state now, as a record."""
    packages = hashlib.sha256(Path("/var/lib/dpkg/status").read_bytes()).hexdigest()
    return {
        "fingerprint": fingerprint,
        "os": _os_release(),
        "cpus": os.cpu_count(),
        "hostname": socket.gethostname(),
        "addresses": _addresses(),
        "packages": packages,
        "etc": etc_listing(_walk_etc()),
        "units": _running_units(),
    }


def compare(old: Mapping[str, Any] | None, now: Mapping[str, Any]) -> str:
    """What differs between the record and now, in words; "" when nothing does.

    Services may have been added since (a package's own), so only a unit of
    the record that no longer runs counts.
    """
    if old is None:
        return "no record of an earlier successful run"
    if old.get("fingerprint") != now["fingerprint"]:
        return "the deployment's inputs changed since the last successful run"
    for key, what in (
        ("os", "the OS release"),
        ("cpus", "the CPU count"),
        ("hostname", "the hostname"),
        ("addresses", "the IPv4 addresses"),
        ("packages", "the installed packages"),
    ):
        if old.get(key) != now[key]:
            return f"{what} changed"
    old_etc: Mapping[str, str] = old.get("etc") or {}
    changed = sorted(
        p for p in set(old_etc) | set(now["etc"]) if old_etc.get(p) != now["etc"].get(p)
    )
    if changed:
        more = f" and {len(changed) - REASON_PATHS} more" if len(changed) > REASON_PATHS else ""
        return f"{', '.join(changed[:REASON_PATHS])}{more} changed"
    stopped = sorted(set(old.get("units") or []) - set(now["units"]))
    if stopped:
        return f"{', '.join(stopped)} not running"
    return ""


def _read(path: str) -> dict[str, Any] | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write(path: str, record: Mapping[str, Any]) -> None:
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = f"{path}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(record, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    Path(temporary).replace(path)


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "fingerprint": {"type": "str", "required": True},
            "state": {"type": "str", "required": True, "choices": ["probe", "record"]},
            "path": {"type": "str", "default": "/var/lib/osdeploy/converged.json"},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    now = collect(module.params["fingerprint"])
    if module.params["state"] == "record":
        # Bookkeeping of osdeploy's own, not the host's configuration.
        if not module.check_mode:
            _write(path, now)
        module.exit_json(changed=False, converged=True, reason="")
    reason = compare(_read(path), now)
    if reason and not module.check_mode:
        Path(path).unlink(missing_ok=True)
    module.exit_json(changed=False, converged=not reason, reason=reason)


if __name__ == "__main__":
    main()
