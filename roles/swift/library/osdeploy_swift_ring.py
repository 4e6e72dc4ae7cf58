#!/usr/bin/python3
"""Ansible module: Swift's account, container and object rings, built or installed.

``state: built`` runs on the one host that keeps the ring builders
(``<dir>/<ring>.builder``): it creates a builder that is missing, adds
the listed devices it lacks (one zone per host: a host keeps the zone its
devices have, a new host gets the next free one), sets weights, replicas
and min_part_hours, rebalances, and writes ``<ring>.ring.gz``. A rebalance
runs when a device or setting changed, or when min_part_hours allow moving
partitions that an earlier, too early rebalance could not; the result is
saved only when the ring changed, so that a re-run is a no-op (a rebalance
bumps the ring's version even when it moves nothing). The old builder goes
to ``<dir>/backups`` first, as swift-ring-builder does. Devices the builder
holds but the list does not are kept and reported (removing a device is an
operator's decision: swift-ring-builder remove). It returns every ring's
version and content (base64).

``state: present`` runs on every Swift host with those contents: it writes
a ring whose bytes differ, and refuses to replace a ring by one with a
lower version (a deploy never hands a node an older ring than it has).

Both modes honour check mode. ``plan_devices`` is pure and unit-tested
(tests/unit/test_swift_ring.py).
"""

from __future__ import annotations

import base64
import gzip
import os
import pickle
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DOCUMENTATION = r"""
module: osdeploy_swift_ring
short_description: Build Swift's rings on one host, install them on the others
description:
  - "state=built: create or update the ring builders and rings in I(dir)."
  - "state=present: install the given rings, never an older version over a newer one."
options:
  state: {type: str, required: true, choices: [built, present]}
  dir: {type: str, default: /etc/swift, description: Where builders and rings are.}
  rings:
    type: list
    elements: dict
    default: []
    description: "built: [{name, port}], one per ring (account, container, object)."
  devices:
    type: list
    elements: dict
    default: []
    description: "built: [{ip, device, weight, zone}]; zone 0: the host's, or the next free one."
  part_power: {type: int, default: 10, description: "built: 2^part_power partitions (fixed)."}
  replicas: {type: int, default: 3}
  min_part_hours: {type: int, default: 1}
  contents: {type: dict, default: {}, description: "present: ring name -> base64 of its ring.gz."}
  owner: {type: str, default: root}
  group: {type: str, default: swift}
"""

#: Region of every device: one site.
REGION = 1


def plan_devices(
    existing: Sequence[Mapping[str, Any]], wanted: Sequence[Mapping[str, Any]], port: int
) -> tuple[list[dict[str, Any]], list[tuple[int, dict[str, Any]]], list[str]]:
    """What to add, what to update (builder id, new fields) and what is unlisted.

    ``existing`` are the builder's devices (None for removed ids), ``wanted``
    the listed ones ({ip, device, weight, zone}; zone 0: the host's own or
    the next free one).
    """
    devs = [d for d in existing if d is not None]
    key = {(d["ip"], d["port"], d["device"]): d for d in devs}
    host_zone = {d["ip"]: d["zone"] for d in devs}
    next_zone = max([d["zone"] for d in devs] + [0]) + 1
    adds: list[dict[str, Any]] = []
    updates: list[tuple[int, dict[str, Any]]] = []
    for item in wanted:
        ip, zone = item["ip"], int(item.get("zone") or 0)
        if not zone:
            if ip not in host_zone:
                host_zone[ip] = next_zone
                next_zone += 1
            zone = host_zone[ip]
        host_zone.setdefault(ip, zone)
        current = key.get((ip, port, item["device"]))
        weight = float(item.get("weight", 100))
        if current is None:
            adds.append(
                {
                    "region": REGION,
                    "zone": zone,
                    "ip": ip,
                    "port": port,
                    "device": item["device"],
                    "weight": weight,
                    "meta": "",
                }
            )
            continue
        fields = {
            name: value
            for name, value in (("weight", weight), ("zone", zone))
            if current[name] != value
        }
        if fields:
            updates.append((current["id"], fields))
    listed = {(w["ip"], port, w["device"]) for w in wanted}
    unlisted = [
        f"{d['ip']}:{d['port']}/{d['device']}"
        for d in devs
        if (d["ip"], d["port"], d["device"]) not in listed
    ]
    return adds, updates, unlisted


def _ring_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _load_ring(content: bytes, metadata_only: bool = False) -> Any:
    """A ring.gz's RingData (swift reads rings from files only)."""
    from swift.common.ring import RingData

    tmp = Path(f"/run/osdeploy-ring-{os.getpid()}.gz")
    try:
        tmp.write_bytes(content)
        return RingData.load(str(tmp), metadata_only=metadata_only)
    finally:
        tmp.unlink()


def _version(content: bytes | None) -> int | None:
    """The version stored in a ring.gz (None: no ring)."""
    return None if content is None else _load_ring(content, metadata_only=True).version


def _serialized(builder: Any) -> bytes:
    """The ring.gz bytes of a builder's ring (fixed mtime: equal rings, equal bytes)."""
    tmp = Path(f"/run/osdeploy-ring-{os.getpid()}.gz")
    try:
        builder.get_ring().save(str(tmp))
        return tmp.read_bytes()
    finally:
        tmp.unlink()


def _same_ring(old: bytes | None, builder: Any) -> bool:
    """Whether the ring file holds the builder's assignment and devices (version aside)."""
    if old is None:
        return False
    data, ring = _load_ring(old), builder.get_ring()
    assignment = [list(row) for row in ring._replica2part2dev_id]
    return bool(
        data._part_shift == ring._part_shift
        and data.devs == ring.devs
        and [list(row) for row in data._replica2part2dev_id] == assignment
    )


def _load_builder(params: Mapping[str, Any], name: str, old: bytes | None) -> Any:
    """The ring's builder: the saved one, or a new one when there is no ring yet."""
    from swift.common.ring import RingBuilder

    path = Path(params["dir"]) / f"{name}.builder"
    if path.exists():
        builder = RingBuilder.load(str(path))
    elif old is not None:
        raise RuntimeError(
            f"{params['dir']}/{name}.ring.gz exists but {path} does not: restore the "
            f"builder from {params['dir']}/backups (or the host that built the rings) "
            "before deploying"
        )
    else:
        builder = RingBuilder(params["part_power"], params["replicas"], params["min_part_hours"])
    if builder.part_power != params["part_power"]:
        raise RuntimeError(
            f"{name} ring has part power {builder.part_power}, not {params['part_power']}: "
            "it is fixed when the ring is made; set swift_part_power back"
        )
    return builder


def _update(builder: Any, params: Mapping[str, Any], port: int) -> tuple[bool, list[str]]:
    """Replicas, min_part_hours and devices as listed; whether anything changed."""
    touched = False
    if builder.replicas != params["replicas"]:
        builder.set_replicas(params["replicas"])
        touched = True
    if builder.min_part_hours != params["min_part_hours"]:
        builder.change_min_part_hours(params["min_part_hours"])
        touched = True
    adds, updates, unlisted = plan_devices(builder.devs, params["devices"], port)
    for dev in adds:
        builder.add_dev(dev)
    for dev_id, fields in updates:
        if "weight" in fields:
            builder.set_dev_weight(dev_id, fields["weight"])
        if "zone" in fields:
            builder.set_dev_zone(dev_id, fields["zone"])
    return touched or bool(adds or updates), unlisted


def build(params: Mapping[str, Any], check_mode: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"changed": False, "rings": {}, "versions": {}, "unlisted": {}}
    result["moved"] = {}
    for ring in params["rings"]:
        name, port = ring["name"], int(ring["port"])
        builder_path = Path(params["dir"]) / f"{name}.builder"
        ring_path = Path(params["dir"]) / f"{name}.ring.gz"
        old = _ring_bytes(ring_path)
        builder = _load_builder(params, name, old)
        touched, unlisted = _update(builder, params, port)
        moved = 0
        may_move = builder.min_part_seconds_left == 0 and builder.get_balance() > 1
        if touched or old is None or may_move:
            moved = builder.rebalance(seed=1)[0]
        save = touched or old is None or (moved > 0 and not _same_ring(old, builder))
        content = _serialized(builder) if save or old is None else old
        if save:
            result["changed"] = True
            if not check_mode:
                backups = Path(params["dir"]) / "backups"
                backups.mkdir(parents=True, exist_ok=True)
                if builder_path.exists():
                    stamp = time.strftime("%Y%m%d%H%M%S")
                    shutil.copy2(builder_path, backups / f"{stamp}.{name}.builder")
                builder.save(str(builder_path))
                _write(ring_path, content, params)
        result["rings"][name] = base64.b64encode(content).decode()
        result["versions"][name] = builder.version if save else _version(old)
        result["moved"][name] = moved
        if unlisted:
            result["unlisted"][name] = unlisted
    return result


def _write(path: Path, content: bytes, params: Mapping[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.osdeploy-new")
    tmp.write_bytes(content)
    shutil.chown(tmp, params["owner"], params["group"])
    tmp.chmod(0o644)
    tmp.replace(path)


def install(params: Mapping[str, Any], check_mode: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"changed": False, "written": []}
    for name, encoded in sorted(params["contents"].items()):
        path = Path(params["dir"]) / f"{name}.ring.gz"
        content = base64.b64decode(encoded)
        old = _ring_bytes(path)
        if old == content:
            continue
        mine, theirs = _version(old), _version(content)
        if mine is not None and theirs is not None and mine > theirs:
            raise RuntimeError(
                f"{path} has version {mine}, newer than the builder host's {theirs}: "
                "this host has a ring the builders do not; copy the newest builders "
                "to the builder host (or remove this ring) before deploying"
            )
        result["changed"] = True
        result["written"].append(name)
        if not check_mode:
            _write(path, content, params)
    return result


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "required": True, "choices": ["built", "present"]},
            "dir": {"type": "str", "default": "/etc/swift"},
            "rings": {"type": "list", "elements": "dict", "default": []},
            "devices": {"type": "list", "elements": "dict", "default": []},
            "part_power": {"type": "int", "default": 10},
            "replicas": {"type": "int", "default": 3},
            "min_part_hours": {"type": "int", "default": 1},
            "contents": {"type": "dict", "default": {}},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "swift"},
        },
        supports_check_mode=True,
    )
    try:
        if module.params["state"] == "built":
            result = build(module.params, module.check_mode)
        else:
            result = install(module.params, module.check_mode)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, gzip.BadGzipFile) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
