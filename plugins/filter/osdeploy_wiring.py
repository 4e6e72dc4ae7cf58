"""Filter ``osdeploy_single_host_wiring``: the wiring layer of a one-host Molecule scenario.

The installer renders ``osdeploy_wiring`` into every deployment's inventory
(``osdeploy.wiring``); a Molecule scenario has no installer run, so its shared
config computes the same structure for its one host from the same catalog:

    osdeploy_wiring: "{{ osdeploy_address | osdeploy_single_host_wiring(group_names) }}"
"""

from collections.abc import Sequence
from typing import Any

from osdeploy.catalog import load_catalog
from osdeploy.wiring import single_host_wiring


def osdeploy_single_host_wiring(address: str, groups: Sequence[str]) -> dict[str, Any]:
    """Ports, endpoints and server lists with every group in ``groups`` on ``address``."""
    return single_host_wiring(load_catalog(), str(address), [str(g) for g in groups])


class FilterModule:
    """Ansible's entry point."""

    def filters(self) -> dict[str, Any]:
        return {"osdeploy_single_host_wiring": osdeploy_single_host_wiring}
