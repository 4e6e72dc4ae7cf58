"""Check every host before anything is installed: SSH, sudo, OS, RAM, disk, names, clock.

`run_precheck` logs in to all hosts in parallel with paramiko, exactly as
Ansible will (config's ssh user, key and port), collects a few facts with
read-only commands, and judges them with pure functions (`evaluate` and the
`parse_*` helpers, unit-tested). Checked: SSH login with the key, `sudo -n
true`, Debian 13, RAM and free disk for the host's roles, the configured
name resolves on the host (`getent hosts`), the configured address is on
an interface, the clock within 5 s of this machine's; a hostname different
from the configured name is only a warning. Across the hosts (`duplicates`):
no two share a machine id, an SSH host key or the MAC of an interface with
an address, which is what hosts cloned from one template (or lab hosts from
an old image) do. Output: one line per problem,
`precheck: <host> (<address>): <what> — <fix>`, then `precheck: N hosts ok`.

Minimum RAM and free disk on / per host role (`ROLE_MINIMUMS`); a host with
several roles must meet the largest minimum of each:

| role    | RAM    | free disk on / |
|---------|--------|----------------|
| control | 4 GiB  | 10 GiB         |
| compute | 2 GiB  | 10 GiB         |
| network | 1 GiB  | 5 GiB          |
| storage | 1 GiB  | 10 GiB         |
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import shlex
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from osdeploy.remote import connect, key_path, run

if TYPE_CHECKING:
    import paramiko

    from osdeploy.config import Config, Host, SshSettings
    from osdeploy.plan import Plan

GIB = 1024**3
MAX_CLOCK_SKEW = 5.0
MAX_PARALLEL = 32
SUPPORTED_OS = ("debian", "13")


@dataclass(frozen=True)
class Minimum:
    ram_gib: float
    disk_gib: float


#: Minimum RAM and free disk on / per host role (see the module docstring).
ROLE_MINIMUMS: dict[str, Minimum] = {
    "control": Minimum(ram_gib=4, disk_gib=10),
    "compute": Minimum(ram_gib=2, disk_gib=10),
    "network": Minimum(ram_gib=1, disk_gib=5),
    "storage": Minimum(ram_gib=1, disk_gib=10),
}


@dataclass(frozen=True)
class Finding:
    """One failed (or, when warning, merely suspicious) check of one host."""

    host: str
    address: str
    what: str
    fix: str
    warning: bool = False

    def line(self) -> str:
        prefix = "warning: " if self.warning else ""
        return f"precheck: {self.host} ({self.address}): {prefix}{self.what} — {self.fix}"


@dataclass(frozen=True)
class HostFacts:
    """What the SSH edge collected from one host (command outputs, unparsed)."""

    hostname: str
    resolved: str  # `getent hosts <configured name>` on the host
    os_release: str
    meminfo: str
    df_root: str
    addresses: str
    sudo_ok: bool
    sudo_error: str
    remote_time: float | None
    local_time: float
    machine_id: str = ""  # /etc/machine-id
    host_key: str = ""  # fingerprint of the SSH host key the host presented
    links: str = ""  # `ip -o link show`


@dataclass(frozen=True)
class HostResult:
    """One host's findings, and its facts when they could be gathered."""

    findings: list[Finding]
    facts: HostFacts | None = None


# -- pure parsing -----------------------------------------------------------------


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value pairs of /etc/os-release, quotes removed."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            parts = shlex.split(value)
        except ValueError:
            parts = [value.strip("\"'")]
        values[key.strip()] = parts[0] if parts else ""
    return values


def parse_meminfo_total(text: str) -> int | None:
    """MemTotal of /proc/meminfo in bytes."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                unit = fields[2].lower() if len(fields) > 2 else "kb"
                return int(fields[1]) * (1024 if unit == "kb" else 1)
    return None


def parse_df_available(text: str) -> int | None:
    """Available bytes from `df -Pk /` (POSIX format, 1024-byte blocks)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    # A long device name may wrap the data onto extra lines in some dfs:
    # the numbers are the last five fields before the mount point.
    fields = " ".join(lines[1:]).split()
    if len(fields) < 6 or not fields[-3].isdigit():
        return None
    return int(fields[-3]) * 1024


def parse_addresses(text: str) -> set[str]:
    """Addresses from `ip -o addr show` lines (or the words of `hostname -I`)."""
    found: set[str] = set()
    for line in text.splitlines():
        words = line.split()
        if "inet" in words or "inet6" in words:
            for key in ("inet", "inet6"):
                if key in words and words.index(key) + 1 < len(words):
                    found.add(words[words.index(key) + 1].split("/")[0])
        else:
            found.update(word.split("/")[0] for word in words)
    normalized: set[str] = set()
    for address in found:
        try:
            normalized.add(str(ipaddress.ip_address(address.split("%")[0])))
        except ValueError:
            continue
    return normalized


def parse_macs(links: str, addresses: str) -> dict[str, str]:
    """Interface -> MAC, for the Ethernet interfaces that carry an address.

    `links` is `ip -o link show`, `addresses` `ip -o addr show`: a MAC only
    matters where the host answers on the network, so bridges and taps with
    no address (or only an IPv6 link-local one: a guest's tap is on its
    source and destination host during a live migration) are left out.
    """
    with_address = set()
    for line in addresses.splitlines():
        words = line.split()
        if len(words) > 2 and words[2] in ("inet", "inet6") and "link" not in words:
            with_address.add(words[1].split("@")[0])
    macs: dict[str, str] = {}
    for line in links.splitlines():
        words = line.split()
        if len(words) < 2 or "link/ether" not in words:
            continue
        name = words[1].rstrip(":").split("@")[0]
        index = words.index("link/ether") + 1
        if name in with_address and index < len(words):
            macs[name] = words[index].lower()
    return macs


def fingerprint(key: bytes) -> str:
    """An SSH public key's fingerprint as `ssh-keygen -l` prints it."""
    digest = base64.b64encode(hashlib.sha256(key).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def duplicates(results: Sequence[tuple[Host, HostFacts]]) -> list[Finding]:
    """Hosts that share a machine id, an SSH host key or a MAC address.

    The first host of each shared value is left alone; every later one gets
    a finding naming the hosts it shares the value with (cloned hosts: the
    later ones are the copies to fix).
    """
    found: list[Finding] = []

    def check(
        kind: str, values: Callable[[HostFacts], Iterable[tuple[str, str]]], fix: str
    ) -> None:
        seen: dict[str, list[tuple[str, str]]] = {}
        for host, facts in results:
            for value, where in values(facts):
                owners = seen.setdefault(value, [])
                if owners and all(owner != host.name for owner, _ in owners):
                    others = ", ".join(f"{owner}'s{at}" for owner, at in owners)
                    found.append(
                        Finding(
                            host.name, host.address, f"{kind} {value}{where} is also {others}", fix
                        )
                    )
                owners.append((host.name, where))

    check(
        "machine id",
        lambda f: [(f.machine_id.strip(), "")] if f.machine_id.strip() else [],
        "give the host its own: `sudo rm -f /etc/machine-id /var/lib/dbus/machine-id && "
        "sudo systemd-machine-id-setup`, then reboot it (systemd derives MAC addresses from it; "
        "lab hosts made from an older image: `osdeploy lab up` repairs them)",
    )
    check(
        "SSH host key",
        lambda f: [(f.host_key, "")] if f.host_key else [],
        "make it new keys: `sudo rm /etc/ssh/ssh_host_* && sudo ssh-keygen -A && "
        "sudo systemctl restart ssh`, then `ssh-keygen -R <address>` here",
    )
    check(
        "MAC",
        lambda f: [
            (mac, f" ({name})") for name, mac in sorted(parse_macs(f.links, f.addresses).items())
        ],
        "give the interface a MAC of its own (a cloned VM: a new MAC in the hypervisor; "
        "a systemd host derives generated MACs from its machine id)",
    )
    return found


def minimum_for(roles: Iterable[str], table: Mapping[str, Minimum] = ROLE_MINIMUMS) -> Minimum:
    """The largest RAM and disk minimum among the roles."""
    chosen = [table[role] for role in roles if role in table]
    if not chosen:
        return Minimum(ram_gib=1, disk_gib=5)
    return Minimum(ram_gib=max(m.ram_gib for m in chosen), disk_gib=max(m.disk_gib for m in chosen))


def _gib(value: int) -> str:
    return f"{value / GIB:.1f} GiB"


def evaluate(host: Host, facts: HostFacts) -> list[Finding]:
    """Every problem the facts show (empty when the host is fine)."""
    found: list[Finding] = []

    def fail(what: str, fix: str, warning: bool = False) -> None:
        found.append(Finding(host.name, host.address, what, fix, warning))

    if not facts.sudo_ok:
        detail = f" ({facts.sudo_error.strip()[:120]})" if facts.sudo_error.strip() else ""
        fail(
            f"`sudo -n true` failed{detail}",
            "give the SSH user passwordless sudo (e.g. '<user> ALL=(ALL) NOPASSWD: ALL' "
            "in /etc/sudoers.d/osdeploy)",
        )

    release = parse_os_release(facts.os_release)
    os_id, version = release.get("ID", "?"), release.get("VERSION_ID", "?")
    if (os_id, version) != SUPPORTED_OS:
        pretty = release.get("PRETTY_NAME") or f"{os_id} {version}"
        fail(f"runs {pretty}, osdeploy supports Debian 13 (trixie)", "install Debian 13 on it")

    need = minimum_for(host.roles)
    roles = ",".join(host.roles) or "no roles"
    ram = parse_meminfo_total(facts.meminfo)
    if ram is None:
        fail("cannot read MemTotal from /proc/meminfo", "check that /proc is mounted")
    elif ram < need.ram_gib * GIB:
        fail(
            f"{_gib(ram)} RAM, {roles} needs {need.ram_gib:g} GiB",
            "add memory or move roles to another host",
        )
    disk = parse_df_available(facts.df_root)
    if disk is None:
        fail("cannot read free space of / from `df -Pk /`", "check the root filesystem")
    elif disk < need.disk_gib * GIB:
        fail(
            f"{_gib(disk)} free on /, {roles} needs {need.disk_gib:g} GiB",
            "free space on / or grow the disk",
        )

    hostname = facts.hostname.strip()
    if hostname.split(".")[0] != host.name:
        fail(
            f"hostname is {hostname or '(empty)'!r}, the config names it {host.name!r}",
            f"set it with `hostnamectl set-hostname {host.name}` (services register "
            "under the hostname)",
            warning=True,
        )

    if not facts.resolved.strip():
        fail(
            f"name {host.name} does not resolve on the host",
            f"add '{host.address} {host.name}' to its /etc/hosts (or to DNS)",
        )

    addresses = parse_addresses(facts.addresses)
    try:
        wanted = str(ipaddress.ip_address(host.address))
    except ValueError:
        wanted = host.address
    if wanted not in addresses:
        shown = ", ".join(sorted(addresses)) or "none"
        fail(
            f"address {host.address} is not on any interface (has: {shown})",
            "set hosts[].address to the host's internal address",
        )

    if facts.remote_time is None:
        fail("cannot read the clock (`date +%s`)", "check the host's clock")
    else:
        # date +%s truncates to whole seconds: compare with the middle of that second.
        skew = facts.remote_time + 0.5 - facts.local_time
        if abs(skew) > MAX_CLOCK_SKEW:
            fail(
                f"clock is {skew:+.0f} s off this machine's",
                "run an NTP client (systemd-timesyncd or chrony) on the host and here",
            )
    return found


def summary_line(total: int, failed_hosts: int) -> str:
    if failed_hosts == 0:
        return f"precheck: {total} hosts ok"
    return f"precheck: {total - failed_hosts} of {total} hosts ok"


# -- SSH edge (osdeploy.remote logs in and runs the commands) ---------------------


def ssh_failure(host: Host, ssh: SshSettings, key: Path, exc: BaseException) -> Finding:
    """A finding that explains why logging in failed."""
    import paramiko

    user = ssh.user
    if isinstance(exc, paramiko.BadHostKeyException):
        what, fix = (
            "host key differs from the one in known_hosts",
            f"if the host was reinstalled, `ssh-keygen -R {host.address}` and ssh in once",
        )
    elif isinstance(exc, paramiko.AuthenticationException):
        what, fix = (
            f"SSH login as {user} with key {key} refused",
            f"add {key}.pub to ~{user}/.ssh/authorized_keys on the host",
        )
    elif isinstance(exc, paramiko.SSHException) and "known_hosts" in str(exc):
        what, fix = (
            "host key is not known",
            f"ssh -p {ssh.port} {user}@{host.address} once to accept it, "
            "or set ssh.host_key_checking: false",
        )
    elif isinstance(exc, (OSError, socket.timeout, paramiko.ssh_exception.NoValidConnectionsError)):
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        what, fix = (
            f"no SSH on port {ssh.port} ({reason})",
            "check the address, that sshd runs, and that no firewall blocks the port",
        )
    else:
        what, fix = (f"SSH failed: {type(exc).__name__}: {exc}", "check the host's sshd")
    return Finding(host.name, host.address, what, fix)


def gather(client: paramiko.SSHClient, name: str) -> HostFacts:
    """Read-only commands on a logged-in host."""

    def out(command: str) -> str:
        return run(client, command)[1]

    transport = client.get_transport()
    server_key = transport.get_remote_server_key() if transport is not None else None
    sudo_rc, _, sudo_err = run(client, "sudo -n true")
    before = time.time()
    remote = out("date +%s").strip()
    after = time.time()
    return HostFacts(
        hostname=out("hostname"),
        resolved=out(f"getent hosts {shlex.quote(name)}"),
        os_release=out("cat /etc/os-release"),
        meminfo=out("cat /proc/meminfo"),
        df_root=out("LC_ALL=C df -Pk /"),
        addresses=out("ip -o addr show 2>/dev/null || hostname -I"),
        sudo_ok=sudo_rc == 0,
        sudo_error=sudo_err,
        remote_time=float(remote) if remote.isdigit() else None,
        local_time=(before + after) / 2,
        machine_id=out("cat /etc/machine-id 2>/dev/null"),
        host_key=fingerprint(server_key.asbytes()) if server_key is not None else "",
        links=out("ip -o link show 2>/dev/null"),
    )


def check_host(config: Config, host: Host) -> HostResult:
    key = key_path(config)
    try:
        client = connect(host, config.ssh, key)
    except Exception as exc:
        return HostResult([ssh_failure(host, config.ssh, key, exc)])
    try:
        facts = gather(client, host.name)
    except Exception as exc:
        return HostResult(
            [
                Finding(
                    host.name,
                    host.address,
                    f"commands over SSH failed ({type(exc).__name__}: {exc})",
                    "check the host's sshd and shell",
                )
            ]
        )
    finally:
        client.close()
    return HostResult(evaluate(host, facts), facts)


def check_hosts(hosts: Sequence[Host], check: Callable[[Host], HostResult]) -> list[HostResult]:
    """Results per host, hosts checked in parallel, in host order."""
    if not hosts:
        return []
    with ThreadPoolExecutor(max_workers=min(len(hosts), MAX_PARALLEL)) as pool:
        return list(pool.map(check, hosts))


def run_precheck(config: Config, plan: Plan, *, stream: TextIO | None = None) -> int:
    """Check every host of the config; 0 when all pass, 2 when any failed.

    Lines go to `stream` (default stdout; `deploy --json` passes stderr).
    """
    del plan  # the checks depend on host roles, which the config holds
    out = stream if stream is not None else sys.stdout

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    key = key_path(config)
    if not key.is_file():
        say(
            f"precheck: ssh.key {key}: no such file — set ssh.key in {config.path} "
            "(or run `osdeploy lab up`, which creates the lab key)"
        )
        return 2
    results = check_hosts(config.hosts, lambda host: check_host(config, host))
    shared = duplicates(
        [
            (host, result.facts)
            for host, result in zip(config.hosts, results, strict=True)
            if result.facts is not None
        ]
    )
    failed_hosts = 0
    for host, result in zip(config.hosts, results, strict=True):
        findings = result.findings + [f for f in shared if f.host == host.name]
        for finding in findings:
            say(finding.line())
        if any(not f.warning for f in findings):
            failed_hosts += 1
    say(summary_line(len(config.hosts), failed_hosts))
    return 0 if failed_hosts == 0 else 2
