"""Filter ``osdeploy_host_service_roles``: the service roles a host runs in this run.

playbooks/common.yml hands the list to the common role, which installs the
packages of all of them in one apt transaction per host, every host at once,
before the first service play:

    common_service_roles: "{{ osdeploy_services | osdeploy_host_service_roles(group_names) }}"
"""

from collections.abc import Sequence
from typing import Any

from osdeploy.catalog import load_catalog


def osdeploy_host_service_roles(services: Sequence[str], groups: Sequence[str]) -> list[str]:
    """Roles serving the groups in ``groups`` of the enabled ``services``, in plan order."""
    return list(load_catalog().host_roles([str(s) for s in services], [str(g) for g in groups]))


class FilterModule:
    """Ansible's entry point."""

    def filters(self) -> dict[str, Any]:
        return {"osdeploy_host_service_roles": osdeploy_host_service_roles}
