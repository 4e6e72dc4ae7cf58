"""playbooks/ agrees with the catalog: one playbook per deployable service, in plan order.

site.yml is written by hand (readable, lintable); these tests make it impossible
for it to disagree with catalog.yml on which services exist, their order, and
the groups their plays target.
"""

import re
from pathlib import Path
from typing import Any

import yaml

from osdeploy.catalog import Catalog

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
#: Plays every run starts with, before the services, and ends with.
PRELUDE = ["gather.yml", "common.yml"]
CODA = ["converged.yml"]
#: ``<group>[:!<group>...]:&enable_<service>_True:!osdeploy_converged_True``
HOSTS_RE = re.compile(
    r"^(?P<groups>[a-z_]+(?::[a-z_]+)*)(?::![a-z_]+)*"
    r":&enable_(?P<service>[a-z_]+)_True:!osdeploy_converged_True$"
)


def _load(name: str) -> list[dict[str, Any]]:
    data = yaml.safe_load((PLAYBOOKS / name).read_text())
    assert isinstance(data, list), name
    return data


def _site_imports() -> list[str]:
    return [play["ansible.builtin.import_playbook"] for play in _load("site.yml")]


def test_site_imports_every_deployable_service_in_dependency_order(catalog: Catalog) -> None:
    deployable = [s.name for s in catalog.services if s.deployable]
    assert _site_imports() == PRELUDE + [f"{name}.yml" for name in catalog.order(deployable)] + CODA


def test_every_play_after_gather_leaves_converged_hosts_out() -> None:
    # gather.yml sorts the hosts; every later play must skip the converged
    # ones, or a no-op re-run walks them through that play's checks again.
    for name in _site_imports()[1:]:
        for play in _load(name):
            assert play["hosts"].endswith(":!osdeploy_converged_True"), f"{name}: {play['hosts']}"


def test_each_service_playbook_targets_its_own_groups_and_flag(catalog: Catalog) -> None:
    for service in (s for s in catalog.services if s.deployable):
        plays = _load(f"{service.name}.yml")
        assert plays, service.name
        for play in plays:
            match = HOSTS_RE.match(play["hosts"])
            assert match, f"{service.name}.yml: hosts {play['hosts']!r}"
            assert match["service"] == service.name, play["hosts"]
            assert set(match["groups"].split(":")) <= set(service.groups), play["hosts"]
        targeted = {
            group
            for play in plays
            for group in HOSTS_RE.match(play["hosts"])["groups"].split(":")  # type: ignore[index]
        }
        assert targeted == set(service.groups), f"{service.name}.yml leaves groups out"


def test_no_playbook_for_a_service_that_is_not_deployable(catalog: Catalog) -> None:
    for service in (s for s in catalog.services if not s.deployable):
        assert not (PLAYBOOKS / f"{service.name}.yml").exists(), service.name
