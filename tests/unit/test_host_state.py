"""The converged-host probe's comparison: a host counts as converged only when
every recorded part of it is as the last successful run left it."""

from types import ModuleType
from typing import Any

import pytest
from conftest import load_module


@pytest.fixture(scope="module")
def hs() -> ModuleType:
    return load_module("plugins/modules/osdeploy_host_state.py")


RECORD: dict[str, Any] = {
    "fingerprint": "f1",
    "os": "debian 13",
    "cpus": 2,
    "hostname": "cmp1",
    "addresses": ["10.89.231.12/24"],
    "packages": "p1",
    "etc": {"/etc/nova/nova.conf": "4096 1.000000", "/etc/hosts": "200 2.000000"},
    "units": ["nova-compute.service", "ovn-controller.service"],
}


def test_the_same_host_is_converged(hs: ModuleType) -> None:
    assert hs.compare(RECORD, dict(RECORD)) == ""


def test_no_record_means_every_step_runs(hs: ModuleType) -> None:
    assert hs.compare(None, RECORD) == "no record of an earlier successful run"


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("fingerprint", "f2", "the deployment's inputs changed since the last successful run"),
        ("os", "debian 14", "the OS release changed"),
        ("cpus", 4, "the CPU count changed"),
        ("hostname", "cmp9", "the hostname changed"),
        ("addresses", ["10.89.231.99/24"], "the IPv4 addresses changed"),
        ("packages", "p2", "the installed packages changed"),
    ],
)
def test_each_recorded_part_counts(hs: ModuleType, key: str, value: Any, reason: str) -> None:
    assert hs.compare(RECORD, {**RECORD, key: value}) == reason


def test_a_changed_added_or_removed_file_is_named(hs: ModuleType) -> None:
    etc = {"/etc/nova/nova.conf": "4097 3.000000", "/etc/new.conf": "1 3.000000"}
    assert hs.compare(RECORD, {**RECORD, "etc": etc}) == (
        "/etc/hosts, /etc/new.conf, /etc/nova/nova.conf changed"
    )


def test_many_changed_files_are_counted(hs: ModuleType) -> None:
    etc = {f"/etc/f{i}": "1 1.0" for i in range(5)}
    reason = hs.compare({**RECORD, "etc": {}}, {**RECORD, "etc": etc})
    assert reason == "/etc/f0, /etc/f1, /etc/f2 and 2 more changed"


def test_a_stopped_unit_counts_but_a_new_one_does_not(hs: ModuleType) -> None:
    stopped = {**RECORD, "units": ["ovn-controller.service"]}
    assert hs.compare(RECORD, stopped) == "nova-compute.service not running"
    more = {**RECORD, "units": [*RECORD["units"], "e2scrub_reap.service"]}
    assert hs.compare(RECORD, more) == ""


def test_what_services_rewrite_themselves_is_left_out(hs: ModuleType) -> None:
    entries = [
        ("/etc/nova/nova.conf", 10, 1.5),
        ("/etc/openvswitch/conf.db", 99, 2.0),
        ("/etc/libvirt/qemu/instance-00000001.xml", 5, 3.0),
        ("/etc/libvirt/qemu.conf", 7, 4.0),
        ("/etc/resolv.conf", 1, 5.0),
    ]
    assert hs.etc_listing(entries) == {
        "/etc/nova/nova.conf": "10 1.500000",
        "/etc/libvirt/qemu.conf": "7 4.000000",
    }
