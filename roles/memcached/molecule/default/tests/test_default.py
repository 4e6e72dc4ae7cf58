"""Checks of the memcached role on a converged host."""

import shlex

SET_GET = """
import socket, sys
with socket.create_connection((sys.argv[1], 11211), timeout=5) as conn:
    conn.sendall(b"set molecule 0 60 5\\r\\nhello\\r\\nget molecule\\r\\n")
    reply = b""
    while not reply.endswith(b"END\\r\\n"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        reply += chunk
print(reply.decode())
"""


def client(host, address):
    return host.run(f"python3 -c {shlex.quote(SET_GET)} {address}")


def test_service_running(host):
    service = host.service("memcached")
    assert service.is_running
    assert service.is_enabled


def test_set_get_over_tcp(host, address):
    result = client(host, address)
    assert result.rc == 0, result.stderr
    assert result.stdout.split() == ["STORED", "VALUE", "molecule", "0", "5", "hello", "END"]


def test_listens_on_the_address_only(host, address):
    listeners = host.check_output("ss -Hltun 'sport = :11211'")
    assert f"{address}:11211" in listeners
    assert "0.0.0.0:11211" not in listeners
    assert "*:11211" not in listeners
    assert "udp" not in listeners
    assert client(host, "127.0.0.1").rc != 0


def test_settings_applied(host):
    args = host.check_output("ps -o args= -C memcached")
    assert "-m 128" in args
    assert "-c 2048" in args
    assert "-u memcache" in args
    config = host.file("/etc/memcached.conf")
    assert (config.user, config.group, config.mode) == ("root", "memcache", 0o640)
