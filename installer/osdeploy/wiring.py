"""The wiring layer: how services find each other, computed from the catalog.

Roles never write down another service's port or URL: their defaults refer
to ``osdeploy_wiring``, which the installer renders into the inventory
(``group_vars/all/osdeploy.yml``) from ``catalog.yml`` and the config, and
which Molecule scenarios compute for their single host through the filter
``osdeploy_single_host_wiring`` (plugins/filter). Both call ``render_wiring``,
so a port changed in the catalog changes everywhere at once.

Pure: no I/O.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from osdeploy.catalog import Catalog, Endpoint, Service

#: Services that consume the others' oslo.messaging notifications: with one of
#: them planned, every OpenStack service emits notifications.
NOTIFICATION_CONSUMERS = ("ceilometer",)


def format_host(address: str) -> str:
    """An address as the host part of a URL (IPv6 in brackets)."""
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def endpoint_url(service: Service, endpoint: Endpoint, address: str) -> str:
    """``http://<address>:<port><path>`` of one of the service's catalog endpoints."""
    return f"http://{format_host(address)}:{service.ports[endpoint.port]}{endpoint.path}"


def render_wiring(
    catalog: Catalog,
    group_addresses: Mapping[str, Sequence[str]],
    internal_address: str,
    public_address: str,
) -> dict[str, Any]:
    """``osdeploy_wiring``: ports, endpoint URLs and the shared servers' lists.

    ``group_addresses`` maps each catalog group to the addresses of the hosts
    in it (empty or absent: the group has no hosts, e.g. its service is not
    planned). The result:

    - ``ports``: ``{service: {name: port}}`` for every catalog service;
    - ``endpoints``: ``{type: {internal: url, public: url}}``, every catalog
      endpoint as ``http://<address>:<port><path>``;
    - ``addresses``: ``{group: [address, ...]}`` for every catalog group;
    - ``database_address``: where services reach MariaDB (the internal address);
    - ``memcached_servers``, ``rabbitmq_servers``: ``host:port`` of every
      memcached / RabbitMQ host;
    - ``notifications``: whether a service that consumes notifications
      (``NOTIFICATION_CONSUMERS``: Ceilometer) has hosts, i.e. is planned:
      then every service emits them (oslo.messaging driver messagingv2, the
      Swift proxy through ceilometermiddleware), else none does.
    """
    ports = {service.name: dict(service.ports) for service in catalog.services}
    endpoints = {
        endpoint.type: {
            interface: endpoint_url(service, endpoint, address)
            for interface, address in (("internal", internal_address), ("public", public_address))
        }
        for service in catalog.services
        for endpoint in service.endpoints
    }
    addresses = {
        group: list(group_addresses.get(group, ()))
        for service in catalog.services
        for group in service.groups
    }

    def servers(service: str, port: str) -> list[str]:
        number = ports[service][port]
        return [f"{format_host(a)}:{number}" for a in addresses.get(service, ())]

    return {
        "ports": ports,
        "endpoints": endpoints,
        "addresses": addresses,
        "database_address": internal_address,
        "memcached_servers": servers("memcached", "memcached"),
        "rabbitmq_servers": servers("rabbitmq", "amqp"),
        "notifications": any(
            addresses[group]
            for name in NOTIFICATION_CONSUMERS
            if name in catalog
            for group in catalog[name].groups
        ),
    }


def single_host_wiring(catalog: Catalog, address: str, groups: Sequence[str]) -> dict[str, Any]:
    """The wiring of one host that is in ``groups`` and is every address (Molecule)."""
    return render_wiring(catalog, {group: [address] for group in groups}, address, address)
