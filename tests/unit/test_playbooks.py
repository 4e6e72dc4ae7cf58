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
#: Plays every run starts with, before the services.
PRELUDE = ["gather.yml", "common.yml"]
#: ``<group>[:!<group>...]:&enable_<service>_True``
HOSTS_RE = re.compile(r"^(?P<group>[a-z_]+)(?::![a-z_]+)*:&enable_(?P<service>[a-z_]+)_True$")


def _load(name: str) -> list[dict[str, Any]]:
    data = yaml.safe_load((PLAYBOOKS / name).read_text())
    assert isinstance(data, list), name
    return data


def _site_imports() -> list[str]:
    return [play["ansible.builtin.import_playbook"] for play in _load("site.yml")]


def test_site_imports_every_deployable_service_in_dependency_order(catalog: Catalog) -> None:
    deployable = [s.name for s in catalog.services if s.deployable]
    assert _site_imports() == PRELUDE + [f"{name}.yml" for name in catalog.order(deployable)]


def test_each_service_playbook_targets_its_own_groups_and_flag(catalog: Catalog) -> None:
    for service in (s for s in catalog.services if s.deployable):
        plays = _load(f"{service.name}.yml")
        assert plays, service.name
        for play in plays:
            match = HOSTS_RE.match(play["hosts"])
            assert match, f"{service.name}.yml: hosts {play['hosts']!r}"
            assert match["service"] == service.name, play["hosts"]
            assert match["group"] in service.groups, play["hosts"]
        targeted = {HOSTS_RE.match(p["hosts"])["group"] for p in plays}  # type: ignore[index]
        assert targeted == set(service.groups), f"{service.name}.yml leaves groups out"


def test_no_playbook_for_a_service_that_is_not_deployable(catalog: Catalog) -> None:
    for service in (s for s in catalog.services if not s.deployable):
        assert not (PLAYBOOKS / f"{service.name}.yml").exists(), service.name
