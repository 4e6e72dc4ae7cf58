"""Probes over the wire that checks share: a TCP greeting, an unauthenticated HTTP GET.

Sockets and urllib are the edges; whether an answer is an OpenStack version
document is decided by pure functions (unit-tested).
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request

from osdeploy.verify.core import CheckFailed

#: Seconds for one TCP connection or HTTP request.
NET_TIMEOUT = 5.0


# -- pure helpers --------------------------------------------------------------


def is_version_document(status: int, body: bytes) -> bool:
    """An OpenStack API root/version answer: 200 or 300 with JSON version data."""
    if status not in (200, 300):
        return False
    try:
        data = json.loads(body.decode("utf-8", errors="replace"))
    except ValueError:
        return False
    return isinstance(data, dict) and ("version" in data or "versions" in data)


def is_swift_info(status: int, body: bytes) -> bool:
    """Swift's discovery answer (GET /info: its capabilities, with its version)."""
    if status != 200:
        return False
    try:
        data = json.loads(body.decode("utf-8", errors="replace"))
    except ValueError:
        return False
    return (
        isinstance(data, dict)
        and isinstance(data.get("swift"), dict)
        and "version" in data["swift"]
    )


def root_url(url: str) -> str:
    """scheme://host:port/ of an endpoint URL (where the versions list lives)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/", "", ""))


# -- edges ---------------------------------------------------------------------


def tcp_exchange(address: str, port: int, send: bytes, want: int = 1024) -> bytes:
    """Connect, send, and read the first answer (up to `want` bytes)."""
    try:
        with socket.create_connection((address, port), timeout=NET_TIMEOUT) as sock:
            if send:
                sock.sendall(send)
            chunks: list[bytes] = []
            received = 0
            while received < want:
                try:
                    chunk = sock.recv(want - received)
                except TimeoutError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
                # the greeting has started: give the rest of it a short moment only
                sock.settimeout(0.3)
            return b"".join(chunks)
    except OSError as exc:
        raise CheckFailed(
            f"{address}:{port} unreachable ({exc.strerror or exc}) — is the service running "
            "and listening on that address?"
        ) from exc


def http_get(url: str) -> tuple[int, bytes]:
    """Status and body of an unauthenticated GET (HTTP errors are answers too)."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise CheckFailed(f"{url}: not an http(s) URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 (scheme checked above)
    try:
        with urllib.request.urlopen(request, timeout=NET_TIMEOUT) as response:  # noqa: S310
            return int(response.status), response.read(65536)
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(65536)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CheckFailed(f"{url}: unreachable ({reason})") from exc


def probe_endpoint(url: str) -> str | None:
    """None when the URL (or its root) answers with a version document, or
    its root's /info with Swift's capabilities (Swift has no version
    document), else why not."""
    status, body = http_get(url)
    if is_version_document(status, body):
        return None
    root = root_url(url)
    if root != url:
        root_status, root_body = http_get(root)
        if is_version_document(root_status, root_body):
            return None
    if is_swift_info(*http_get(f"{root}info")):
        return None
    return f"{url}: HTTP {status}, no version document"
