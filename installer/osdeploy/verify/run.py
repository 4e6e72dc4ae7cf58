"""`osdeploy verify`: the planned services' checks, in plan order, one line each.

The catalog lists, per service, the names of its checks (`verify:`);
`run_verify` runs those of the planned services in plan order, prints one
line per check, then `verify: N passed, M failed`. `--skip` leaves named
checks out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    for name in names:
        target = anchor(name)
        if target is None:
            continue
        position = ordered.index(target) + 1 if target in ordered else len(ordered)
        while position < len(ordered) and anchor(ordered[position]) == target:
            position += 1
        ordered.insert(position, name)
    return ordered


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
    results: list[CheckResult] = []
    try:
        for name in names:
            result = run_check(name, ctx)
            results.append(result)
            print(format_result(result, width), flush=True)
    finally:
        if ctx._admin is not None:
            ctx._admin.close()
    print(format_totals(results), flush=True)
    return 0 if all(r.ok for r in results) else 1
