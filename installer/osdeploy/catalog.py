"""The service catalog (``catalog.yml``): typed, checked for consistency, and resolved.

Pure: reading the packaged file is the only side effect, and ``parse_catalog``
works on already-loaded data.
"""

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from osdeploy.errors import CatalogError, Problem

#: Host roles a host can hold, in display order.
HOST_ROLES = ("control", "network", "compute", "storage")
KINDS = ("infrastructure", "openstack")
CATALOG_PATH = Path(__file__).with_name("catalog.yml")

_REQUIRED = ("kind", "description", "deployable", "groups", "depends", "ports", "secrets", "verify")
_FIELDS = (*_REQUIRED, "endpoints")
_ENDPOINT_FIELDS = ("type", "port", "path")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

#: Records one problem: field path, message, fix.
_Report = Callable[[str, str, str], None]


@dataclass(frozen=True)
class Endpoint:
    """A Keystone catalog entry: ``http://<address>:<ports[port]><path>``."""

    type: str
    port: str
    path: str


@dataclass(frozen=True)
class Service:
    """One catalog entry."""

    name: str
    kind: str
    description: str
    deployable: bool
    groups: Mapping[str, tuple[str, ...]]
    depends: tuple[str, ...]
    ports: Mapping[str, int]
    secrets: tuple[str, ...]
    verify: tuple[str, ...]
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def host_roles(self) -> tuple[str, ...]:
        """Every host role any of the service's groups runs on, in ``HOST_ROLES`` order."""
        used = {role for roles in self.groups.values() for role in roles}
        return tuple(role for role in HOST_ROLES if role in used)


@dataclass(frozen=True)
class Catalog:
    """All services, in catalog order."""

    services: tuple[Service, ...]

    def __contains__(self, name: object) -> bool:
        return any(service.name == name for service in self.services)

    def __getitem__(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def names(self) -> tuple[str, ...]:
        return tuple(service.name for service in self.services)

    def deployable_names(self) -> tuple[str, ...]:
        return tuple(service.name for service in self.services if service.deployable)

    def group_names(self) -> tuple[str, ...]:
        return tuple(group for service in self.services for group in service.groups)

    def closure(self, names: Iterable[str]) -> tuple[str, ...]:
        """``names`` plus all their dependencies, transitively, in deployment order."""
        wanted: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                stack.extend(self[name].depends)
        return self.order(wanted)

    def deployable(self, kind: str | None = None) -> tuple[str, ...]:
        """Names of the services whose roles exist (of one ``kind``, if given), in catalog order."""
        return tuple(
            s.name for s in self.services if s.deployable and (kind is None or s.kind == kind)
        )

    def order(self, names: Iterable[str]) -> tuple[str, ...]:
        """Topological order of ``names`` (dependencies first), catalog order breaking ties.

        Dependencies outside ``names`` are taken as already satisfied.
        """
        pool = set(names)
        pending = [name for name in self.names() if name in pool]
        done: list[str] = []
        while pending:
            ready = next(
                name
                for name in pending
                if all(dep in done or dep not in pending for dep in self[name].depends)
            )
            pending.remove(ready)
            done.append(ready)
        return tuple(done)

    def host_roles(self, services: Iterable[str], groups: Iterable[str]) -> tuple[str, ...]:
        """The Ansible roles a host in ``groups`` runs for ``services``, in their order.

        A catalog group is served by the role its name starts with
        (``nova_compute``: role ``nova``); a service counts only when the host
        is in its ``enable_<service>_True`` group (gather.yml), i.e. enabled
        for this run.
        """
        member = set(groups)
        roles: list[str] = []
        for name in services:
            if name not in self or f"enable_{name}_True" not in member:
                continue
            for group in self[name].groups:
                role = role_of_group(group)
                if group in member and role not in roles:
                    roles.append(role)
        return tuple(roles)

    def dependents(self, name: str, among: Iterable[str]) -> tuple[str, ...]:
        """Services in ``among`` that depend directly on ``name``, in catalog order."""
        pool = set(among)
        return tuple(s.name for s in self.services if s.name in pool and name in s.depends)


def role_of_group(group: str) -> str:
    """The role that serves a catalog group: its name up to the first underscore."""
    return group.split("_", 1)[0]


def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """Read and check a catalog file; raises ``CatalogError`` listing every problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problem = Problem("", f"cannot read the catalog: {exc}", "reinstall osdeploy", path.name)
        raise CatalogError([problem], path.name) from exc
    return parse_catalog(data, path.name)


def parse_catalog(data: object, source: str = "catalog.yml") -> Catalog:
    """Build a ``Catalog`` from loaded YAML, checking fields, references and cycles."""
    problems: list[Problem] = []

    def problem(path: str, message: str, fix: str) -> None:
        problems.append(Problem(path, message, fix, source))

    entries = data.get("services") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or not entries:
        problem("services", "missing or not a mapping", "map each service name to its entry")
        raise CatalogError(problems, source)
    services = [_parse_service(str(name), entry, problem) for name, entry in entries.items()]
    catalog = Catalog(tuple(s for s in services if s is not None))
    if not problems:
        _check_references(catalog, problem)
    if problems:
        raise CatalogError(problems, source)
    return catalog


def _parse_service(name: str, entry: object, problem: _Report) -> Service | None:
    where = f"services.{name}"
    if not _NAME_RE.match(name):
        problem(where, "invalid service name", "use lowercase letters, digits and _")
    if not isinstance(entry, dict):
        problem(where, "entry is not a mapping", f"give the fields {', '.join(_REQUIRED)}")
        return None
    for key in entry:
        if key not in _FIELDS:
            problem(f"{where}.{key}", "unknown field", f"known fields: {', '.join(_FIELDS)}")
    missing = [key for key in _REQUIRED if key not in entry]
    if missing:
        problem(where, f"missing {', '.join(missing)}", "add every required field")
        return None
    groups = entry["groups"]
    ports = entry["ports"]
    lists = {key: entry[key] for key in ("depends", "secrets", "verify")}
    endpoints = entry.get("endpoints", [])
    ok = (
        entry["kind"] in KINDS
        and isinstance(entry["description"], str)
        and isinstance(entry["deployable"], bool)
        and isinstance(groups, dict)
        and all(_is_str_list(roles) for roles in groups.values())
        and isinstance(ports, dict)
        and all(isinstance(p, int) and 0 < p < 65536 for p in ports.values())
        and all(_is_str_list(value) for value in lists.values())
        and isinstance(endpoints, list)
        and all(isinstance(e, dict) and set(e) == set(_ENDPOINT_FIELDS) for e in endpoints)
    )
    if not ok:
        problem(
            where, "a field has the wrong type or value", "compare with the header of catalog.yml"
        )
        return None
    return Service(
        name=name,
        kind=entry["kind"],
        description=entry["description"],
        deployable=entry["deployable"],
        groups={str(group): tuple(roles) for group, roles in groups.items()},
        depends=tuple(lists["depends"]),
        ports={str(key): port for key, port in ports.items()},
        secrets=tuple(lists["secrets"]),
        verify=tuple(lists["verify"]),
        endpoints=tuple(
            Endpoint(str(e["type"]), str(e["port"]), str(e["path"])) for e in endpoints
        ),
    )


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _check_references(catalog: Catalog, problem: _Report) -> None:
    seen_groups: dict[str, str] = {}
    for service in catalog.services:
        where = f"services.{service.name}"
        for dep in service.depends:
            if dep not in catalog:
                problem(f"{where}.depends", f"unknown service {dep}", "add it to the catalog")
            elif service.deployable and not catalog[dep].deployable:
                problem(f"{where}.depends", f"{dep} is not deployable", "mark both alike")
        for group, roles in service.groups.items():
            if not _NAME_RE.match(group) or group in HOST_ROLES or group in seen_groups:
                problem(f"{where}.groups.{group}", "invalid or duplicate group", "rename it")
            seen_groups[group] = service.name
            bad = [role for role in roles if role not in HOST_ROLES] or ([] if roles else ["none"])
            if bad:
                problem(f"{where}.groups.{group}", f"bad host roles {bad}", "use HOST_ROLES")
        for endpoint in service.endpoints:
            if endpoint.port not in service.ports:
                problem(f"{where}.endpoints", f"unknown port {endpoint.port}", "name a port")
        for secret in service.secrets:
            if not _NAME_RE.match(secret):
                problem(f"{where}.secrets", f"invalid name {secret}", "use [a-z0-9_]")
    cycle = _find_cycle(catalog)
    if cycle:
        problem("services", f"dependency cycle {' -> '.join(cycle)}", "break the cycle")


def _find_cycle(catalog: Catalog) -> list[str]:
    """A dependency cycle as ``[a, b, a]``, or ``[]``; unknown dependencies are ignored."""
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> list[str]:
        state[name] = "open"
        for dep in catalog[name].depends:
            if dep not in catalog:
                continue
            if state.get(dep) == "open":
                return [*trail[trail.index(dep) :], dep]
            if dep not in state:
                found = visit(dep, [*trail, dep])
                if found:
                    return found
        state[name] = "done"
        return []

    for name in catalog.names():
        if name not in state:
            found = visit(name, [name])
            if found:
                return found
    return []
