"""Resolve the config's services against the catalog into an ordered ``Plan``.

Pure: ``build_plan`` and ``format_plan`` only compute.

``--services`` (``run``) names the subset of the planned services to deploy in
this run; all planned services stay enabled in the inventory. A name that is
not in the plan is an error asking the user to add it to ``services:`` first,
so ``osdeploy.yml`` always describes the whole cloud.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from osdeploy.catalog import Catalog, Endpoint, Service
from osdeploy.config import Config
from osdeploy.errors import InputError, suggest


@dataclass(frozen=True)
class PlannedService:
    entry: Service  # the catalog entry
    requested: bool  # named in the config's services:
    required_by: tuple[str, ...]  # planned services that depend on it directly
    groups: Mapping[str, tuple[str, ...]]  # catalog group -> host names, config order

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def ports(self) -> Mapping[str, int]:
        return self.entry.ports

    @property
    def verify(self) -> tuple[str, ...]:
        return self.entry.verify

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return self.entry.endpoints

    @property
    def hosts(self) -> tuple[str, ...]:
        """All hosts of the service, in config order of first appearance."""
        return tuple(dict.fromkeys(host for hosts in self.groups.values() for host in hosts))

    @property
    def reason(self) -> str:
        if self.requested:
            return "requested"
        return f"added: dependency of {', '.join(self.required_by)}"


@dataclass(frozen=True)
class Plan:
    services: tuple[PlannedService, ...]  # deployment order
    run: tuple[str, ...]  # services deployed by this run, in deployment order
    secrets: tuple[str, ...]  # password names of all planned services, sorted

    def names(self) -> tuple[str, ...]:
        return tuple(service.name for service in self.services)

    @property
    def restricted(self) -> bool:
        """True when this run deploys only some of the planned services."""
        return self.run != self.names()

    def service(self, name: str) -> PlannedService:
        """The planned service ``name``; ``KeyError`` when it is not planned."""
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return name in self.names()


def build_plan(config: Config, catalog: Catalog, run: Sequence[str] | None = None) -> Plan:
    """Requested services plus their dependencies, ordered, mapped to hosts.

    ``run`` restricts this run to some planned services (``--services``).
    Raises ``InputError`` for a service that cannot be planned or run.
    """
    for name in config.services:
        if name not in catalog:
            raise InputError(f"unknown service {name}; {suggest(name, catalog.names(), 'known')}")
    names = catalog.closure(config.services)
    blocked = [name for name in names if not catalog[name].deployable]
    if blocked:
        raise InputError(
            f"{', '.join(blocked)} not deployable yet in this release; "
            "remove from services: in osdeploy.yml what needs them"
        )
    # What the site already runs (ceph: in osdeploy.yml, an existing
    # cluster): no host runs its daemons, and it keeps its own fsid and keys.
    existing = {"ceph"} if config.ceph is not None else set()
    services = tuple(
        PlannedService(
            entry=catalog[name],
            requested=name in config.services,
            required_by=catalog.dependents(name, names),
            groups={
                group: ()
                if name in existing
                else tuple(h.name for h in config.hosts if set(h.roles).intersection(roles))
                for group, roles in catalog[name].groups.items()
            },
        )
        for name in names
    )
    secrets = tuple(
        sorted({s for name in names if name not in existing for s in catalog[name].secrets})
    )
    return Plan(services, _run(names, catalog, run), secrets)


def _run(names: tuple[str, ...], catalog: Catalog, run: Sequence[str] | None) -> tuple[str, ...]:
    if run is None:
        return names
    if not run:
        raise InputError("--services is empty; name at least one service, e.g. --services keystone")
    for name in run:
        if name not in catalog:
            raise InputError(
                f"--services: unknown service {name}; {suggest(name, catalog.names(), 'known')}"
            )
        if name not in names:
            raise InputError(
                f"--services: {name} is not in the plan; add it to services: in osdeploy.yml "
                "first, then run with --services again"
            )
    return tuple(name for name in names if name in run)


def format_plan(plan: Plan, deployed: Mapping[str, Sequence[str]] | None = None) -> str:
    """A readable table: order, service, hosts, why it is planned; then a summary line.

    With ``deployed`` (what earlier deploys installed, service -> hosts) a
    column says what this run changes: ``new``, ``adds <hosts>`` or
    ``deployed``, and the summary names what the run would add.
    """
    header = ("#", "service", "hosts", "why")
    rows = [(*header, "state") if deployed is not None else header]
    for number, service in enumerate(plan.services, start=1):
        skipped = "" if service.name in plan.run else " (not in this run)"
        row = (str(number), service.name, _hosts_text(service), service.reason + skipped)
        rows.append((*row, change_text(service, deployed)) if deployed is not None else row)
    widths = [*(max(len(row[col]) for row in rows) for col in range(len(rows[0]) - 1)), 0]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    hosts = {host for service in plan.services for host in service.hosts}
    summary = f"{_count(len(plan.services), 'service')} on {_count(len(hosts), 'host')}"
    if plan.restricted:
        summary += f"; this run deploys {len(plan.run)}: {', '.join(plan.run)}"
    if deployed is not None:
        adds = [
            f"{s.name} ({change_text(s, deployed)})"
            for s in plan.services
            if s.name in plan.run and change_text(s, deployed) != "deployed"
        ]
        summary += f"\nthis run adds: {', '.join(adds)}" if adds else "\nnothing new to add"
    return "\n".join([*lines, summary])


def change_text(service: PlannedService, deployed: Mapping[str, Sequence[str]] | None) -> str:
    """``new``, ``adds <hosts>`` or ``deployed``, from what earlier deploys installed."""
    before = (deployed or {}).get(service.name)
    if before is None:
        return "new"
    added = [host for host in service.hosts if host not in before]
    return f"adds {', '.join(added)}" if added else "deployed"


def _hosts_text(service: PlannedService) -> str:
    if len(service.groups) == 1:
        return ", ".join(service.hosts) or "-"
    return "; ".join(
        f"{group}: {', '.join(hosts) or '-'}" for group, hosts in service.groups.items()
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
