"""`osdeploy verify`: the planned services' checks, side by side, one line each in plan order.

The catalog lists, per service, the names of its checks (`verify:`);
`run_verify` runs those of the planned services, prints one line per check
in plan order, then `verify: N passed, M failed`. `--skip` leaves named
checks out.

Checks run side by side where they can (`check_graph`): each service's
checks one after the other, every service's chain beside the others, and
where a check says so (`needs`, `before`) it starts earlier or holds a
later one back. Most of a check's time is waiting (a server to boot, a
volume to attach), so the compute scenario's servers, Cinder's volumes and
Swift's objects are worked on at once: one verify of the lab's cloud took
about 220 s one check at a time.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from osdeploy.catalog import Catalog, load_catalog
from osdeploy.cloud import cloud_settings
from osdeploy.errors import InputError, suggest
from osdeploy.secrets import load_passwords
from osdeploy.verify.core import (
    CHECKS,
    Check,
    CheckResult,
    VerifyContext,
    format_result,
    format_totals,
    run_check,
)

if TYPE_CHECKING:
    from osdeploy.config import Config
    from osdeploy.plan import Plan


def check_names(
    plan: Plan, catalog: Catalog, checks: Mapping[str, Check] | None = None
) -> list[str]:
    """The catalog's checks of the planned services, in plan order, each once;
    a check registered with ``after=<anchor>`` right after its anchor when
    that runs too (after the checks anchored there before it)."""
    registry = CHECKS if checks is None else checks
    names: list[str] = []
    for service in plan.services:
        for name in catalog[service.name].verify:
            if name not in names:
                names.append(name)

    def anchor(name: str) -> str | None:
        found = getattr(registry.get(name), "after", None)
        return found if found in names and found != name else None

    ordered = [name for name in names if anchor(name) is None]
    # (When they start is check_graph's business: this is the report's order.)
    for name in names:
        target = anchor(name)
        if target is None:
            continue
        position = ordered.index(target) + 1 if target in ordered else len(ordered)
        while position < len(ordered) and anchor(ordered[position]) == target:
            position += 1
        ordered.insert(position, name)
    return ordered


#: Checks running at once at most (a few lanes: compute, volumes, objects, the rest).
LANES = 4


def check_graph(
    names: Sequence[str],
    plan: Plan,
    catalog: Catalog,
    checks: Mapping[str, Check] | None = None,
) -> dict[str, set[str]]:
    """For each of ``names`` (check_names' order, skipped ones left out), the
    checks it waits for. By default the one before it of the same service;
    a service's first check waits for the last check of every service
    planned before it that it depends on or that is infrastructure (a
    database, broker or cluster still coming up after a boot holds the rest
    back, as it did one check at a time). A check's ``needs`` replace that
    default, and a check waits for every check that names it in ``before``."""
    registry = CHECKS if checks is None else checks
    service_of: dict[str, str] = {}
    for service in plan.services:
        for name in catalog[service.name].verify:
            service_of.setdefault(name, service.name)
    last: dict[str, str] = {service_of[name]: name for name in names if name in service_of}
    order = [service.name for service in plan.services]
    graph: dict[str, set[str]] = {}
    for position, name in enumerate(names):
        needs = getattr(registry.get(name), "needs", None)
        own = service_of.get(name)
        same = [n for n in names[:position] if service_of.get(n) == own]
        if needs is not None:
            graph[name] = {n for n in needs if n in names and n != name}
        elif same:
            graph[name] = {same[-1]}
        else:
            depends = catalog[own].depends if own is not None else ()
            earlier = order[: order.index(own)] if own in order else []
            graph[name] = {
                last[other]
                for other in earlier
                if other in last and (other in depends or catalog[other].kind == "infrastructure")
            }
    for name in names:
        for later in getattr(registry.get(name), "before", ()):
            if later in graph and later != name:
                graph[later].add(name)
    _refuse_cycles(graph)
    return graph


def _refuse_cycles(graph: Mapping[str, set[str]]) -> None:
    done: set[str] = set()
    while len(done) < len(graph):
        ready = [n for n, deps in graph.items() if n not in done and deps <= done]
        if not ready:
            stuck = sorted(set(graph) - done)
            raise ValueError(f"verify checks wait for each other in a circle: {', '.join(stuck)}")
        done.update(ready)


def run_graph(
    names: Sequence[str],
    graph: Mapping[str, set[str]],
    run: Callable[[str], CheckResult],
    report: Callable[[CheckResult], None],
    lanes: int = LANES,
) -> list[CheckResult]:
    """Run each name once all it waits for have ended (up to ``lanes`` at
    once); ``report`` each result in ``names``' order as soon as those
    before it are reported. A failed check ends like a passed one: the
    checks after it run and say what they miss."""
    results: dict[str, CheckResult] = {}
    reported = 0
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=lanes)
    running: dict[concurrent.futures.Future[CheckResult], str] = {}
    try:
        while len(results) < len(names):
            started = set(running.values()) | set(results)
            for name in names:
                if name not in started and graph[name] <= results.keys():
                    running[pool.submit(run, name)] = name
            if not running:  # check_graph refuses circles: never here
                raise RuntimeError(f"no verify check can start: {graph}")
            done, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done:
                results[running.pop(future)] = future.result()
            while reported < len(names) and names[reported] in results:
                report(results[names[reported]])
                reported += 1
    finally:
        pool.shutdown(wait=not running, cancel_futures=True)
    return [results[name] for name in names]


def run_verify(
    deploy_dir: Path,
    config: Config,
    plan: Plan,
    catalog: Catalog | None = None,
    skip: Sequence[str] = (),
) -> int:
    """Run the planned services' checks but ``skip``; 0 when all pass, else 1."""
    catalog = catalog if catalog is not None else load_catalog()
    names = check_names(plan, catalog)
    unknown = [name for name in skip if name not in names]
    if unknown:
        raise InputError(
            f"--skip {unknown[0]}: not a check of the planned services; "
            + suggest(unknown[0], names, "their checks")
        )
    names = [name for name in names if name not in skip]
    ctx = VerifyContext(
        deploy_dir=deploy_dir,
        config=config,
        plan=plan,
        catalog=catalog,
        passwords=load_passwords(deploy_dir),
        settings=cloud_settings(config, catalog),
    )
    width = max((len(n) for n in names), default=0)
    try:
        results = run_graph(
            names,
            check_graph(names, plan, catalog),
            lambda name: run_check(name, ctx),
            lambda result: print(format_result(result, width), flush=True),
        )
    finally:
        ctx.close()
    print(format_totals(results), flush=True)
    return 0 if all(r.ok for r in results) else 1
