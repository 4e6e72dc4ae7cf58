"""Precheck: parsing of host command output and the judgement of the facts."""

import socket
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import paramiko
import pytest

from osdeploy import precheck
from osdeploy.precheck import (
    GIB,
    Finding,
    HostFacts,
    HostResult,
    Minimum,
    duplicates,
    evaluate,
    fingerprint,
    minimum_for,
    parse_addresses,
    parse_df_available,
    parse_macs,
    parse_meminfo_total,
    parse_os_release,
)

OS_RELEASE_13 = """PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
ID=debian
HOME_URL="https://www.debian.org/"
"""

OS_RELEASE_12 = OS_RELEASE_13.replace('"13"', '"12"').replace("13 (trixie)", "12 (bookworm)")

MEMINFO = """MemTotal:        8039516 kB
MemFree:          512000 kB
MemAvailable:    4000000 kB
"""

DF = """Filesystem     1024-blocks     Used Available Capacity Mounted on
/dev/sda1         41152736 12000000  27039232      31% /
"""

IP_ADDR = """1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host noprefixroute \\       valid_lft forever preferred_lft forever
2: eth0    inet 10.89.231.11/24 brd 10.89.231.255 scope global eth0\\       valid_lft forever
2: eth0    inet6 fe80::1c2b:3cff:fe4d:5e6f/64 scope link \\       valid_lft forever
"""


def host(**kw: Any) -> Any:
    values = {"name": "ctl1", "address": "10.89.231.11", "roles": ("control",)}
    values.update(kw)
    return SimpleNamespace(**values)


def facts(**kw: Any) -> HostFacts:
    now = 1_800_000_000.0
    values: dict[str, Any] = {
        "hostname": "ctl1\n",
        "resolved": "10.89.231.11    ctl1\n",
        "os_release": OS_RELEASE_13,
        "meminfo": MEMINFO,
        "df_root": DF,
        "addresses": IP_ADDR,
        "sudo_ok": True,
        "sudo_error": "",
        "remote_time": now,
        "local_time": now + 0.3,
    }
    values.update(kw)
    return HostFacts(**values)


# -- parsers ------------------------------------------------------------------------


def test_parse_os_release() -> None:
    release = parse_os_release(OS_RELEASE_13 + "# comment\n\nBROKEN LINE\n")
    assert release["ID"] == "debian"
    assert release["VERSION_ID"] == "13"
    assert release["PRETTY_NAME"] == "Debian GNU/Linux 13 (trixie)"
    assert release["VERSION_CODENAME"] == "trixie"


def test_parse_meminfo_total() -> None:
    assert parse_meminfo_total(MEMINFO) == 8039516 * 1024
    assert parse_meminfo_total("MemFree: 1 kB\n") is None
    assert parse_meminfo_total("") is None


def test_parse_df_available() -> None:
    assert parse_df_available(DF) == 27039232 * 1024
    wrapped = (
        "Filesystem 1024-blocks Used Available Capacity Mounted on\n"
        "/dev/mapper/very-long-volume-group-name-root\n"
        "   41152736 12000000  27039232      31% /\n"
    )
    assert parse_df_available(wrapped) == 27039232 * 1024
    assert parse_df_available("df: /: No such file\n") is None


def test_parse_addresses_ip_and_hostname_i() -> None:
    assert parse_addresses(IP_ADDR) == {
        "127.0.0.1",
        "::1",
        "10.89.231.11",
        "fe80::1c2b:3cff:fe4d:5e6f",
    }
    assert parse_addresses("10.0.0.5 fd00::0005 \n") == {"10.0.0.5", "fd00::5"}
    assert parse_addresses("") == set()


def test_minimum_is_the_largest_of_the_roles() -> None:
    assert minimum_for(["control"]) == Minimum(4, 10)
    assert minimum_for(["network"]) == Minimum(1, 5)
    assert minimum_for(["network", "compute"]) == Minimum(2, 10)
    assert minimum_for(["storage", "control", "compute"]) == Minimum(4, 10)
    assert set(precheck.ROLE_MINIMUMS) == {"control", "network", "compute", "storage"}


# -- evaluate -------------------------------------------------------------------------


def test_healthy_host_has_no_findings() -> None:
    assert evaluate(host(), facts()) == []


def whats(findings: list[Finding]) -> list[str]:
    return [f.what for f in findings]


def test_wrong_os() -> None:
    (finding,) = evaluate(host(), facts(os_release=OS_RELEASE_12))
    assert "Debian GNU/Linux 12 (bookworm)" in finding.what
    assert finding.fix == "install Debian 13 on it"
    (other,) = evaluate(host(), facts(os_release='ID=ubuntu\nVERSION_ID="24.04"\n'))
    assert "ubuntu 24.04" in other.what


def test_no_sudo() -> None:
    (finding,) = evaluate(host(), facts(sudo_ok=False, sudo_error="sudo: a password is required\n"))
    assert finding.what == "`sudo -n true` failed (sudo: a password is required)"
    assert "NOPASSWD" in finding.fix


def test_too_little_ram_for_control_but_enough_for_network() -> None:
    small = "MemTotal: 2097152 kB\n"  # 2 GiB
    (finding,) = evaluate(host(), facts(meminfo=small))
    assert finding.what == "2.0 GiB RAM, control needs 4 GiB"
    assert evaluate(host(roles=("network",)), facts(meminfo=small)) == []


def test_too_little_disk() -> None:
    df = DF.replace("27039232", str(3 * 1024 * 1024))  # 3 GiB
    (finding,) = evaluate(host(roles=("control", "network")), facts(df_root=df))
    assert finding.what == "3.0 GiB free on /, control,network needs 10 GiB"


def test_unreadable_outputs_are_findings() -> None:
    found = whats(evaluate(host(), facts(meminfo="", df_root="", remote_time=None)))
    assert found == [
        "cannot read MemTotal from /proc/meminfo",
        "cannot read free space of / from `df -Pk /`",
        "cannot read the clock (`date +%s`)",
    ]


def test_hostname_mismatch_is_only_a_warning() -> None:
    (finding,) = evaluate(host(), facts(hostname="localhost\n"))
    assert finding.warning
    assert "hostnamectl set-hostname ctl1" in finding.fix
    assert finding.line().startswith("precheck: ctl1 (10.89.231.11): warning: hostname is")
    assert evaluate(host(), facts(hostname="ctl1.example.org")) == []


def test_name_must_resolve() -> None:
    (finding,) = evaluate(host(), facts(resolved=""))
    assert finding.what == "name ctl1 does not resolve on the host"
    assert "10.89.231.11 ctl1" in finding.fix
    assert not finding.warning


def test_address_must_be_on_the_host() -> None:
    (finding,) = evaluate(host(address="10.89.231.99"), facts())
    assert finding.what.startswith("address 10.89.231.99 is not on any interface (has: ")
    assert "hosts[].address" in finding.fix


def test_ipv6_address_compares_normalized() -> None:
    assert evaluate(host(address="FD00:0::5"), facts(addresses="fd00::5\n")) == []


@pytest.mark.parametrize(("offset", "bad"), [(0.0, False), (4.0, False), (-6.0, True), (9, True)])
def test_clock_skew(offset: float, bad: bool) -> None:
    local = 1_800_000_000.0
    found = evaluate(host(), facts(remote_time=local + offset, local_time=local))
    assert bool(found) is bad
    if bad:
        assert "clock is" in found[0].what
        assert "NTP" in found[0].fix


def test_finding_line_format() -> None:
    finding = Finding("ctl1", "10.89.231.11", "something wrong", "do this")
    assert finding.line() == "precheck: ctl1 (10.89.231.11): something wrong — do this"


def test_summary_line() -> None:
    assert precheck.summary_line(3, 0) == "precheck: 3 hosts ok"
    assert precheck.summary_line(3, 1) == "precheck: 2 of 3 hosts ok"


# -- SSH failures -----------------------------------------------------------------------


class _FakeKey:
    def __init__(self, data: str) -> None:
        self.data = data

    def get_base64(self) -> str:
        return self.data

    def get_name(self) -> str:
        return "ssh-ed25519"


SSH = SimpleNamespace(user="osdeploy", key=Path("/k/id"), port=22, host_key_checking=True)


@pytest.mark.parametrize(
    ("exc", "what", "fix"),
    [
        (paramiko.AuthenticationException("no"), "SSH login as osdeploy", "authorized_keys"),
        (
            paramiko.SSHException("Server '10.89.231.11' not found in known_hosts"),
            "host key is not known",
            "ssh.host_key_checking: false",
        ),
        (
            paramiko.BadHostKeyException("h", _FakeKey("A"), _FakeKey("B")),
            "host key differs from the one in known_hosts",
            "ssh-keygen -R 10.89.231.11",
        ),
        (ConnectionRefusedError(111, "Connection refused"), "no SSH on port 22", "sshd"),
        (TimeoutError("timed out"), "no SSH on port 22", "firewall"),
        (paramiko.SSHException("weird"), "SSH failed", "sshd"),
    ],
)
def test_ssh_failures_explain_themselves(exc: BaseException, what: str, fix: str) -> None:
    finding = precheck.ssh_failure(host(), SSH, Path("/k/id"), exc)
    assert what in finding.what
    assert fix in finding.fix


def test_unreachable_host_over_real_tcp(tmp_path: Path) -> None:
    """A closed loopback port: the real connect path reports it as one finding."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    key = tmp_path / "id_ed25519"
    key.write_text("not a key")
    config: Any = SimpleNamespace(
        path=tmp_path / "osdeploy.yml",
        ssh=SimpleNamespace(user="u", key=key, port=port, host_key_checking=False),
    )
    result = precheck.check_host(config, host(address="127.0.0.1"))
    assert result.facts is None
    (finding,) = result.findings
    assert finding.what.startswith(f"no SSH on port {port}")


# -- across the hosts -----------------------------------------------------------------

IP_LINK = """1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536\\    link/loopback 00:00:00:00:00:00
2: eth0@if7: <BROADCAST,UP> mtu 1500\\    link/ether F2:42:36:17:5E:96
3: br-int: <BROADCAST,MULTICAST> mtu 1442\\    link/ether 7a:1b:2c:3d:4e:5f
4: tap1a2b: <BROADCAST,UP> mtu 1442\\    link/ether fe:16:3e:00:00:01
"""
TAP_ADDR = "4: tap1a2b    inet6 fe80::fc16:3eff:fe00:1/64 scope link \\       valid_lft forever\n"


def identity(name: str, address: str, mid: str, key: str, mac: str) -> tuple[Any, HostFacts]:
    return host(name=name, address=address), facts(
        machine_id=mid + "\n",
        host_key=key,
        addresses=IP_ADDR,
        links=IP_LINK.replace("F2:42:36:17:5E:96", mac),
    )


def test_parse_macs_keeps_ethernet_interfaces_with_an_address() -> None:
    # lo is not Ethernet; br-int has no address (OVN's integration bridge),
    # a guest's tap only a link-local one.
    assert parse_macs(IP_LINK, IP_ADDR + TAP_ADDR) == {"eth0": "f2:42:36:17:5e:96"}


def test_fingerprint_is_ssh_keygens() -> None:
    # ssh-keygen -l prints SHA256:<unpadded base64 of the key blob's sha256>.
    assert fingerprint(b"") == "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"


def test_distinct_hosts_share_nothing() -> None:
    assert (
        duplicates(
            [
                identity("ctl1", "10.89.231.11", "a" * 32, "SHA256:k1", "f2:00:00:00:00:01"),
                identity("cmp1", "10.89.231.12", "b" * 32, "SHA256:k2", "f2:00:00:00:00:02"),
            ]
        )
        == []
    )


def test_cloned_hosts_are_named_with_what_they_share() -> None:
    mid = "716ce589" + "0" * 24
    found = duplicates(
        [
            identity("ctl1", "10.89.231.11", mid, "SHA256:k1", "f2:42:36:17:5e:96"),
            identity("cmp1", "10.89.231.12", mid, "SHA256:k1", "f2:42:36:17:5e:96"),
            identity("cmp2", "10.89.231.13", mid, "SHA256:k2", "f2:00:00:00:00:03"),
        ]
    )
    # The first holder of a value is left alone; each copy is told.
    assert [(f.host, f.what) for f in found] == [
        ("cmp1", f"machine id {mid} is also ctl1's"),
        ("cmp2", f"machine id {mid} is also ctl1's, cmp1's"),
        ("cmp1", "SSH host key SHA256:k1 is also ctl1's"),
        ("cmp1", "MAC f2:42:36:17:5e:96 (eth0) is also ctl1's (eth0)"),
    ]
    assert "systemd-machine-id-setup" in found[0].fix
    assert "ssh-keygen -A" in found[2].fix
    assert not any(f.warning for f in found)


def test_unreadable_identities_are_not_duplicates() -> None:
    # No /etc/machine-id, no host key seen: nothing to compare, nothing said.
    assert (
        duplicates(
            [
                identity("ctl1", "10.89.231.11", "", "", "f2:00:00:00:00:01"),
                identity("cmp1", "10.89.231.12", "", "", "f2:00:00:00:00:02"),
            ]
        )
        == []
    )


def test_run_precheck_fails_hosts_that_share_a_machine_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hosts = [host(name="ctl1"), host(name="cmp1", address="10.89.231.12")]
    shared = {h.name: replace(facts(), machine_id="c0ffee\n") for h in hosts}
    monkeypatch.setattr(precheck, "check_host", lambda config, h: HostResult([], shared[h.name]))
    assert precheck.run_precheck(_config(tmp_path, hosts), SimpleNamespace()) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("precheck: cmp1 (10.89.231.12): machine id c0ffee is also ctl1's — ")
    assert lines[-1] == "precheck: 1 of 2 hosts ok"


# -- orchestration ------------------------------------------------------------------------


def test_hosts_are_checked_in_parallel_and_reported_in_order() -> None:
    hosts = [host(name=f"h{i}") for i in range(6)]
    running = 0
    peak = 0
    lock = threading.Lock()

    def check(h: Any) -> HostResult:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return HostResult([Finding(h.name, h.address, "x", "y")])

    results = precheck.check_hosts(hosts, check)
    assert [r.findings[0].host for r in results] == [h.name for h in hosts]
    assert peak > 1


def _config(tmp_path: Path, hosts: list[Any]) -> Any:
    key = tmp_path / "id"
    key.write_text("k")
    return SimpleNamespace(
        path=tmp_path / "osdeploy.yml",
        ssh=SimpleNamespace(user="u", key=key, port=22, host_key_checking=False),
        hosts=tuple(hosts),
    )


def test_run_precheck_output_and_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hosts = [host(name="ctl1"), host(name="cmp1", address="10.89.231.12")]
    results = {
        "ctl1": [],
        "cmp1": [Finding("cmp1", "10.89.231.12", "bad", "fix it")],
    }
    monkeypatch.setattr(
        precheck, "check_host", lambda config, h: HostResult(results[h.name], facts())
    )
    assert precheck.run_precheck(_config(tmp_path, hosts), SimpleNamespace()) == 2
    assert capsys.readouterr().out.splitlines() == [
        "precheck: cmp1 (10.89.231.12): bad — fix it",
        "precheck: 1 of 2 hosts ok",
    ]
    results["cmp1"] = [replace(results["cmp1"][0], warning=True)]
    assert precheck.run_precheck(_config(tmp_path, hosts), SimpleNamespace()) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "precheck: 2 hosts ok"
    precheck.run_precheck(_config(tmp_path, hosts), SimpleNamespace(), stream=sys.stderr)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == "precheck: 2 hosts ok"


def test_missing_key_stops_early(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, [host()])
    config.ssh.key = tmp_path / "missing"
    assert precheck.run_precheck(config, SimpleNamespace()) == 2
    assert "ssh.key" in capsys.readouterr().out


def test_gib_constant() -> None:
    assert GIB == 1073741824
