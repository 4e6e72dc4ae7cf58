"""The lab: real Debian 13 target hosts as systemd containers under podman.

Side effects live here (podman, debootstrap); the naming and addressing
rules are small pure functions so they can be tested without containers.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from osdeploy import PROJECT_ROOT
from osdeploy.catalog import load_catalog
from osdeploy.errors import OsdeployError

IMAGE = "localhost/osdeploy-host:trixie"
NETWORK = "osdeploy-lab"
SUBNET = ipaddress.ip_network(os.environ.get("OSDEPLOY_LAB_SUBNET", "10.89.231.0/24"))
# A second network, eth1 in every host, carries the Geneve tunnels: with no
# openvswitch kernel module here OVS runs its userspace datapath, which needs
# the tunnel address on an OVS bridge (the ovn role moves eth1's address to
# br-phy); management traffic and SSH stay on eth0. Host N gets .N on both.
TUNNEL_NETWORK = "osdeploy-lab-tun"
TUNNEL_SUBNET = ipaddress.ip_network(os.environ.get("OSDEPLOY_LAB_TUNNEL_SUBNET", "10.89.232.0/24"))
TUNNEL_INTERFACE = "eth1"
# The lab's "external" network: an address on br-ex of the network host, so
# floating IPs answer from there (real sites put a NIC into br-ex instead).
# Each lab has its own /24, 172.24.<last octet of its network host>.0/24, so
# labs side by side never share one, and the machine routes it to that host
# (as a DevStack host reaches its floating IPs).
PROVIDER_SUPERNET = ipaddress.ip_network("172.24.0.0/16")
FIRST_HOST_OFFSET = 11
APT_ARCHIVES = Path(os.environ.get("OSDEPLOY_APT_ARCHIVES", "/var/cache/osdeploy/apt-archives"))
MIRROR = os.environ.get("OSDEPLOY_LAB_MIRROR", "http://deb.debian.org/debian")
CONTAINERS_CONF = PROJECT_ROOT / "lab" / "containers.conf"
LAB_USER = "osdeploy"
# Every default host is a storage host too: Ceph gets the three hosts its
# pools need for three replicas (one OSD each, on a file: OSD_FILE).
DEFAULT_HOSTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ctl1", ("control", "network", "storage")),
    ("cmp1", ("compute", "storage")),
    ("cmp2", ("compute", "storage")),
)
# The OSD of a lab storage host: a sparse file in the container's own
# filesystem (kept across restarts; only what is written takes disk).
OSD_FILE = {"path": "/var/lib/ceph/osd-files/osd0.img", "size": "10G"}

# Everything that goes into the image; its hash names the image build, so a
# change here rebuilds the image on the next `lab image` / `lab up`.
IMAGE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "sudo",
    "iproute2",
    "iputils-ping",
    "procps",
    "ca-certificates",
    "curl",
)
IMAGE_FILES: dict[str, str] = {
    "etc/sudoers.d/osdeploy": f"{LAB_USER} ALL=(ALL) NOPASSWD: ALL\n",
    "etc/hosts": "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n",
    # Containers start from one image: each boots with its own machine id
    # (systemd takes podman's container id; IMAGE_COMMANDS links dbus's copy
    # to it, or systemd would take the build's from there) ...
    "etc/machine-id": "",
    # ... and its own SSH host keys, made on first boot.
    "etc/systemd/system/osdeploy-hostkeys.service": (
        "[Unit]\nDescription=Create SSH host keys on first boot\n"
        "Before=ssh.service\nConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n\n"
        "[Service]\nType=oneshot\nExecStart=/usr/bin/ssh-keygen -A\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    ),
    # The apt archive is shared between lab hosts: keep what was downloaded.
    "etc/apt/apt.conf.d/90osdeploy-keep-debs": (
        'Binary::apt::APT::Keep-Downloaded-Packages "true";\n'
        'APT::Keep-Downloaded-Packages "true";\n'
    ),
}
# Run against the unpacked root file system; "{root}" is its path.
IMAGE_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("useradd", "--root", "{root}", "--create-home", "--shell", "/bin/bash", LAB_USER),
    ("systemctl", "--root={root}", "enable", "osdeploy-hostkeys.service"),
    # systemd-modules-load cannot load modules in a container; it only marks
    # the host "degraded".
    ("systemctl", "--root={root}", "mask", "systemd-modules-load.service"),
    # nvme-cli (a dependency of ceph-base) connects NVMe-oF targets at
    # boot; a container has no /dev/nvme-fabrics, so it failed on every
    # boot and marked the host "degraded". A real host keeps it. (Its
    # package's postinst then reports that it cannot preset a masked unit,
    # and goes on.)
    ("systemctl", "--root={root}", "mask", "nvmf-autoconnect.service"),
    # dbus made its machine id during the build; systemd reads that file
    # before it makes one, so every host would get the build's id and, from
    # it, the same MAC addresses after a restart.
    ("ln", "-sf", "/etc/machine-id", "{root}/var/lib/dbus/machine-id"),
    ("chroot", "{root}", "apt-get", "clean"),
)


@dataclass(frozen=True)
class LabHost:
    lab: str
    name: str
    roles: tuple[str, ...]
    address: str

    @property
    def container(self) -> str:
        return f"osdeploy-{self.lab}-{self.name}"

    @staticmethod
    def mac(address: str) -> str:
        """A fixed MAC for a lab address, as a real NIC has one for life.

        podman would give an interface a random MAC at every start: after a
        restart the other hosts' ARP caches, and the tunnel neighbour cache of
        OVS's userspace datapath, point at a MAC nobody has. Locally
        administered (02:), then the four bytes of the IPv4 address.
        """
        return "02:00:" + ":".join(f"{byte:02x}" for byte in ipaddress.ip_address(address).packed)

    @property
    def tunnel_address(self) -> str:
        """Same host number as ``address``, on the tunnel network."""
        offset = int(ipaddress.ip_address(self.address)) - int(SUBNET.network_address)
        return str(TUNNEL_SUBNET.network_address + offset)


def lab_name(deploy_dir: Path) -> str:
    """Several labs can share the machine: containers carry the lab's name."""
    name = re.sub(r"[^a-z0-9-]+", "-", deploy_dir.resolve().name.lower()).strip("-")
    return name or "lab"


def image_recipe_hash() -> str:
    recipe = repr((IMAGE_PACKAGES, sorted(IMAGE_FILES.items()), IMAGE_COMMANDS, MIRROR))
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def assign_addresses(
    lab: str, names: Sequence[tuple[str, tuple[str, ...]]], taken: Sequence[str] = ()
) -> list[LabHost]:
    """Give each new host the next free address of the lab subnet."""
    used = set(taken)
    hosts = list(SUBNET.hosts())[FIRST_HOST_OFFSET - 1 :]
    result = []
    free = (str(a) for a in hosts if str(a) not in used)
    for name, roles in names:
        try:
            address = next(free)
        except StopIteration:
            raise OsdeployError(f"lab: no free address left in {SUBNET}") from None
        result.append(LabHost(lab, name, roles, address))
    return result


def network_host(hosts: Sequence[LabHost]) -> LabHost:
    """The host the provider network hangs off: the first with role network."""
    return next((h for h in hosts if "network" in h.roles), hosts[0])


def provider_cidr(address: str) -> ipaddress.IPv4Network:
    """The lab's external network, named by its network host's address."""
    last = int(ipaddress.ip_address(address)) & 0xFF
    base = int(PROVIDER_SUPERNET.network_address) + (last << 8)
    return ipaddress.IPv4Network((base, 24))


def lab_config(hosts: Sequence[LabHost], services: Sequence[str]) -> dict[str, Any]:
    return {
        "name": hosts[0].lab,
        "ssh": {
            "user": LAB_USER,
            "key": "lab/id_ed25519",
            "port": 22,
            # Lab hosts are re-created with new host keys; real sites keep this on.
            "host_key_checking": False,
        },
        "hosts": [{"name": h.name, "address": h.address, "roles": list(h.roles)} for h in hosts],
        "services": list(services),
        "network": {"internal_address": None, "public_address": None},
        "apt": {"mirror": MIRROR, "proxy": None},
        "overrides": lab_overrides(provider_cidr(network_host(hosts).address)),
    }


def lab_overrides(cidr: ipaddress.IPv4Network) -> dict[str, Any]:
    """Role settings only a lab needs: its tunnel interface, external network, OSDs."""
    gateway = cidr.network_address + 1
    return {
        "ceph_osd_devices": [dict(OSD_FILE)],
        # Swift's device on every storage host: a directory of the host's
        # own filesystem (overlayfs keeps user xattrs), so no mount point.
        "swift_devices": [{"name": "d1"}],
        "swift_mount_check": False,
        # The lab hosts' disk is the machine's, often fuller than the 70 % at
        # which a monitor warns (MON_DISK_LOW); nothing of the lab is at risk.
        "ceph_conf_overrides": {"global": {"mon_data_avail_warn": 10}},
        # Telemetry in minutes, not quarter hours: verify waits for the first
        # measures of the servers it boots (Debian's defaults: 300 s, 60 s).
        "ceilometer_polling_interval": 60,
        "gnocchi_metric_processing_delay": 15,
        "ovn_tunnel_interface": TUNNEL_INTERFACE,
        "ovn_provider_networks": [
            {
                "physnet": "physnet1",
                "bridge": "br-ex",
                "interface": None,
                "address": f"{gateway}/{cidr.prefixlen}",
            }
        ],
        "neutron_external_network": {
            "name": "public",
            "physnet": "physnet1",
            "cidr": str(cidr),
            "gateway": str(gateway),
            "pool_start": str(cidr.network_address + 10),
            "pool_end": str(cidr.network_address + 250),
        },
    }


# --- side effects -----------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return env


def podman(*args: str, check: bool = True, capture: bool = True, stdin: str | None = None) -> str:
    try:
        proc = subprocess.run(
            ["podman", *args],
            env=_env(),
            input=stdin,
            text=True,
            capture_output=capture,
            check=False,
        )
    except FileNotFoundError:
        raise OsdeployError(
            "lab: podman is not installed; run `apt-get install podman runc debootstrap`"
        ) from None
    if check and proc.returncode != 0:
        lines = (proc.stderr or "").strip().splitlines()
        detail = lines[-1] if lines else f"exit code {proc.returncode}"
        raise OsdeployError(f"lab: `podman {' '.join(args[:2])}` failed: {detail}")
    return proc.stdout or ""


def _say(message: str) -> None:
    print(f"lab: {message}", flush=True)


def image_is_current() -> bool:
    out = podman(
        "image",
        "inspect",
        "--format",
        '{{ index .Config.Labels "osdeploy.recipe" }}',
        IMAGE,
        check=False,
    )
    return out.strip() == image_recipe_hash()


def build_image(force: bool = False) -> None:
    if not force and image_is_current():
        return
    if shutil.which("debootstrap") is None:
        raise OsdeployError("lab: debootstrap is not installed; run `apt-get install debootstrap`")
    _say(f"building host image {IMAGE} (debootstrap trixie from {MIRROR}, about 2 minutes)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="osdeploy-image-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(IMAGE_PACKAGES)}",
                "trixie",
                str(root),
                MIRROR,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for rel, text in IMAGE_FILES.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (root / "etc/sudoers.d/osdeploy").chmod(0o440)
        for ssh_key in (root / "etc/ssh").glob("ssh_host_*"):
            ssh_key.unlink()
        for command in IMAGE_COMMANDS:
            subprocess.run([arg.format(root=root) for arg in command], check=True)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            [
                "podman",
                "import",
                "--change",
                "CMD=/sbin/init",
                "--change",
                f"LABEL=osdeploy.recipe={image_recipe_hash()}",
                "-",
                IMAGE,
            ],
            stdin=tar.stdout,
            env=_env(),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        if tar.wait() != 0:
            raise OsdeployError("lab: packing the image root file system failed")
    _say(f"image built in {time.monotonic() - started:.0f} s")


def ensure_network() -> None:
    if not _exists("network", NETWORK):
        gateway = str(next(SUBNET.hosts()))
        podman("network", "create", "--subnet", str(SUBNET), "--gateway", gateway, NETWORK)
    if not _exists("network", TUNNEL_NETWORK):
        # Internal: no default route through it, hosts keep theirs on eth0.
        podman("network", "create", "--internal", "--subnet", str(TUNNEL_SUBNET), TUNNEL_NETWORK)


def network_addresses() -> list[str]:
    """Addresses taken on the lab network, by this lab or another deployment's."""
    if not _exists("network", NETWORK):
        return []
    names = podman("ps", "-a", "--filter", f"network={NETWORK}", "--format", "{{.Names}}").split()
    if not names:
        return []
    out = podman(
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
        *names,
    )
    return out.split()


def _exists(kind: str, name: str) -> bool:
    proc = subprocess.run(["podman", kind, "exists", name], env=_env(), check=False)
    return proc.returncode == 0


def ensure_key(deploy_dir: Path) -> Path:
    key = deploy_dir / "lab" / "id_ed25519"
    if key.exists():
        return key
    key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    key.with_suffix(".pub").write_bytes(public + b" osdeploy-lab\n")
    return key


def start_host(host: LabHost, public_key: str) -> None:
    # One archive per host: apt holds the archive lock for a whole install, so
    # a shared one would make hosts install one after the other. Kept across
    # labs, so a re-created host downloads nothing again.
    archives = APT_ARCHIVES / host.container
    archives.joinpath("partial").mkdir(parents=True, exist_ok=True)
    if _exists("container", host.container):
        podman("start", host.container)
    else:
        podman(
            "run",
            "--detach",
            "--name",
            host.container,
            "--hostname",
            host.name,
            # Named explicitly: podman does not keep the order of --network
            # options, and the ovn role moves eth1's address to br-phy.
            "--network",
            f"{NETWORK}:ip={host.address},mac={host.mac(host.address)},interface_name=eth0",
            "--network",
            f"{TUNNEL_NETWORK}:ip={host.tunnel_address},mac={host.mac(host.tunnel_address)},"
            f"interface_name={TUNNEL_INTERFACE}",
            "--systemd=always",
            "--privileged",
            # The network host passes the machine's traffic on to the
            # external network's floating IPs (route_external_network).
            *(["--sysctl", "net.ipv4.ip_forward=1"] if "network" in host.roles else []),
            "--no-hosts",
            "--label",
            f"osdeploy.lab={host.lab}",
            "--volume",
            f"{archives}:/var/cache/apt/archives",
            IMAGE,
            "/sbin/init",
        )
    podman("exec", host.container, "systemctl", "is-system-running", "--wait", check=False)
    # The hostname resolves to the host's address from the first boot, as on
    # a real server (precheck checks it before the common role manages /etc/hosts).
    podman(
        "exec",
        host.container,
        "sh",
        "-c",
        f"grep -q ' {host.name}$' /etc/hosts || echo '{host.address} {host.name}' >> /etc/hosts",
    )
    podman(
        "exec",
        "-i",
        host.container,
        "sh",
        "-c",
        f"install -d -m 0700 -o {LAB_USER} -g {LAB_USER} /home/{LAB_USER}/.ssh && "
        f"cat > /home/{LAB_USER}/.ssh/authorized_keys && "
        f"chown {LAB_USER}: /home/{LAB_USER}/.ssh/authorized_keys && "
        f"chmod 0600 /home/{LAB_USER}/.ssh/authorized_keys",
        stdin=public_key,
    )
    _wait_for_ssh(host)


# Hosts made from an image before IMAGE_COMMANDS linked dbus's machine id all
# carry the build's id: give each its own (systemd's from the container id).
REPAIR_MACHINE_ID = (
    "test -L /var/lib/dbus/machine-id && exit 0; "
    "rm -f /etc/machine-id /var/lib/dbus/machine-id && systemd-machine-id-setup >/dev/null && "
    "ln -s /etc/machine-id /var/lib/dbus/machine-id && echo repaired"
)


def repair_machine_id(host: LabHost) -> None:
    """Give a running host of an old image its own machine id (a no-op on new ones)."""
    out = podman("exec", host.container, "sh", "-c", REPAIR_MACHINE_ID)
    if "repaired" in out:
        _say(
            f"{host.name}: gave it its own machine id (it had the image build's, shared by "
            "every host of that image)"
        )


def _wait_for_ssh(host: LabHost, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host.address, 22), timeout=2) as conn:
                if conn.recv(4).startswith(b"SSH"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise OsdeployError(
                f"lab: {host.name} ({host.address}) does not answer SSH after {timeout:.0f} s; "
                f"see `podman logs {host.container}`"
            )
        time.sleep(1)


def external_route(data: Mapping[str, Any]) -> tuple[str, str] | None:
    """(external network CIDR, its network host's address) of a lab config.

    None when the config has no lab external network (or one outside
    PROVIDER_SUPERNET: the machine routes only the lab's own addresses).
    """
    external = (data.get("overrides") or {}).get("neutron_external_network") or {}
    hosts = [
        LabHost("", h["name"], tuple(h.get("roles", ())), h["address"])
        for h in data.get("hosts", [])
    ]
    if not external.get("cidr") or not hosts:
        return None
    cidr = ipaddress.ip_network(external["cidr"])
    if not cidr.subnet_of(PROVIDER_SUPERNET):  # type: ignore[arg-type]
        return None
    return str(cidr), network_host(hosts).address


def route_external_network(deploy_dir: Path, present: bool) -> None:
    """Route (or stop routing) the lab's external network to its network host."""
    route = external_route(_read_config(deploy_dir) or {})
    if route is None:
        return
    cidr, via = route
    argv = ["ip", "route", "replace" if present else "del", cidr, "via", via]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if present and proc.returncode != 0:
        _say(
            f"could not route {cidr} via {via}: {proc.stderr.strip()} (floating IPs answer "
            "from the network host only)"
        )
    elif present:
        _say(f"floating IPs of {cidr} are reachable from this machine (route via {via})")


def _read_config(deploy_dir: Path) -> dict[str, Any] | None:
    path = deploy_dir / "osdeploy.yml"
    if not path.exists():
        return None
    data = yaml.safe_load(path.read_text())
    return data if isinstance(data, dict) else None


def _write_config(deploy_dir: Path, data: dict[str, Any]) -> Path:
    path = deploy_dir / "osdeploy.yml"
    header = (
        "# osdeploy.yml written by `osdeploy lab up`: these hosts are podman containers\n"
        "# on this machine. Edit services/overrides freely; `osdeploy lab up --add`\n"
        "# appends hosts.\n"
    )
    path.write_text(header + yaml.safe_dump(data, sort_keys=False))
    return path


def cmd_image(force: bool) -> int:
    build_image(force=force)
    _say(f"image {IMAGE} is current (recipe {image_recipe_hash()})")
    return 0


def cmd_up(
    deploy_dir: Path,
    hosts: list[tuple[str, tuple[str, ...]]],
    add: bool,
    services: list[str] | None,
) -> int:
    deploy_dir.mkdir(parents=True, exist_ok=True)
    existing = _read_config(deploy_dir)
    if add and existing is None:
        raise OsdeployError(
            f"lab: --add needs an existing lab in {deploy_dir}; run `osdeploy lab up` first"
        )
    lab = lab_name(deploy_dir)
    current = _lab_hosts(deploy_dir)
    if add:
        known = {h.name for h in current}
        clash = [name for name, _ in hosts if name in known]
        if clash:
            raise OsdeployError(f"lab: host {clash[0]} is already in the lab; pick another name")
        new = assign_addresses(lab, hosts, [h.address for h in current] + network_addresses())
        wanted = current + new
        wanted_services = list(existing["services"]) if existing else []
    else:
        if current and any(_exists("container", h.container) for h in current):
            # Already up: start what was stopped, change nothing else.
            for host in current:
                if _exists("container", host.container):
                    podman("start", host.container)
                    repair_machine_id(host)
            route_external_network(deploy_dir, present=True)
            _say(
                f"lab already up in {deploy_dir}; `osdeploy lab up --add NAME:ROLES` grows it,"
                " `osdeploy lab down` removes it"
            )
            return 0
        wanted = assign_addresses(lab, hosts or list(DEFAULT_HOSTS), network_addresses())
        new = wanted
        # Default: every OpenStack service that has a role (and its dependencies).
        wanted_services = list(services or load_catalog().deployable("openstack"))
    build_image()
    ensure_network()
    key = ensure_key(deploy_dir)
    public_key = key.with_suffix(".pub").read_text()
    for host in current if add else []:
        if _exists("container", host.container):
            repair_machine_id(host)
    for host in new:
        _say(f"starting {host.name} ({host.address}, roles {','.join(host.roles)})")
        start_host(host, public_key)
    data = existing if (add and existing) else lab_config(wanted, wanted_services)
    data["hosts"] = [{"name": h.name, "address": h.address, "roles": list(h.roles)} for h in wanted]
    path = _write_config(deploy_dir, data)
    _say(f"{len(new)} host(s) up; config written to {path}")
    route_external_network(deploy_dir, present=True)
    return 0


def _lab_hosts(deploy_dir: Path) -> list[LabHost]:
    data = _read_config(deploy_dir) or {}
    lab = lab_name(deploy_dir)
    return [LabHost(lab, h["name"], tuple(h["roles"]), h["address"]) for h in data.get("hosts", [])]


def cmd_down(deploy_dir: Path) -> int:
    route_external_network(deploy_dir, present=False)
    hosts = [h for h in _lab_hosts(deploy_dir) if _exists("container", h.container)]
    if hosts:
        # One call: podman stops and removes them side by side (one after the
        # other, each took some 20 s to delete its files).
        podman("rm", "--force", "--time", "5", *(h.container for h in hosts))
        for host in hosts:
            _say(f"removed {host.name}")
    users = podman("ps", "-a", "--filter", f"network={NETWORK}", "--format", "{{.Names}}")
    if not users.strip():
        for name in (NETWORK, TUNNEL_NETWORK):
            if _exists("network", name):
                podman("network", "rm", name)
    _say("lab is down (image, apt cache, passwords and config are kept)")
    return 0


def cmd_status(deploy_dir: Path) -> int:
    hosts = _lab_hosts(deploy_dir)
    if not hosts:
        _say(f"no lab hosts in {deploy_dir}")
        return 0
    for host in hosts:
        state = "absent"
        if _exists("container", host.container):
            state = podman("inspect", "--format", "{{.State.Status}}", host.container).strip()
            if state == "running":
                boot = podman(
                    "exec", host.container, "systemctl", "is-system-running", check=False
                ).strip()
                state = f"running, systemd {boot}"
        print(f"{host.name:<10} {host.address:<15} {','.join(host.roles):<28} {state}")
    return 0


def _chosen(deploy_dir: Path, names: list[str]) -> list[LabHost]:
    """The lab hosts named (every one when none is), or an error naming the unknown."""
    hosts = _lab_hosts(deploy_dir)
    unknown = [name for name in names if name not in {h.name for h in hosts}]
    if not hosts:
        raise OsdeployError(f"lab: no lab hosts in {deploy_dir}; `osdeploy lab up` makes them")
    if unknown:
        raise OsdeployError(
            f"lab: no host {unknown[0]!r} in this lab (hosts: {', '.join(h.name for h in hosts)})"
        )
    return [h for h in hosts if not names or h.name in names]


def cmd_stop(deploy_dir: Path, names: list[str]) -> int:
    """Shut lab hosts down (as a power-off after a clean shutdown); `start` boots them."""
    chosen = _chosen(deploy_dir, names)
    podman("stop", "--time", "60", *(h.container for h in chosen))
    _say(f"stopped {', '.join(h.name for h in chosen)}")
    return 0


def cmd_restart(deploy_dir: Path, names: list[str], start_only: bool = False) -> int:
    """Restart lab hosts together, as a reboot of the machine restarts them all
    (``start_only``: boot stopped ones)."""
    chosen = _chosen(deploy_dir, names)
    started = time.monotonic()
    # systemd in each container shuts down cleanly (podman's stop signal for
    # --systemd containers), then boots again: the services' own start order.
    if start_only:
        podman("start", *(h.container for h in chosen))
    else:
        podman("restart", "--time", "60", *(h.container for h in chosen))
    for host in chosen:
        state = podman(
            "exec", host.container, "systemctl", "is-system-running", "--wait", check=False
        ).strip()
        _wait_for_ssh(host)
        _say(f"{host.name} is back (systemd {state}) after {time.monotonic() - started:.0f} s")
    return 0


def cmd_ssh(deploy_dir: Path, host: str, command: list[str]) -> int:
    hosts = {h.name: h for h in _lab_hosts(deploy_dir)}
    if host not in hosts:
        raise OsdeployError(
            f"lab: no host {host!r} in this lab (hosts: {', '.join(hosts) or 'none'})"
        )
    argv = [
        "ssh",
        "-i",
        str(deploy_dir / "lab" / "id_ed25519"),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        f"{LAB_USER}@{hosts[host].address}",
        *command,
    ]
    sys.stdout.flush()
    return subprocess.call(argv)
