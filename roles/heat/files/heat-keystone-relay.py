#!/usr/bin/python3
"""Keystone as heat-api-cfn reaches it: with heat's service token on EC2 checks.

Since OSSA-2025-002 (Debian keystone 2:27.0.0-3+deb13u1) Keystone answers
POST /v3/ec2tokens only to an admin or a service user
(identity:ec2tokens_validate), while heat 24's ec2token middleware posts
the signature without a token, so every EC2-signed request of the
CloudFormation API (AWS clients, the pre-signed wait-condition URLs Heat
hands to servers) ends in "AccessDenied". This relay, on 127.0.0.1 of each
Heat host only, forwards every request to Keystone unchanged, and adds the
X-Auth-Token of heat's service user ([keystone_authtoken] of heat.conf: role
service on project service) to a POST to .../ec2tokens that carries none.
heat.conf's [ec2authtoken] auth_uri points here; the CFN API also hands this
URL to the engine as the request's Keystone (X-Auth-URL), hence every path
is forwarded. Keystone stays closed to unauthenticated EC2 checks.

Usage: heat-keystone-relay <heat.conf> <port>
"""

from __future__ import annotations

import configparser
import http.server
import sys
import urllib.error
import urllib.request

from keystoneauth1 import session
from keystoneauth1.identity import v3

# Hop-by-hop headers (RFC 9110) and those the server here writes itself.
SKIPPED = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}
TIMEOUT = 30


def service_session(conf_path: str) -> tuple[session.Session, str]:
    """A Keystone session as heat's service user, and Keystone's URL."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(conf_path)
    ksa = conf["keystone_authtoken"]
    url = ksa["auth_url"].rstrip("/")
    auth = v3.Password(
        auth_url=f"{url}/v3",
        username=ksa["username"],
        password=ksa["password"],
        project_name=ksa["project_name"],
        user_domain_name=ksa.get("user_domain_name", "Default"),
        project_domain_name=ksa.get("project_domain_name", "Default"),
    )
    return session.Session(auth=auth, timeout=TIMEOUT), url


def handler(sess: session.Session, keystone: str) -> type[http.server.BaseHTTPRequestHandler]:
    class Relay(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in SKIPPED}
            if (
                self.command == "POST"
                and self.path.rstrip("/").endswith("/ec2tokens")
                and "X-Auth-Token" not in self.headers
            ):
                headers["X-Auth-Token"] = sess.get_token() or ""
            # keystone is heat.conf's http(s) URL; the path is the client's.
            request = urllib.request.Request(  # noqa: S310
                keystone + self.path, data=body, headers=headers, method=self.command
            )
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310
                    status, reply, payload = answer.status, answer.headers, answer.read()
            except urllib.error.HTTPError as error:
                status, reply, payload = error.code, error.headers, error.read()
            self.send_response(status)
            for key, value in reply.items():
                if key.lower() not in SKIPPED:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

        def log_message(self, format: str, *args: object) -> None:
            # The journal keeps method, path and status; never a header.
            status = args[1] if len(args) > 1 else "-"
            sys.stderr.write(f"{self.command} {self.path.split('?')[0]} {status}\n")

    return Relay


def main() -> None:
    conf_path, port = sys.argv[1], int(sys.argv[2])
    sess, keystone = service_session(conf_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler(sess, keystone))
    server.serve_forever()


if __name__ == "__main__":
    main()
