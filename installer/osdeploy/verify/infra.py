"""Checks of the infrastructure services, each in its own protocol: MariaDB, RabbitMQ, memcached.

Each check connects to the service's port on every host that runs it and
reads the greeting (MySQL handshake, AMQP 0-9-1 Connection.Start, memcached
`version`); the parsers of those greetings are pure and unit-tested.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from osdeploy.verify.core import CheckFailed, VerifyContext, check
from osdeploy.verify.net import tcp_exchange
from osdeploy.wiring import format_host

# -- pure helpers --------------------------------------------------------------


def parse_memcached_version(reply: bytes) -> str:
    """The version from memcached's `VERSION x.y.z` reply."""
    line = reply.split(b"\r\n", 1)[0].decode("ascii", errors="replace").strip()
    if not line.startswith("VERSION "):
        raise CheckFailed(f"unexpected answer to 'version': {line[:80]!r}")
    return line.removeprefix("VERSION ").strip()


AMQP_091_HEADER = b"AMQP\x00\x00\x09\x01"


def _amqp_table(data: bytes) -> dict[str, str]:
    """String fields of an AMQP 0-9-1 field table (others are skipped or end parsing)."""
    fields: dict[str, str] = {}
    pos = 0
    fixed = {"t": 1, "b": 1, "B": 1, "s": 2, "u": 2, "I": 4, "i": 4, "l": 8, "T": 8, "f": 4}
    fixed.update({"d": 8, "D": 5, "V": 0})
    while pos < len(data):
        size = data[pos]
        name = data[pos + 1 : pos + 1 + size].decode("utf-8", errors="replace")
        pos += 1 + size
        kind = chr(data[pos])
        pos += 1
        if kind in ("S", "F", "A", "x"):
            (length,) = struct.unpack_from(">I", data, pos)
            pos += 4
            if kind == "S":
                fields[name] = data[pos : pos + length].decode("utf-8", errors="replace")
            pos += length
        elif kind in fixed:
            pos += fixed[kind]
        else:
            break
    return fields


def parse_amqp_start(reply: bytes) -> str:
    """'<product> <version>' from a broker's Connection.Start frame."""
    if reply.startswith(b"AMQP"):
        raise CheckFailed(
            f"broker refused AMQP 0-9-1 and offers protocol {reply[4:8].hex()} — "
            "is this really RabbitMQ?"
        )
    if len(reply) < 11 or reply[0] != 1:
        raise CheckFailed("no AMQP Connection.Start frame from the broker")
    class_id, method_id = struct.unpack_from(">HH", reply, 7)
    if (class_id, method_id) != (10, 10):
        raise CheckFailed(f"unexpected AMQP method {class_id}.{method_id} (want 10.10)")
    try:
        (table_len,) = struct.unpack_from(">I", reply, 13)
        props = _amqp_table(reply[17 : 17 + table_len])
    except (struct.error, IndexError):
        props = {}
    product = props.get("product", "AMQP broker")
    version = props.get("version", "")
    return f"{product} {version}".strip()


def parse_mysql_greeting(reply: bytes) -> str:
    """What the server's first MySQL-protocol packet says (version, or its refusal)."""
    if len(reply) < 5:
        raise CheckFailed("no MySQL protocol greeting")
    payload = reply[4:]
    if payload[0] == 10:
        version = payload[1:].split(b"\0", 1)[0].decode("ascii", errors="replace")
        # MariaDB announces itself as "5.5.5-<real version>" to old clients
        return "server " + version.removeprefix("5.5.5-")
    if payload[0] == 0xFF and len(payload) >= 3:
        (code,) = struct.unpack_from("<H", payload, 1)
        text = payload[3:].decode("utf-8", errors="replace")
        if text.startswith("#"):
            text = text[6:]
        return f"server answers, refuses this machine (error {code}: {text.strip()[:120]})"
    raise CheckFailed(f"unexpected first packet (type {payload[0]})")


# -- checks --------------------------------------------------------------------


def _each_host(ctx: VerifyContext, service: str, probe: Callable[[str], str]) -> str:
    hosts = ctx.service_hosts(service)
    if not hosts:
        raise CheckFailed(f"no host runs {service} in this plan")
    seen = []
    for name, address in hosts:
        try:
            seen.append(f"{name}: {probe(address)}")
        except CheckFailed as exc:
            raise CheckFailed(f"{name}: {exc}") from exc
    return "; ".join(seen)


def _protocol_check(
    ctx: VerifyContext,
    service: str,
    port: str,
    hello: bytes,
    want: int,
    describe: Callable[[bytes], str],
) -> str:
    """Send `hello` to the service's port (a catalog key) on each of its hosts; describe it."""
    number = ctx.port(service, port)

    def probe(address: str) -> str:
        reply = tcp_exchange(address, number, hello, want=want)
        return f"{describe(reply)} on {format_host(address)}:{number}"

    return _each_host(ctx, service, probe)


@check("memcached_version")
def check_memcached_version(ctx: VerifyContext) -> str:
    return _protocol_check(
        ctx,
        "memcached",
        "memcached",
        b"version\r\n",
        128,
        lambda reply: f"memcached {parse_memcached_version(reply)}",
    )


@check("rabbitmq_amqp")
def check_rabbitmq_amqp(ctx: VerifyContext) -> str:
    return _protocol_check(
        ctx,
        "rabbitmq",
        "amqp",
        AMQP_091_HEADER,
        4096,
        lambda reply: f"{parse_amqp_start(reply)} speaks AMQP 0-9-1",
    )


@check("mariadb_handshake")
def check_mariadb_handshake(ctx: VerifyContext) -> str:
    return _protocol_check(ctx, "mariadb", "mysql", b"", 512, parse_mysql_greeting)
