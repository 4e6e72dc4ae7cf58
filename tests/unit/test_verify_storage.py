"""Verify, block storage: the guest's disk script, its parser, Ceph status, RBD names."""

import hashlib
import subprocess
from pathlib import Path

from osdeploy.verify.storage import (
    PATTERN_BYTES,
    ceph_health_problems,
    guest_disk_script,
    images_of,
    parse_disk_line,
    pattern,
    pattern_sha256,
)

VOLUME = "0f3c2a7e-91d4-4b6e-8a55-2c1d9e7b4f10"


def test_pattern_is_the_volume_id_repeated_to_its_length() -> None:
    data = pattern(VOLUME)
    assert len(data) == PATTERN_BYTES
    assert data.startswith(f"osdeploy {VOLUME}\nosdeploy {VOLUME}\n".encode())
    assert pattern_sha256(VOLUME) == hashlib.sha256(data).hexdigest()
    assert pattern_sha256(VOLUME) != pattern_sha256(VOLUME[::-1])


def test_guest_script_writes_and_reads_the_pattern(tmp_path: Path) -> None:
    # The script as the guest runs it, on a fake /sys/block and /dev: the
    # disk is found by its serial, the pattern goes to it and is read back.
    sys_block = tmp_path / "sys/block"
    for name, serial in (("vda", "root"), ("vdb", VOLUME[:20])):
        (sys_block / name).mkdir(parents=True)
        (sys_block / name / "serial").write_text(serial)
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "vdb").write_bytes(b"\0" * (PATTERN_BYTES + 4096))
    script = guest_disk_script(VOLUME, write=True)
    script = script.replace("/sys/block", str(sys_block)).replace("/dev/", f"{dev}/")
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert parse_disk_line(out) == ("vdb", pattern_sha256(VOLUME))
    assert (dev / "vdb").read_bytes()[:PATTERN_BYTES] == pattern(VOLUME)
    reread = guest_disk_script(VOLUME, write=False)
    reread = reread.replace("/sys/block", str(sys_block)).replace("/dev/", f"{dev}/")
    out = subprocess.run(["sh", "-c", reread], capture_output=True, text=True, check=True).stdout
    assert parse_disk_line(out) == ("vdb", pattern_sha256(VOLUME))


def test_guest_script_says_when_the_disk_is_missing() -> None:
    script = guest_disk_script(VOLUME, write=False).replace("/sys/block", "/nonexistent")
    run = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert (run.returncode, run.stdout.strip()) == (3, "NODISK")
    assert parse_disk_line(run.stdout) is None


def test_ceph_health_problems() -> None:
    healthy = {
        "health": {"status": "HEALTH_OK", "checks": {}},
        "osdmap": {"num_osds": 3, "num_up_osds": 3, "num_in_osds": 3},
        "pgmap": {"pgs_by_state": [{"state_name": "active+clean", "count": 128}]},
    }
    assert ceph_health_problems(healthy) == []
    sick = {
        "health": {"status": "HEALTH_WARN", "checks": {"OSD_DOWN": {}, "PG_DEGRADED": {}}},
        "osdmap": {"osdmap": {"num_osds": 3, "num_up_osds": 2, "num_in_osds": 3}},
        "pgmap": {
            "pgs_by_state": [
                {"state_name": "active+clean", "count": 100},
                {"state_name": "active+undersized+degraded", "count": 28},
            ]
        },
    }
    assert ceph_health_problems(sick) == [
        "HEALTH_WARN (OSD_DOWN, PG_DEGRADED)",
        "2 of 3 OSDs up, 3 in",
        "PGs 28 active+undersized+degraded",
    ]
    assert ceph_health_problems({"health": {"status": "HEALTH_OK"}}) == ["no OSDs"]


def test_images_of_matches_volumes_and_their_backups() -> None:
    listing = [
        f"volume-{VOLUME}",
        f"volume-{VOLUME}.backup.base",
        "volume-11111111-2222-3333-4444-555555555555",
    ]
    assert images_of(listing, [VOLUME]) == listing[:2]
    assert images_of(listing, []) == []
