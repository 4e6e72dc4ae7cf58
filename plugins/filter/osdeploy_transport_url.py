"""Filter ``osdeploy_transport_url``: oslo.messaging's transport_url for RabbitMQ.

``servers | osdeploy_transport_url(user, password, vhost)`` gives
``rabbit://user:password@host1:port,user:password@host2:port/<vhost>``: every
server with the credentials, as oslo.messaging fails over between them; a
vhost "/nova" makes the path "//nova". The password is written as it is
(passwords.yml holds letters and digits; ``openstack_service``'s config
step refuses one that would need URL encoding).
"""

from collections.abc import Sequence
from typing import Any


def osdeploy_transport_url(servers: Sequence[str], user: str, password: str, vhost: str) -> str:
    hosts = ",".join(f"{user}:{password}@{server}" for server in servers)
    return f"rabbit://{hosts}/{vhost}"


class FilterModule:
    """Ansible's entry point."""

    def filters(self) -> dict[str, Any]:
        return {"osdeploy_transport_url": osdeploy_transport_url}
