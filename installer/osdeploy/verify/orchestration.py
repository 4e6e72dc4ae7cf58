"""Verify checks of Heat: its engines, then stacks as a user makes them, through both APIs.

- `heat_services`: a heat-engine up on every Heat host (Debian runs one
  per worker, each registers itself).
- `heat_stack_hot`: ``docs/examples/heat-server.yaml`` as a stack: network,
  router to the external network, security group, port, server, floating
  IP, a wait condition the server signals with its own id (read from the
  metadata service), and with Cinder a volume attached. It must complete,
  the signal carry that server's id, the console show the test image's
  markers and the floating IP answer ping from the network host.
- `heat_stack_update`: the same stack updated in place (``--existing``,
  ``extra_servers`` 0 -> 1): one server more in its resource group, every
  other resource kept (same physical ids).
- `heat_stack_cfn`: ``docs/examples/heat-instance-cfn.json``, a template in
  AWS CloudFormation format (VPC, subnet, instance), through the native API.
  Started beside `heat_stack_hot`: the two guests boot at once.
- `heat_cfn_api`: the CloudFormation Query API with an AWS client (boto3,
  an EC2 credential made for it): both stacks listed and described with the
  status and outputs the native API gives.
- `heat_stack_delete`: both stacks deleted; none of their servers, ports,
  volumes, floating IPs, networks, subnets, routers or security groups left
  (by the physical ids Heat listed before the delete, and by name), nor the
  stack's project in Heat's stack domain.

Stacks and what Heat names after them start with HEAT_PREFIX, not
core.PREFIX: the compute scenario removes everything named PREFIX* in every
project when it starts and ends, beside these checks. The checks after
`heat_stack_hot` find the stacks by name in the cloud, so that a check run
without them (`osdeploy verify --skip`) finds what an earlier run made.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from osdeploy import PROJECT_ROOT
from osdeploy.testimage import MARKER_BOOTED, MARKER_UP, MARKER_USERDATA
from osdeploy.verify.compute import (
    CONSOLE_TIMEOUT,
    FLAVOR,
    IMAGE_NAME,
    LEFTOVER_TIMEOUT,
    POLL,
    REPORT_TIMEOUT,
    SLOW_POLL,
    _console,
    _ping_from_network_host,
    _until_reported,
    _wait,
)
from osdeploy.verify.core import (
    API_TIMEOUT,
    CheckFailed,
    VerifyContext,
    check,
    new_ec2_credential,
    remove_ec2_credentials,
)
from osdeploy.verify.net import NET_TIMEOUT

SERVICE = "heat"
#: Name prefix of the stacks (and so of what Heat names after them) and of
#: the EC2 credentials of `heat_cfn_api`.
HEAT_PREFIX = "osdeploy-heat"
HOT_STACK = f"{HEAT_PREFIX}-hot"
CFN_STACK = f"{HEAT_PREFIX}-cfn"
EXAMPLES = PROJECT_ROOT / "docs" / "examples"
HOT_TEMPLATE = EXAMPLES / "heat-server.yaml"
CFN_TEMPLATE = EXAMPLES / "heat-instance-cfn.json"
#: Seconds a stack may take to create or update (servers boot under TCG).
STACK_TIMEOUT = 480
#: The template's wait condition timeout: Heat fails the stack first, with its reason.
SIGNAL_TIMEOUT = 420
DELETE_TIMEOUT = 300
#: GiB of the HOT stack's volume when Cinder is planned.
VOLUME_GIB = 1
#: Heat resource types whose backing resource a stack's delete must remove,
#: and what it is.
TRACKED_TYPES = {
    "OS::Nova::Server": "server",
    "AWS::EC2::Instance": "server",
    "OS::Neutron::Net": "network",
    "AWS::EC2::VPC": "network",
    "OS::Neutron::Subnet": "subnet",
    "AWS::EC2::Subnet": "subnet",
    "OS::Neutron::Router": "router",
    "OS::Neutron::Port": "port",
    "OS::Neutron::SecurityGroup": "security group",
    "OS::Neutron::FloatingIP": "floating IP",
    "OS::Cinder::Volume": "volume",
}


# -- pure helpers --------------------------------------------------------------


def load_template(path: Path) -> dict[str, Any]:
    """A template file as Heat reads it (YAML dates stay strings)."""
    from openstack.orchestration.util import template_format  # slow import

    return template_format.parse(path.read_text(encoding="utf-8"))


def hot_parameters(external: str, with_volume: bool) -> dict[str, Any]:
    """The HOT stack's parameters: the compute scenario's image and flavor,
    the cloud's external network, a volume when Cinder is planned."""
    return {
        "image": IMAGE_NAME,
        "flavor": FLAVOR["name"],
        "public_network": external,
        "volume_size": VOLUME_GIB if with_volume else 0,
        "signal_timeout": SIGNAL_TIMEOUT,
    }


def cfn_parameters() -> dict[str, Any]:
    """The CloudFormation stack's parameters: the compute scenario's image and flavor."""
    return {"ImageId": IMAGE_NAME, "InstanceType": FLAVOR["name"]}


def engines_up(services: Iterable[Mapping[str, Any]], hosts: Sequence[str]) -> dict[str, int]:
    """heat-engine records up per host of ``hosts`` (0 for none), from Heat's
    service list; a record's host may be a full name."""
    up = dict.fromkeys(hosts, 0)
    for service in services:
        host = str(service.get("host") or "").split(".")[0]
        if service.get("binary") == "heat-engine" and service.get("status") == "up" and host in up:
            up[host] += 1
    return up


def outputs_of(outputs: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    """A stack's outputs by key; CheckFailed naming those Heat could not resolve."""
    found: dict[str, Any] = {}
    errors: list[str] = []
    for output in outputs or ():
        key = str(output.get("output_key"))
        if output.get("output_error"):
            errors.append(f"{key}: {output['output_error']}")
        found[key] = output.get("output_value")
    if errors:
        raise CheckFailed(f"stack outputs not resolved: {'; '.join(errors)}")
    return found


def signal_data(raw: Any) -> list[str]:
    """The data of each signal a wait condition got, in signal-id order, from
    its ``data`` attribute (JSON text of {signal id: data}); none when unreadable."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return []
    if not isinstance(raw, dict):
        return []
    keys = sorted(raw, key=lambda k: (len(str(k)), str(k)))  # "2" before "10"
    return [str(raw[k]) for k in keys]


def event_time(events: Iterable[Mapping[str, Any]], resource: str, status: str) -> datetime | None:
    """When ``resource`` (a resource name, or the stack's own name) last reached ``status``."""
    times = [
        datetime.fromisoformat(str(e["event_time"]))
        for e in events
        if e.get("resource_name") == resource and e.get("resource_status") == status
    ]
    return max(times, default=None)


def seconds(start: datetime | None, end: datetime | None) -> str:
    """Whole seconds from start to end, "?" when either is unknown."""
    return "?" if start is None or end is None else f"{(end - start).total_seconds():.0f}"


def top_level(resources: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Name -> physical id of the stack's own resources (nested ones left out)."""
    return {
        str(r["resource_name"]): str(r.get("physical_resource_id") or "")
        for r in resources
        if not r.get("parent_resource")
    }


def replaced(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """What an update changed among the resources in both listings: added,
    removed, or replaced (another physical id)."""
    changes = [f"{name} added" for name in sorted(after.keys() - before.keys())]
    changes += [f"{name} removed" for name in sorted(before.keys() - after.keys())]
    changes += [
        f"{name} replaced"
        for name in sorted(before.keys() & after.keys())
        if before[name] != after[name]
    ]
    return changes


def members(resources: Iterable[Mapping[str, Any]], parent: str) -> list[Mapping[str, Any]]:
    """The resources of the nested stack behind ``parent`` (a resource group's members)."""
    return [r for r in resources if r.get("parent_resource") == parent]


def unfinished(resources: Iterable[Mapping[str, Any]]) -> list[str]:
    """'<name> <status>: <reason>' of every resource not *_COMPLETE."""
    return [
        f"{r.get('resource_name')} {r.get('resource_status')}"
        + (f": {r['resource_status_reason']}" if r.get("resource_status_reason") else "")
        for r in resources
        if not str(r.get("resource_status", "")).endswith("_COMPLETE")
    ]


def tracked(resources: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Physical id -> '<kind> <name>' of the resources whose backing resource a
    delete must remove (servers, ports, networks, volumes, ...)."""
    found: dict[str, str] = {}
    for r in resources:
        kind = TRACKED_TYPES.get(str(r.get("resource_type")))
        physical = r.get("physical_resource_id")
        if kind and physical:
            found[str(physical)] = f"{kind} {r.get('resource_name')}"
    return found


def leftovers(
    known: Mapping[str, str], present: Iterable[Mapping[str, Any]], prefix: str
) -> list[str]:
    """What is still there of deleted stacks: each of ``present`` (kind, id,
    name, and the ids it hangs off: a port's device and network) that is one
    of ``known`` (physical id -> label), hangs off one, or is named with
    ``prefix``."""
    left: list[str] = []
    for item in present:
        ident, name = str(item["id"]), str(item.get("name") or "")
        owners = [str(o) for o in item.get("owners", ()) if o]
        if ident in known:
            left.append(f"{item['kind']} {name or ident} ({known[ident]})")
        elif any(o in known for o in owners):
            owner = next(known[o] for o in owners if o in known)
            left.append(f"{item['kind']} {name or ident} (of {owner})")
        elif name.startswith(prefix):
            left.append(f"{item['kind']} {name}")
    return left


def drop_unset_times(body: bytes) -> bytes:
    """A CloudFormation answer without the time elements Heat fills with
    ``None`` (LastUpdatedTime of a stack never updated), which an AWS client
    refuses to parse as a timestamp."""
    return re.sub(rb"<(\w*Time)>None</\1>", b"", body)


def cfn_statuses(summaries: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Stack name -> status from a CloudFormation ListStacks answer (deleted ones left out)."""
    return {
        str(s["StackName"]): str(s["StackStatus"])
        for s in summaries
        if s.get("StackStatus") != "DELETE_COMPLETE"
    }


# -- helpers on the cloud --------------------------------------------------------


def _heat(conn: Any, method: str, path: str, **kwargs: Any) -> Any:
    """One request to the orchestration API below the project (what the sdk
    has no call for: services, resources of nested stacks, events, PATCH)."""
    from openstack import exceptions  # slow import: only when a check runs

    response = conn.orchestration.request(path, method, **kwargs)
    exceptions.raise_from_response(response)
    # A PATCH's 202 has a plain-text body.
    json_body = "json" in response.headers.get("Content-Type", "")
    return response.json() if json_body and response.content else None


def _resources(conn: Any, stack: Any) -> list[dict[str, Any]]:
    """The stack's resources and those of its nested stacks (a resource group's)."""
    path = f"/stacks/{stack.name}/{stack.id}/resources?nested_depth=2"
    return list(_heat(conn, "GET", path)["resources"])


def _events(conn: Any, stack: Any) -> list[dict[str, Any]]:
    return list(_heat(conn, "GET", f"/stacks/{stack.name}/{stack.id}/events")["events"])


def _settle(conn: Any, stack: Any, action: str, timeout: float) -> Any:
    """The stack once its ``action`` (CREATE, UPDATE, DELETE) ended, as
    <action>_COMPLETE (None after a delete); else (<action>_FAILED, or still
    at it after ``timeout``) CheckFailed with Heat's reason and the resources
    that did not complete."""
    from openstack import exceptions

    seen: list[Any] = [stack]

    def ended() -> Any:
        try:
            fresh = conn.orchestration.get_stack(stack.id, resolve_outputs=False)
        except exceptions.NotFoundException:  # a deleted stack
            return "gone" if action == "DELETE" else None
        seen[0] = fresh
        # Right after an update's PATCH the stack may still show its create.
        return fresh if fresh.status in (f"{action}_COMPLETE", f"{action}_FAILED") else None

    def why() -> str:
        try:
            problems = unfinished(_resources(conn, stack))
        except Exception:  # the stack went meanwhile: say what was seen before
            problems = []
        return "; ".join(problems[:4]) or "no resource reports a problem"

    found = _wait(
        f"stack {stack.name}",
        timeout,
        ended,
        interval=POLL,
        explain=lambda m: (
            f"{m} still {getattr(seen[0], 'status', '?')}: {why()} — see "
            "/var/log/heat/heat-engine.log on the Heat hosts"
        ),
    )
    if found == "gone":
        return None
    if found.status != f"{action}_COMPLETE":
        raise CheckFailed(
            f"stack {stack.name} {found.status}: {found.status_reason} ({why()}) — see "
            "/var/log/heat/heat-engine.log on the Heat hosts"
        )
    return found


def _remove_stacks(conn: Any, wanted: Callable[[str], bool]) -> list[str]:
    """Delete the stacks whose name ``wanted`` takes (an earlier run's); their names."""
    removed: list[str] = []
    for stack in [s for s in conn.orchestration.stacks() if wanted(s.name)]:
        for attempt in (1, 2):  # Heat tries a delete again on a second call
            conn.orchestration.delete_stack(stack)
            try:
                _settle(conn, stack, "DELETE", DELETE_TIMEOUT)
                break
            except CheckFailed:
                if attempt == 2:
                    raise
        removed.append(stack.name)
    return removed


def _stack(conn: Any, name: str, step: str) -> Any:
    """The stack ``name``, found by name, with its outputs."""
    stack = conn.orchestration.find_stack(name)
    if stack is None:
        raise CheckFailed(f"skipped: {step} did not create stack {name} earlier in this run")
    return stack


def _console_text(conn: Any, server_id: str) -> str:
    """The server's console log; empty while Nova says the guest has none yet (HTTP 404)."""
    from openstack import exceptions

    try:
        return _console(conn, server_id)
    except exceptions.NotFoundException:
        return ""


def _create(conn: Any, name: str, path: Path, parameters: Mapping[str, Any]) -> tuple[Any, float]:
    """Create a stack from a template file and wait for CREATE_COMPLETE: the
    stack with its outputs, and the seconds it took."""
    started = time.monotonic()
    stack = conn.orchestration.create_stack(
        name=name,
        template=load_template(path),
        parameters=dict(parameters),
        timeout_mins=STACK_TIMEOUT // 60 + 1,
    )
    stack.name = name
    _settle(conn, stack, "CREATE", STACK_TIMEOUT)
    took = time.monotonic() - started
    return conn.orchestration.get_stack(stack.id), took


def _test_image_and_flavor(conn: Any) -> None:
    if (
        conn.image.find_image(IMAGE_NAME) is None
        or conn.compute.find_flavor(FLAVOR["name"]) is None
    ):
        raise CheckFailed(
            f"skipped: no image {IMAGE_NAME} or flavor {FLAVOR['name']} — the compute_servers "
            "check makes them"
        )


def _without_nova(ctx: VerifyContext) -> str | None:
    if "nova" in ctx.plan and "neutron" in ctx.plan:
        return None
    return "Nova or Neutron not planned: no servers for a stack"


# -- checks --------------------------------------------------------------------


@check("heat_services")
def check_heat_services(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    hosts = [name for name, _address in ctx.service_hosts(SERVICE)]
    services: list[dict[str, Any]] = []

    def none_up() -> list[str]:
        services[:] = _heat(conn, "GET", "/services")["services"]
        return [host for host, count in engines_up(services, hosts).items() if not count]

    _until_reported(
        none_up,
        lambda missing: (
            f"no heat-engine up on {', '.join(missing)} after {REPORT_TIMEOUT:.0f} s — see "
            "`journalctl -u heat-engine` and /var/log/heat/heat-engine.log there (it reports "
            "through RabbitMQ and the database: [DEFAULT] transport_url, [database] connection)"
        ),
    )
    up = engines_up(services, hosts)
    down = sum(1 for s in services if s.get("status") != "up")
    note = f"; {down} old record(s) down (engines of an earlier start)" if down else ""
    return "heat-engine up: " + ", ".join(f"{n} on {h}" for h, n in up.items()) + note


@check("heat_stack_hot", one_attempt=True, needs=("heat_services", "compute_servers"))
def check_heat_stack_hot(ctx: VerifyContext) -> str:
    skip = _without_nova(ctx)
    if skip:
        return skip
    conn = ctx.admin()
    removed = _remove_stacks(conn, lambda n: n.startswith(HEAT_PREFIX) and n != CFN_STACK)
    _test_image_and_flavor(conn)
    external = next(iter(conn.network.networks(is_router_external=True)), None)
    if external is None:
        raise CheckFailed("no external network — set neutron_external_network in overrides")
    with_volume = "cinder" in ctx.plan
    parameters = hot_parameters(external.name, with_volume)
    try:
        stack, took = _create(conn, HOT_STACK, HOT_TEMPLATE, parameters)
    except CheckFailed as exc:
        if "WaitConditionTimeout" not in str(exc):
            raise
        raise CheckFailed(
            f"{exc}; the server did not signal: does a guest reach Heat's API at "
            f"{conn.endpoint_for('orchestration')}? Its console log says what it got"
        ) from exc
    outputs = outputs_of(stack.outputs)
    server_id = str(outputs["server_id"])
    signalled = signal_data(outputs["signal_data"])
    if signalled != [server_id]:
        raise CheckFailed(
            f"the wait condition got {signalled or outputs['signal_data']!r}, not the server's "
            f"id {server_id} — who signalled? See the server's console"
        )
    events = _events(conn, stack)
    active = event_time(events, "server", "CREATE_COMPLETE")
    signal = event_time(events, "wait", "CREATE_COMPLETE")
    begun = min((datetime.fromisoformat(str(e["event_time"])) for e in events), default=None)
    console: list[str] = [""]

    def markers() -> bool:
        console[0] = _console_text(conn, server_id)
        return all(m in console[0] for m in (MARKER_BOOTED, MARKER_UP, f"{MARKER_USERDATA} script"))

    _wait(
        "the server's console never showed the test image's boot markers",
        CONSOLE_TIMEOUT,
        markers,
        interval=SLOW_POLL,
        explain=lambda m: f"{m}; last lines: {' | '.join(console[0].splitlines()[-3:])}",
    )
    volume = ""
    if with_volume:
        attached = conn.block_storage.get_volume(outputs["volume_id"])
        servers = [a.get("server_id") for a in attached.attachments or ()]
        if attached.status != "in-use" or servers != [server_id]:
            raise CheckFailed(
                f"the stack's volume is {attached.status}, attached to {servers or 'nothing'}, "
                "not to its server"
            )
        volume = f"; {VOLUME_GIB} GiB volume attached"
    address = str(outputs["floating_ip"])
    answer = _ping_from_network_host(ctx, address, f"server of stack {HOT_STACK}")
    note = f" (removed {', '.join(removed)} of an earlier run)" if removed else ""
    return (
        f"stack {HOT_STACK} CREATE_COMPLETE in {took:.0f} s (server ACTIVE after "
        f"{seconds(begun, active)} s, its signal {seconds(active, signal)} s later): the wait "
        f"condition got the server's own id from the guest, the console shows the test image "
        f"ran the user data{volume}; floating IP {address} {answer}{note}"
    )


@check("heat_stack_update", one_attempt=True)
def check_heat_stack_update(ctx: VerifyContext) -> str:
    skip = _without_nova(ctx)
    if skip:
        return skip
    conn = ctx.admin()
    stack = _stack(conn, HOT_STACK, "heat_stack_hot")
    if stack.status != "CREATE_COMPLETE":
        raise CheckFailed(f"skipped: stack {HOT_STACK} is {stack.status} (heat_stack_hot)")
    before = top_level(_resources(conn, stack))
    started = time.monotonic()
    # `openstack stack update --existing --parameter extra_servers=1`
    _heat(
        conn,
        "PATCH",
        f"/stacks/{stack.name}/{stack.id}",
        json={"parameters": {"extra_servers": 1}},
    )
    _settle(conn, stack, "UPDATE", STACK_TIMEOUT)
    took = time.monotonic() - started
    resources = _resources(conn, stack)
    changes = replaced(before, top_level(resources))
    if changes:
        raise CheckFailed(f"the update changed more than the resource group: {', '.join(changes)}")
    added = [r for r in members(resources, "extra") if r["resource_type"] == "OS::Nova::Server"]
    if len(added) != 1:
        raise CheckFailed(f"resource group extra has {len(added)} servers after the update, not 1")
    server = conn.compute.get_server(added[0]["physical_resource_id"])
    network = next(r["physical_resource_id"] for r in resources if r["resource_name"] == "network")
    on_network = conn.network.get_network(network).name in (server.addresses or {})
    if server.status != "ACTIVE" or not on_network:
        raise CheckFailed(
            f"the added server {server.name} is {server.status}, on networks "
            f"{sorted(server.addresses or {})}, not ACTIVE on the stack's network"
        )
    return (
        f"UPDATE_COMPLETE in {took:.0f} s (--existing, extra_servers 0 -> 1): server "
        f"{server.name} ACTIVE on the stack's network; the other {len(before)} resources kept "
        "their physical ids"
    )


@check("heat_stack_cfn", one_attempt=True, needs=("heat_services", "compute_servers"))
def check_heat_stack_cfn(ctx: VerifyContext) -> str:
    skip = _without_nova(ctx)
    if skip:
        return skip
    conn = ctx.admin()
    removed = _remove_stacks(conn, lambda n: n == CFN_STACK)
    _test_image_and_flavor(conn)
    stack, took = _create(conn, CFN_STACK, CFN_TEMPLATE, cfn_parameters())
    outputs = outputs_of(stack.outputs)
    server = conn.compute.get_server(outputs["InstanceId"])
    address = str(outputs["PrivateIp"])
    addresses = [a["addr"] for net in (server.addresses or {}).values() for a in net]
    cidr = ipaddress.ip_network(str(stack.parameters.get("CidrBlock")))
    if (
        server.status != "ACTIVE"
        or address not in addresses
        or ipaddress.ip_address(address) not in cidr
    ):
        raise CheckFailed(
            f"instance {server.name} is {server.status} with addresses {addresses}; the stack "
            f"says PrivateIp {address} (subnet {cidr})"
        )
    _wait(
        f"the instance's console never showed {MARKER_UP} ip={address} (no DHCP answer?)",
        CONSOLE_TIMEOUT,
        lambda: f"{MARKER_UP} ip={address}" in _console_text(conn, server.id),
        interval=SLOW_POLL,
    )
    note = f" (removed {', '.join(removed)} of an earlier run)" if removed else ""
    return (
        f"stack {CFN_STACK} (AWS::EC2::VPC, Subnet, Instance) CREATE_COMPLETE in {took:.0f} s: "
        f"instance {server.name} ACTIVE in {outputs['AvailabilityZone']}, PrivateIp {address} "
        f"taken by DHCP in the guest{note}"
    )


def _cfn_client(ctx: VerifyContext, endpoint: str, access: str, secret: str) -> Any:
    """boto3's CloudFormation client at Heat's CFN API, with two allowances
    for Heat: a POST to /v1 (the catalog's URL as an AWS client uses it) is a
    404 where /v1/ answers, and Heat writes "None" for a time it does not
    have (`drop_unset_times`)."""
    import boto3  # slow import: only when this check runs
    from botocore.config import Config as BotoConfig

    def unset_times_dropped(response_dict: dict[str, Any], **_kwargs: Any) -> None:
        if isinstance(response_dict.get("body"), bytes):
            response_dict["body"] = drop_unset_times(response_dict["body"])

    client = boto3.client(
        "cloudformation",
        endpoint_url=endpoint.rstrip("/") + "/",
        region_name=ctx.settings.region_name,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=BotoConfig(
            connect_timeout=NET_TIMEOUT,
            read_timeout=API_TIMEOUT,
            retries={"mode": "standard", "max_attempts": 2},
        ),
    )
    client.meta.events.register("before-parse.cloudformation", unset_times_dropped)
    return client


@check("heat_cfn_api", one_attempt=True, needs=("heat_stack_update", "heat_stack_cfn"))
def check_heat_cfn_api(ctx: VerifyContext) -> str:
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    conn = ctx.admin()
    endpoint = conn.endpoint_for("cloudformation")
    if not endpoint:
        raise CheckFailed("no cloudformation endpoint in the catalog — run `osdeploy deploy`")
    native = {s.name: s for s in conn.orchestration.stacks() if s.name.startswith(HEAT_PREFIX)}
    remove_ec2_credentials(conn, HEAT_PREFIX)
    access, secret = new_ec2_credential(conn, HEAT_PREFIX)
    step = "ListStacks"
    try:
        cfn = _cfn_client(ctx, endpoint, access, secret)
        listed = cfn_statuses(cfn.list_stacks().get("StackSummaries", []))
        step = "DescribeStacks"
        described = {
            name: cfn.describe_stacks(StackName=name)["Stacks"][0] for name in sorted(native)
        }
    except (BotoCoreError, ClientError, ResponseParserError) as exc:
        hosts = ", ".join(ctx.group_hosts(SERVICE, "heat_api")) or "the Heat hosts"
        raise CheckFailed(
            f"CloudFormation {step} at {endpoint} failed: {exc} — see "
            f"/var/log/heat/heat-api-cfn.log on {hosts} (AccessDenied: Keystone refused the "
            "EC2 signature; [ec2authtoken] auth_uri must be Keystone's /v3)"
        ) from exc
    finally:
        remove_ec2_credentials(conn, HEAT_PREFIX)
    want = {name: stack.status for name, stack in native.items()}
    got = {name: str(d.get("StackStatus")) for name, d in described.items()}
    if {n: s for n, s in listed.items() if n in want} != want or got != want:
        raise CheckFailed(
            f"CloudFormation lists {listed} and describes {got}; the native API says {want}"
        )
    shown = f"boto3 with an EC2 credential at {endpoint}: ListStacks and DescribeStacks show "
    if not want:
        if _without_nova(ctx):
            return f"{shown}no stacks ({_without_nova(ctx)})"
        raise CheckFailed("skipped: heat_stack_hot and heat_stack_cfn left no stack to describe")
    shown += ", ".join(f"{n} {s}" for n, s in sorted(want.items()))
    if CFN_STACK in native:
        instance = outputs_of(conn.orchestration.get_stack(native[CFN_STACK].id).outputs)
        cfn_outputs = {
            o["OutputKey"]: o.get("OutputValue") for o in described[CFN_STACK]["Outputs"]
        }
        if cfn_outputs.get("InstanceId") != instance["InstanceId"]:
            raise CheckFailed(
                f"CloudFormation DescribeStacks gives InstanceId {cfn_outputs.get('InstanceId')}, "
                f"the native API {instance['InstanceId']}"
            )
        shown += f"; {CFN_STACK}'s InstanceId output as the native API gives it"
    return shown


def _present(conn: Any) -> list[dict[str, Any]]:
    """What could be left of the stacks: kind, id, name, the ids it hangs off."""
    net = conn.network
    present: list[dict[str, Any]] = [
        {"kind": "server", "id": s.id, "name": s.name}
        for s in conn.compute.servers(all_projects=True)
    ]
    present += [
        {"kind": "port", "id": p.id, "name": p.name, "owners": (p.device_id, p.network_id)}
        for p in net.ports()
    ]
    present += [
        {"kind": "floating IP", "id": f.id, "name": f.floating_ip_address, "owners": (f.port_id,)}
        for f in net.ips()
    ]
    for kind, listing in (
        ("network", net.networks),
        ("subnet", net.subnets),
        ("router", net.routers),
        ("security group", net.security_groups),
    ):
        present += [{"kind": kind, "id": r.id, "name": r.name} for r in listing()]
    present += [
        {"kind": "volume", "id": v.id, "name": v.name}
        for v in conn.block_storage.volumes(all_projects=True)
    ]
    return present


@check(
    "heat_stack_delete",
    one_attempt=True,
    needs=("heat_stack_update", "heat_stack_cfn", "heat_cfn_api"),
)
def check_heat_stack_delete(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    stacks = [s for s in conn.orchestration.stacks() if s.name.startswith(HEAT_PREFIX)]
    if not stacks and _without_nova(ctx):
        return str(_without_nova(ctx))
    if not stacks:
        raise CheckFailed("skipped: heat_stack_hot and heat_stack_cfn left no stack to delete")
    known: dict[str, str] = {}
    projects: list[str] = []
    for stack in stacks:
        known.update(tracked(_resources(conn, stack)))
        user_project = conn.orchestration.get_stack(stack.id, resolve_outputs=False).user_project_id
        if user_project:
            projects.append(str(user_project))
        conn.orchestration.delete_stack(stack)
    started = time.monotonic()
    for stack in stacks:
        _settle(conn, stack, "DELETE", DELETE_TIMEOUT)
    took = time.monotonic() - started
    left: list[str] = []

    def nothing_left() -> bool:
        left[:] = leftovers(known, _present(conn), HEAT_PREFIX)
        left.extend(
            f"stack domain project {p}"
            for p in projects
            if conn.identity.find_project(p, ignore_missing=True) is not None
        )
        return not left

    _wait(
        "left behind after the stacks' delete",
        LEFTOVER_TIMEOUT,
        nothing_left,
        interval=SLOW_POLL,
        explain=lambda m: f"{', '.join(left)} {m} — see /var/log/heat/heat-engine.log",
    )
    names = ", ".join(s.name for s in stacks)
    domain = f"; their {len(projects)} project(s) in Heat's stack domain gone" if projects else ""
    return (
        f"{names} DELETE_COMPLETE in {took:.0f} s: nothing left of the {len(known)} servers, "
        "ports, networks, subnets, routers, security groups, floating IPs and volumes Heat "
        f"listed for them, nothing named {HEAT_PREFIX}*{domain}"
    )
