"""What earlier deploys installed where: ``<deploy dir>/deployed.yml``.

Written after each successful deploy (never in check mode), read by
``osdeploy plan`` to show what a run would add: a new service, or a
deployed service's new hosts. Pure helpers decide; two small functions read
and write the file.
"""

from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from osdeploy.fileio import write_atomic
from osdeploy.plan import Plan

STATE_NAME = "deployed.yml"
HEADER = "# written by osdeploy deploy: services and the hosts they were deployed on\n"

Deployed = dict[str, tuple[str, ...]]


def limit_hosts(limit: str | None, known: Iterable[str]) -> set[str] | None:
    """Hosts an ansible ``--limit`` of plain host names selects; None = every host.

    Patterns osdeploy cannot resolve (groups, wildcards, exclusions) give an
    empty set: nothing is recorded for such a run.
    """
    if not limit:
        return None
    names = [part.strip() for part in limit.replace(":", ",").split(",") if part.strip()]
    hosts = set(known)
    return set(names) if names and all(name in hosts for name in names) else set()


def after_run(
    deployed: Mapping[str, Iterable[str]], plan: Plan, hosts: set[str] | None
) -> Deployed:
    """The state after a successful run of ``plan.run`` on ``hosts`` (None = all)."""
    state = {name: tuple(found) for name, found in deployed.items()}
    for service in plan.services:
        if service.name not in plan.run:
            continue
        ran = [h for h in service.hosts if hosts is None or h in hosts]
        before = state.get(service.name, ())
        state[service.name] = tuple(h for h in service.hosts if h in before or h in ran)
    return {name: found for name, found in state.items() if found or name in plan.run}


def load_deployed(deploy_dir: Path) -> Deployed:
    path = deploy_dir / STATE_NAME
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(name): tuple(str(h) for h in hosts)
        for name, hosts in data.items()
        if isinstance(hosts, list)
    }


def save_deployed(deploy_dir: Path, state: Mapping[str, tuple[str, ...]]) -> None:
    text = HEADER + yaml.safe_dump({k: list(v) for k, v in state.items()}, sort_keys=False)
    path = deploy_dir / STATE_NAME
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        write_atomic(path, text, 0o644)
