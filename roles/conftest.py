"""Shared pytest-testinfra fixtures of the roles' molecule scenarios (verify step).

pytest finds this file because it lies between the rootdir (the repository,
pyproject.toml) and every roles/<role>/molecule/<scenario>/tests/ directory.
"""

import pytest


@pytest.fixture(scope="module")
def address(host):
    """The host's default-route IPv4 address: osdeploy_address in molecule's inventory."""
    addresses = host.interface.default("inet").addresses
    return next(a for a in addresses if ":" not in a)
