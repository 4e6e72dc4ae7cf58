"""Verify checks of the compute path: Placement, Neutron and Nova, for real.

The Nova checks are one scenario, run in order, each a step that reports on
its own line: network (network, subnet, router with an external gateway),
servers (one on every compute host, pinned with availability zone
``nova:HOST``), console (the test image's boot marker), cross-host ping (each
server pings every other one over the Geneve network and prints the result on
its console), floating IP (pinged from a network host), SSH (from that
network host into the server behind the floating IP, with the key Nova's
metadata service gave the guest), live migration (the server with the
floating IP moves to another compute host and still answers),
lifecycle (stop, start, delete; nothing left behind: servers, ports, floating
IPs, the key pair, libvirt domains). Steps hand their resources on in ``ctx.scratch``; the
last step cleans up, and the first one removes what an interrupted earlier
run left.

Servers boot the test image of ``osdeploy.testimage`` (kernel + initramfs,
direct kernel boot) under whatever virt type the computes use.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from osdeploy.remote import run_on_host
from osdeploy.testimage import (
    GLANCE_FORMATS,
    MARKER_SSHD,
    MARKER_UP,
    PING_PREFIX,
    build_test_image,
    glance_properties,
)
from osdeploy.verify import ceph
from osdeploy.verify.core import PREFIX, CheckFailed, VerifyContext, check

NET_CIDR = "192.168.77.0/24"
FLAVOR = {"name": f"{PREFIX}-tiny", "ram": 192, "vcpus": 1, "disk": 1}
IMAGE_NAMES = {"kernel": "osdeploy-test-kernel", "ramdisk": "osdeploy-test-ramdisk"}
IMAGE_NAME = "osdeploy-test"
#: The servers' key pair; its private half stays on the first network host
#: (the login user's ~/.ssh), which reaches the floating IPs.
KEYPAIR = f"{PREFIX}-key"
KEY_FILE = "~/.ssh/osdeploy-verify"
SSH_TIMEOUT = 180
#: Seconds a server may take to become ACTIVE, and its console to show a line.
BOOT_TIMEOUT = 300
CONSOLE_TIMEOUT = 240
PING_TIMEOUT = 240
#: A floating IP answers within seconds; under load the first ping after
#: the gateway's first ARP for the server's chassis may take a while. (Up to
#: 600 s when br-phy learned its own MAC from frames a hairpin switch port
#: sent back: the ovn role guards against that now, docs/benchmarks.md.)
FIP_TIMEOUT = 180
DELETE_TIMEOUT = 180
MIGRATION_TIMEOUT = 300
LEFTOVER_TIMEOUT = 60


# -- pure helpers --------------------------------------------------------------


def ping_user_data(peers: Iterable[str]) -> str:
    """The test image's user data: one ``ping <address>`` line per peer."""
    return "".join(f"ping {peer}\n" for peer in peers)


def ping_results(console: str, prefix: str) -> dict[str, str]:
    """Last reported result per address from console lines ``<prefix> <addr> ok|failed``."""
    results: dict[str, str] = {}
    for line in console.splitlines():
        parts = line.strip().split()
        if len(parts) >= 3 and parts[0] == prefix and parts[2] in ("ok", "failed"):
            results[parts[1]] = parts[2]
    return results


def missing_agents(
    agents: Iterable[Mapping[str, Any]], wanted: Mapping[str, Iterable[str]]
) -> list[str]:
    """'<kind> on <host>' for every wanted (kind -> hosts) agent not alive and up."""
    alive = {
        (str(a.get("binary", "")), str(a.get("host", "")))
        for a in agents
        if a.get("is_alive") and a.get("is_admin_state_up", True)
    }
    return [
        f"{binary} on {host}"
        for binary, hosts in wanted.items()
        for host in hosts
        if (binary, host) not in alive
    ]


# -- edges ---------------------------------------------------------------------


#: Seconds between two looks at something a check waits for: an API read
#: (a server's, a volume's status) costs a few milliseconds, so a short
#: interval ends each wait within a second of its end (a check makes
#: dozens of waits). SLOW_POLL for what costs more per look: an SSH login
#: to a guest, a command on a host, a console log, every agent.
POLL = 1.0
SLOW_POLL = 2.0

#: Seconds an agent or a nova service may take to report up: after a host
#: boots, nova-compute first starts again the servers that ran there.
REPORT_TIMEOUT = 120.0


def _until_reported(missing: Callable[[], list[str]], failure: Callable[[list[str]], str]) -> None:
    """Wait up to REPORT_TIMEOUT until ``missing()`` is empty; else CheckFailed(failure(last))."""
    last: list[str] = []

    def none_missing() -> bool:
        last[:] = missing()
        return not last

    try:
        _wait("reports", REPORT_TIMEOUT, none_missing, interval=SLOW_POLL)
    except CheckFailed:
        raise CheckFailed(failure(last)) from None


def _wait(
    what: str,
    timeout: float,
    probe: Callable[[], Any],
    interval: float = POLL,
    explain: Callable[[str], str] | None = None,
) -> Any:
    """Call probe until it returns something true; after timeout, CheckFailed
    with "<what> (waited <n> s)", or what ``explain`` makes of that (what was
    seen last, where to look)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            message = f"{what} (waited {timeout:.0f} s)"
            raise CheckFailed(explain(message) if explain else message)
        time.sleep(interval)


def _on_host(ctx: VerifyContext, host: str, command: str) -> tuple[int, str]:
    code, out, err = run_on_host(ctx.config, host, command)
    return code, out + err


def _need(ctx: VerifyContext, key: str, step: str) -> Any:
    if key not in ctx.scratch:
        raise CheckFailed(f"skipped: {step} did not succeed earlier in this run")
    return ctx.scratch[key]


# -- placement, neutron --------------------------------------------------------


@check("placement_api")
def check_placement_api(ctx: VerifyContext) -> str:
    providers = list(ctx.admin().placement.resource_providers())
    names = sorted(p.name for p in providers)
    return f"{len(providers)} resource provider(s)" + (f": {', '.join(names)}" if names else "")


@check("neutron_agents")
def check_neutron_agents(ctx: VerifyContext) -> str:
    # ML2/OVN reports every chassis as binary ovn-controller (agent type "OVN
    # Controller Gateway agent" on gateways) and each metadata agent.
    wanted = {
        "ovn-controller": ctx.group_hosts("neutron", "ovn_controller"),
        "neutron-ovn-metadata-agent": ctx.group_hosts("neutron", "neutron_ovn_metadata"),
    }
    agents: list[dict[str, Any]] = []

    def not_alive() -> list[str]:
        agents[:] = [a.to_dict() for a in ctx.admin().network.agents()]
        return missing_agents(agents, wanted)

    def failure(missing: list[str]) -> str:
        seen = sorted(f"{a.get('binary')}@{a.get('host')}" for a in agents)
        return (
            f"not alive after {REPORT_TIMEOUT:.0f} s: {', '.join(missing)} "
            f"(agents seen: {', '.join(seen) or 'none'}) — "
            "check ovn-controller and neutron-ovn-metadata-agent on those hosts"
        )

    _until_reported(not_alive, failure)
    return f"{len(agents)} agents alive: " + ", ".join(
        f"{len(hosts)} {binary}" for binary, hosts in wanted.items() if hosts
    )


# -- nova ----------------------------------------------------------------------


@check("nova_services")
def check_nova_services(ctx: VerifyContext) -> str:
    wanted = [("nova-compute", h) for h in ctx.group_hosts("nova", "nova_compute")]
    wanted += [
        (b, h)
        for b in ("nova-conductor", "nova-scheduler")
        for h in ctx.group_hosts("nova", "nova_api")
    ]

    def not_up() -> list[str]:
        services = list(ctx.admin().compute.services())
        up = {(s.binary, s.host) for s in services if s.state == "up" and s.status == "enabled"}
        return [f"{b} on {h}" for b, h in wanted if (b, h) not in up]

    _until_reported(
        not_up,
        lambda missing: (
            f"not up and enabled after {REPORT_TIMEOUT:.0f} s: {', '.join(missing)} — "
            "see /var/log/nova/ on those hosts"
        ),
    )
    return f"{len(wanted)} services up: " + ", ".join(sorted({b for b, _ in wanted}))


@check("nova_hypervisors")
def check_nova_hypervisors(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    computes = ctx.group_hosts("nova", "nova_compute")
    hypervisors: dict[str, Any] = {}

    def not_up() -> list[str]:
        hypervisors.clear()
        hypervisors.update(
            {h.name.split(".")[0]: h for h in conn.compute.hypervisors(details=True)}
        )
        return [c for c in computes if c not in hypervisors or hypervisors[c].state != "up"]

    _until_reported(
        not_up,
        lambda missing: (
            f"hypervisor missing or down after {REPORT_TIMEOUT:.0f} s: {', '.join(missing)} — "
            "a new compute is mapped by `osdeploy deploy` (cell discovery); see "
            "nova-compute.log there"
        ),
    )
    providers = {p.name.split(".")[0] for p in conn.placement.resource_providers()}
    unplaced = [c for c in computes if c not in providers]
    if unplaced:
        raise CheckFailed(f"no placement resource provider for {', '.join(unplaced)}")
    kinds = sorted({str(hypervisors[c].hypervisor_type) for c in computes})
    return f"{len(computes)} hypervisors up ({', '.join(kinds)}), each in placement"


#: What this scenario hands on in ``ctx.scratch``. Its first and last steps
#: forget only these: other services' checks run beside it and keep theirs.
SCRATCH_KEYS = (
    "network",
    "subnet",
    "router",
    "group",
    "external",
    "servers",
    "ports",
    "addresses",
    "floating_ip",
)


def _forget(ctx: VerifyContext) -> None:
    for key in SCRATCH_KEYS:
        ctx.scratch.pop(key, None)


def _cleanup(ctx: VerifyContext) -> list[str]:
    """Delete every resource of this scenario (by name prefix); what was removed."""
    conn = ctx.admin()
    removed: list[str] = []
    servers = [s for s in conn.compute.servers(all_projects=True) if s.name.startswith(PREFIX)]
    for server in servers:
        conn.compute.delete_server(server)
        removed.append(f"server {server.name}")
    for server in servers:
        conn.compute.wait_for_delete(server, interval=POLL, wait=DELETE_TIMEOUT)
    if conn.compute.find_keypair(KEYPAIR) is not None:
        conn.compute.delete_keypair(KEYPAIR)
        removed.append(f"key pair {KEYPAIR}")
    ports = {p.id for p in conn.network.ports() if p.name.startswith(PREFIX)}
    for fip in conn.network.ips():
        if fip.port_id in ports or (fip.description or "").startswith(PREFIX):
            conn.network.delete_ip(fip)
            removed.append(f"floating IP {fip.floating_ip_address}")
    for router in conn.network.routers():
        if not router.name.startswith(PREFIX):
            continue
        for port in conn.network.ports(
            device_id=router.id, device_owner="network:router_interface"
        ):
            for fixed in port.fixed_ips:
                conn.network.remove_interface_from_router(router, subnet_id=fixed["subnet_id"])
        conn.network.delete_router(router)
        removed.append(f"router {router.name}")
    net = conn.network
    for kind, listing, delete in (
        ("port", net.ports, net.delete_port),
        ("network", net.networks, net.delete_network),
        ("security group", net.security_groups, net.delete_security_group),
    ):
        for resource in listing():
            if resource.name.startswith(PREFIX):
                delete(resource)
                removed.append(f"{kind} {resource.name}")
    return removed


@check("compute_network")
def check_compute_network(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    _forget(ctx)
    leftovers = _cleanup(ctx)
    external = [n for n in conn.network.networks(is_router_external=True)]
    if not external:
        raise CheckFailed(
            "no external network — set neutron_external_network in overrides "
            "(the lab does) or create one, then verify again"
        )
    network = conn.network.create_network(name=f"{PREFIX}-net")
    subnet = conn.network.create_subnet(
        name=f"{PREFIX}-subnet", network_id=network.id, ip_version=4, cidr=NET_CIDR
    )
    router = conn.network.create_router(
        name=f"{PREFIX}-router", external_gateway_info={"network_id": external[0].id}
    )
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)
    group = conn.network.create_security_group(
        name=f"{PREFIX}-sg", description="osdeploy verify: ICMP and SSH from anywhere"
    )
    for rule in (
        {"protocol": "icmp"},
        {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22},
    ):
        conn.network.create_security_group_rule(
            security_group_id=group.id,
            direction="ingress",
            ethertype="IPv4",
            remote_ip_prefix="0.0.0.0/0",
            **rule,
        )
    ctx.scratch.update(
        network=network, subnet=subnet, router=router, group=group, external=external[0]
    )
    note = f"; removed {len(leftovers)} leftovers of an earlier run" if leftovers else ""
    return (
        f"network, subnet {NET_CIDR}, router with gateway on {external[0].name}, "
        f"security group{note}"
    )


def _ensure_test_images(conn: Any) -> str:
    """The test image in Glance (kernel, ramdisk and boot disk), uploaded when changed."""
    built = build_test_image()
    kernel = _upload_once(conn, IMAGE_NAMES["kernel"], built.kernel, GLANCE_FORMATS["kernel"], {})
    ramdisk = _upload_once(conn, IMAGE_NAMES["ramdisk"], built.initrd, GLANCE_FORMATS["initrd"], {})
    properties = glance_properties(kernel, ramdisk)
    return _upload_once(conn, IMAGE_NAME, built.disk, GLANCE_FORMATS["disk"], properties)


def _upload_once(conn: Any, name: str, path: Path, fmt: str, properties: dict[str, str]) -> str:
    want = hashlib.sha512(path.read_bytes()).hexdigest()
    for image in conn.image.images(name=name):
        # kernel_id, ramdisk_id, os_command_line are attributes of the sdk's
        # Image; other properties land in .properties.
        same_props = all(
            str(getattr(image, k, None) or (image.properties or {}).get(k)) == v
            for k, v in properties.items()
        )
        if image.hash_value == want and image.status == "active" and same_props:
            return str(image.id)
        conn.image.delete_image(image)
    image = conn.image.create_image(
        name=name,
        filename=str(path),
        disk_format=fmt,
        container_format=fmt,
        visibility="public",
        wait=True,
        **properties,
    )
    return str(image.id)


@check("compute_servers", one_attempt=True)
def check_compute_servers(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    network = _need(ctx, "network", "compute_network")
    group = ctx.scratch["group"]
    image_id = _ensure_test_images(conn)
    flavor = conn.compute.find_flavor(FLAVOR["name"])
    if flavor is None:
        flavor = conn.compute.create_flavor(**FLAVOR)
    computes = ctx.group_hosts("nova", "nova_compute")
    _ensure_keypair(ctx, conn)
    ports = {
        host: conn.network.create_port(
            name=f"{PREFIX}-{host}", network_id=network.id, security_group_ids=[group.id]
        )
        for host in computes
    }
    addresses = {host: port.fixed_ips[0]["ip_address"] for host, port in ports.items()}
    servers = {}
    for host in computes:
        peers = [addresses[h] for h in computes if h != host]
        servers[host] = conn.compute.create_server(
            name=f"{PREFIX}-{host}",
            image_id=image_id,
            flavor_id=flavor.id,
            networks=[{"port": ports[host].id}],
            availability_zone=f"nova:{host}",
            key_name=KEYPAIR,
            user_data=base64.b64encode(ping_user_data(peers).encode()).decode(),
        )
    started = time.monotonic()
    for host, server in servers.items():
        try:
            servers[host] = conn.compute.wait_for_server(
                server, status="ACTIVE", failures=["ERROR"], interval=POLL, wait=BOOT_TIMEOUT
            )
        except Exception as exc:
            fault = getattr(conn.compute.get_server(server), "fault", None) or {}
            raise CheckFailed(
                f"server on {host} did not become ACTIVE: {fault.get('message') or exc} — "
                f"see nova-compute.log on {host}"
            ) from exc
    wrong = [h for h, s in servers.items() if s.compute_host != h]
    if wrong:
        raise CheckFailed(f"servers not on the host they were pinned to: {', '.join(wrong)}")
    ctx.scratch.update(servers=servers, ports=ports, addresses=addresses)
    return (
        f"{len(servers)} servers ACTIVE in {time.monotonic() - started:.0f} s, one on each of "
        f"{', '.join(computes)}"
    )


def _console(conn: Any, server: Any) -> str:
    return str(conn.compute.get_server_console_output(server).get("output") or "")


@check("compute_console")
def check_compute_console(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    servers = _need(ctx, "servers", "compute_servers")
    for host, server in servers.items():
        address = ctx.scratch["addresses"][host]

        def up(server: Any = server, address: str = address) -> bool:
            lines = _console(conn, server).splitlines()
            return any(MARKER_UP in line and address in line for line in lines)

        _wait(
            f"console of the server on {host} never showed {MARKER_UP!r} with ip={address} "
            "(no DHCP answer from OVN?)",
            CONSOLE_TIMEOUT,
            up,
            interval=SLOW_POLL,
        )
    return f"{len(servers)} consoles show {MARKER_UP!r} with the address Neutron gave"


@check("compute_cross_host_ping")
def check_compute_cross_host_ping(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    servers = _need(ctx, "servers", "compute_servers")
    addresses = ctx.scratch["addresses"]
    if len(servers) < 2:
        return "one compute host: nothing to ping across hosts"

    def all_ok() -> bool:
        for host, server in servers.items():
            results = ping_results(_console(conn, server), PING_PREFIX)
            peers = [a for h, a in addresses.items() if h != host]
            if any(results.get(peer) != "ok" for peer in peers):
                return False
        return True

    def seen() -> dict[str, Any]:
        return {h: ping_results(_console(conn, s), PING_PREFIX) for h, s in servers.items()}

    _wait(
        "servers do not reach each other",
        PING_TIMEOUT,
        all_ok,
        interval=SLOW_POLL,
        explain=lambda m: (
            f"{m}: {seen()} — check ovn-controller and the Geneve tunnel (ovn-sbctl show)"
        ),
    )
    pairs = len(servers) * (len(servers) - 1)
    return f"{pairs} pings across hosts over Geneve answered (seen on the servers' consoles)"


def _network_host(ctx: VerifyContext) -> str:
    gateways = [h.name for h in ctx.config.hosts if "network" in h.roles]
    if not gateways:
        raise CheckFailed("no host with role network to reach the floating IPs from")
    return gateways[0]


def _ensure_keypair(ctx: VerifyContext, conn: Any) -> None:
    """The servers' key pair: made on the first network host, its public half in Nova."""
    host = _network_host(ctx)
    code, out = _on_host(
        ctx,
        host,
        f"mkdir -p -m 0700 ~/.ssh && {{ test -f {KEY_FILE} || "
        f"ssh-keygen -q -t ed25519 -N '' -C {KEYPAIR} -f {KEY_FILE}; }} && cat {KEY_FILE}.pub",
    )
    public = out.strip().splitlines()[-1] if out.strip() else ""
    if code != 0 or not public.startswith("ssh-"):
        raise CheckFailed(f"could not make the verify SSH key on {host}: {out.strip()[:200]}")
    existing = conn.compute.find_keypair(KEYPAIR)
    if existing is not None and existing.public_key.split()[:2] == public.split()[:2]:
        return
    if existing is not None:
        conn.compute.delete_keypair(existing)
    conn.compute.create_keypair(name=KEYPAIR, public_key=public)


def _ping_from_network_host(ctx: VerifyContext, address: str, what: str) -> str:
    """Wait until ``address`` answers ping from the first network host.

    Returns "answers ping from <host> (after <n> s)".
    """
    gateway = _network_host(ctx)
    # As root: the login user may lack the raw-socket capability for ping.
    command = f"sudo ping -c 2 -W 2 {shlex.quote(address)}"
    last: list[str] = [""]

    def answers() -> bool:
        code, out = _on_host(ctx, gateway, command)
        last[0] = out.strip().splitlines()[-1] if out.strip() else f"exit code {code}"
        return code == 0

    started = time.monotonic()
    _wait(
        f"floating IP {address} ({what})",
        FIP_TIMEOUT,
        answers,
        explain=lambda m: (
            f"{m} does not answer ping from {gateway}: {last[0]} — check the "
            "gateway chassis (ovn-nbctl lr-nat-list) and br-ex on the network host"
        ),
    )
    return f"answers ping from {gateway} (after {time.monotonic() - started:.0f} s)"


@check("compute_floating_ip", one_attempt=True)
def check_compute_floating_ip(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    servers = _need(ctx, "servers", "compute_servers")
    host = next(iter(servers))
    fip = conn.network.create_ip(
        floating_network_id=ctx.scratch["external"].id,
        port_id=ctx.scratch["ports"][host].id,
        description=f"{PREFIX} floating IP",
    )
    address = fip.floating_ip_address
    ctx.scratch["floating_ip"] = address
    answer = _ping_from_network_host(ctx, address, f"server on {host}")
    return f"floating IP {address} (server on {host}) {answer}"


@check("compute_ssh")
def check_compute_ssh(ctx: VerifyContext) -> str:
    """SSH from the network host into the server behind the floating IP, as root
    with the verify key: the guest took it from the metadata service."""
    conn = ctx.admin()
    servers = _need(ctx, "servers", "compute_servers")
    address = _need(ctx, "floating_ip", "compute_floating_ip")
    host = next(iter(servers))
    fixed = ctx.scratch["addresses"][host]
    _wait(
        f"console of the server on {host} never showed {MARKER_SSHD!r}",
        CONSOLE_TIMEOUT,
        lambda: MARKER_SSHD in _console(conn, servers[host]),
        interval=SLOW_POLL,
    )
    gateway = _network_host(ctx)
    command = (
        f"ssh -i {KEY_FILE} -o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=no "
        f"-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@{shlex.quote(address)} "
        "'cat /run/testimage/ip; uname -r'"
    )
    seen: list[str] = [""]

    def logged_in() -> list[str] | None:
        code, out = _on_host(ctx, gateway, command)
        seen[0] = out.strip()[-300:] or f"exit code {code}"
        lines = out.split()
        return lines if code == 0 and lines[:1] == [fixed] else None

    started = time.monotonic()
    lines = _wait(
        f"ssh root@{address} from {gateway}",
        SSH_TIMEOUT,
        logged_in,
        interval=SLOW_POLL,
        explain=lambda m: (
            f"{m}: {seen[0]} — see the server's console (OSDEPLOY-SSHKEY: did "
            "the metadata service give the key?) and the security group's port 22 rule"
        ),
    )
    return (
        f"ssh root@{address} from {gateway} with the key from the metadata service "
        f"(after {time.monotonic() - started:.0f} s): the guest has ip {lines[0]}, "
        f"kernel {lines[1]}"
    )


def _disk_in_rbd(ctx: VerifyContext, server_id: str) -> bool:
    """Whether the server's disk is an image in Ceph's vms pool (Nova's rbd
    images_type), looked up where osdeploy.verify.ceph says."""
    if "ceph" not in ctx.plan:
        return False
    listing = ceph.run(ctx, "vms", "rbd{who} ls --pool {pool}")
    return f"{server_id}_disk" in listing.split()


@check("compute_live_migration", one_attempt=True)
def check_compute_live_migration(ctx: VerifyContext) -> str:
    """Live-migrate the server with the floating IP to the next compute host
    (its disk in Ceph: shared storage, else a block migration); it must land
    there and still answer."""
    conn = ctx.admin()
    servers = _need(ctx, "servers", "compute_servers")
    address = _need(ctx, "floating_ip", "compute_floating_ip")
    if len(servers) < 2:
        return "one compute host: nowhere to live-migrate to"
    source = next(iter(servers))
    target = next(h for h in servers if h != source)
    shared = _disk_in_rbd(ctx, servers[source].id)
    started = time.monotonic()
    try:
        conn.compute.live_migrate_server(servers[source], host=target, block_migration="auto")
    except Exception as exc:
        # The request sent again after a dropped or late answer (connect
        # retries) meets the migration the first one started: wait for it.
        if "task_state migrating" not in str(exc):
            raise

    def settled() -> Any:
        server = conn.compute.get_server(servers[source])
        done = server.task_state is None and server.status in ("ACTIVE", "ERROR")
        return server if done else None

    server = _wait(
        f"live migration {source} -> {target} did not finish",
        MIGRATION_TIMEOUT,
        settled,
        explain=lambda m: f"{m} — see nova-compute.log on {source} and {target}",
    )
    if server.status != "ACTIVE" or server.compute_host != target:
        raise CheckFailed(
            f"live migration {source} -> {target} failed: the server is {server.status} on "
            f'{server.compute_host} — see nova-compute.log on {source} ("Live Migration '
            f'failure") and {target}'
        )
    took = time.monotonic() - started
    servers[source] = server
    answer = _ping_from_network_host(ctx, address, f"server migrated to {target}")
    how = "disk in Ceph (vms pool), no block copy" if shared else "block migration over SSH"
    return (
        f"server moved {source} -> {target} in {took:.0f} s ({how}); "
        f"its floating IP {address} {answer}"
    )


@check("compute_lifecycle", one_attempt=True)
def check_compute_lifecycle(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    steps: list[str] = []
    servers = ctx.scratch.get("servers", {})
    if servers:
        host, server = next(iter(servers.items()))
        conn.compute.stop_server(server)
        conn.compute.wait_for_server(
            server, status="SHUTOFF", failures=["ERROR"], interval=POLL, wait=120
        )
        conn.compute.start_server(server)
        conn.compute.wait_for_server(
            server, status="ACTIVE", failures=["ERROR"], interval=POLL, wait=120
        )
        steps.append(f"stopped and started the server on {server.compute_host or host}")
    ids = {s.id for s in servers.values()}
    removed = _cleanup(ctx)
    _forget(ctx)
    left: list[str] = []

    def nothing_left() -> bool:
        # Nova answers GET with status DELETED before the instance leaves its
        # listing: what is still there is looked at again for a while.
        left[:] = [f"port {p.name}" for p in conn.network.ports() if p.name.startswith(PREFIX)]
        left.extend(
            f"server {s.name} ({s.status})"
            for s in conn.compute.servers(all_projects=True)
            if s.name.startswith(PREFIX)
        )
        for host in ctx.group_hosts("nova", "nova_compute"):
            code, out = _on_host(ctx, host, "sudo virsh -c qemu:///system list --all --uuid")
            if code != 0:
                raise CheckFailed(f"virsh on {host} failed: {out.strip()[:200]}")
            left.extend(f"libvirt domain {u} on {host}" for u in out.split() if u in ids)
        return not left

    _wait(
        "still there after delete",
        LEFTOVER_TIMEOUT,
        nothing_left,
        interval=SLOW_POLL,
        explain=lambda m: f"left behind after delete: {', '.join(left)} ({m})",
    )
    steps.append(f"deleted {len(removed)} resources; no servers, ports or libvirt domains left")
    return "; ".join(steps)
