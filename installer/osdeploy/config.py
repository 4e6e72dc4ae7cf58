"""Read and validate ``osdeploy.yml`` into a typed ``Config``.

Validation is plain Python: every problem is collected (with the field path and,
where the YAML tells us, the line) and raised once as ``ConfigError``. Nothing
here touches a host; the only files read are the config and the SSH key's
metadata.
"""

import base64
import binascii
import configparser
import ipaddress
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from osdeploy.catalog import HOST_ROLES, Catalog, load_catalog
from osdeploy.errors import ConfigError, InputError, Problem, suggest

CONFIG_NAME = "osdeploy.yml"
DEFAULT_NAME = "osdeploy"
DEFAULT_SSH_USER = "osdeploy"
DEFAULT_SSH_KEY = "~/.ssh/id_ed25519"
DEFAULT_SSH_PORT = 22
DEFAULT_APT_MIRROR = "http://deb.debian.org/debian"

TOP_KEYS = ("name", "ssh", "hosts", "services", "network", "apt", "ceph", "overrides")
SSH_KEYS = ("user", "key", "port", "host_key_checking")
HOST_KEYS = ("name", "address", "roles", "osd_devices", "swift_devices")
#: A file-backed OSD's size, as `truncate --size` reads it (e.g. 10G).
_SIZE_RE = re.compile(r"^[1-9][0-9]*[KMGT]?$")
NETWORK_KEYS = ("internal_address", "public_address")
APT_KEYS = ("mirror", "proxy")
CEPH_KEYS = ("conf", "keyrings", "pools")
#: ceph.pools: the pool of each use -> the role variable that names it.
CEPH_POOL_VARS = {
    "volumes": "cinder_rbd_pool",
    "images": "glance_rbd_store_pool",
    "vms": "nova_rbd_pool",
    "backups": "cinder_backup_ceph_pool",
    # Gnocchi's RADOS pool (measures and aggregates), with Ceph in the plan.
    "metrics": "gnocchi_ceph_pool",
}
#: The cephx users each service opens Ceph as: (role variable, its default).
CEPH_USERS = {
    "cinder": (("cinder_rbd_user", "cinder"), ("cinder_backup_ceph_user", "cinder-backup")),
    "glance": (("glance_rbd_store_user", "glance"),),
    "nova": (("nova_rbd_user", "nova"),),
    "gnocchi": (("gnocchi_ceph_user", "gnocchi"),),
}
#: Variables osdeploy renders itself; overriding them would break the contract.
RESERVED_PREFIXES = ("osdeploy_", "enable_", "ansible_")

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]*$")
_VAR_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
_POOL_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_KEYRING_SECTION_RE = re.compile(r"^\s*\[([^]]+)\]\s*$")
_KEYRING_KEY_RE = re.compile(r"^\s*key\s*=\s*(\S+)\s*$")

#: A field path: ``("hosts", 1, "address")`` is shown as ``hosts[1].address``.
FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    roles: tuple[str, ...]
    #: Ceph OSDs of a storage host: {"path": disk} or {"path": file, "size": size}.
    osd_devices: tuple[dict[str, str], ...] = ()
    #: Swift devices of a storage host: {"name": n} (a filesystem at /srv/node/n), weight, zone.
    swift_devices: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class SshSettings:
    user: str
    key: Path  # absolute
    port: int
    host_key_checking: bool


@dataclass(frozen=True)
class CephExternal:
    """An existing Ceph cluster the cloud uses (``ceph:``); osdeploy deploys no Ceph daemons."""

    conf: Path  # absolute, on this machine
    keyrings: dict[str, Path]  # cephx user (without client.) -> keyring file, absolute
    pools: dict[str, str]  # use (volumes, images, vms, backups) -> pool name, as given


@dataclass(frozen=True)
class Config:
    path: Path
    name: str
    ssh: SshSettings
    hosts: tuple[Host, ...]
    services: tuple[str, ...]
    internal_address: str
    public_address: str
    apt_mirror: str
    apt_proxy: str | None
    overrides: dict[str, Any]
    ceph: CephExternal | None = None

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        names = [host.name for host in self.hosts]
        raise InputError(f"no host {name} in {self.path}; {suggest(name, names, 'hosts are')}")

    def hosts_with_role(self, role: str) -> tuple[Host, ...]:
        return tuple(host for host in self.hosts if role in host.roles)

    @property
    def control_hosts(self) -> tuple[Host, ...]:
        return self.hosts_with_role("control")


def format_path(path: FieldPath) -> str:
    """``("hosts", 1, "address")`` -> ``hosts[1].address``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def load_config(path: Path, catalog: Catalog | None = None, *, check_files: bool = True) -> Config:
    """Read and validate a config file; raises ``ConfigError`` listing every problem.

    ``check_files=False`` skips the checks of files the config points at (the SSH key).
    """
    display = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fix = "run `osdeploy init` to write one, or pass --dir / -c"
        raise ConfigError([Problem("", "file not found", fix, display)], display) from None
    except (OSError, UnicodeDecodeError) as exc:
        problem = Problem("", f"cannot read the file ({exc})", "check the file", display)
        raise ConfigError([problem], display) from None
    data, root = _parse_yaml(text, display)
    reader = _Reader(display, root)
    _check_duplicate_keys(root, (), reader)
    if data is None:
        fix = "run `osdeploy init` for a commented example, or add hosts: and services:"
        raise ConfigError([Problem("", "the file is empty", fix, display)], display)
    if not isinstance(data, dict):
        reader.add((), f"the file holds {_kind(data)}", "write settings as key: value lines")
        raise ConfigError(reader.problems, display)
    config = _build(data, path, reader, catalog or load_catalog(), check_files)
    if reader.problems:
        raise ConfigError(reader.problems, display)
    return config


def _display(path: Path) -> str:
    """The path as the user best recognises it: relative to the cwd when below it."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _parse_yaml(text: str, display: str) -> tuple[object, yaml.Node | None]:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = f"YAML syntax error: {exc.problem or exc.context}"
        fix = "fix the syntax at that line (indentation, quotes, a missing ':')"
        raise ConfigError([Problem("", message, fix, display, line)], display) from None
    except yaml.YAMLError as exc:
        problem = Problem("", f"YAML error: {exc}", "fix the YAML syntax", display)
        raise ConfigError([problem], display) from None
    finally:
        loader.dispose()


def _line(root: yaml.Node | None, path: FieldPath) -> int | None:
    """The 1-based line of the deepest node of ``path`` found in the YAML tree.

    None when not even the first part is there (a missing top-level key has no line).
    """
    node, line = root, (root.start_mark.line + 1 if root is not None and not path else None)
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = [
                (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part
            ]
            if not match:
                break
            key, node = match[-1]
            line = key.start_mark.line + 1
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _check_duplicate_keys(node: yaml.Node | None, path: FieldPath, reader: "_Reader") -> None:
    """PyYAML keeps the last of duplicate keys silently; tell the user instead."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                message = f"duplicate key (also line {seen[name]})"
                reader.add((*path, name), message, "keep only one of them")
            seen.setdefault(name, key.start_mark.line + 1)
            _check_duplicate_keys(value, (*path, name), reader)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicate_keys(item, (*path, index), reader)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


class _Reader:
    """Typed field access that records a problem instead of failing on the first one."""

    def __init__(self, file: str, root: yaml.Node | None) -> None:
        self.file = file
        self.root = root
        self.problems: list[Problem] = []

    def add(self, path: FieldPath, message: str, fix: str) -> None:
        line = _line(self.root, path)
        self.problems.append(Problem(format_path(path), message, fix, self.file, line))

    def unknown_keys(self, mapping: dict[Any, Any], path: FieldPath, known: Sequence[str]) -> None:
        for key in mapping:
            if key not in known:
                self.add((*path, str(key)), "unknown key", suggest(str(key), known, "known keys"))

    def section(self, data: dict[str, Any], key: str, known: Sequence[str]) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            fix = f"write {key}: followed by indented 'key: value' lines"
            self.add((key,), f"must be a mapping, not {_kind(value)}", fix)
            return {}
        self.unknown_keys(value, (key,), known)
        return value

    def text(
        self, mapping: dict[str, Any], path: FieldPath, default: str | None, fix: str
    ) -> str | None:
        """A non-empty string; ``default`` when absent or null."""
        value = mapping.get(str(path[-1]))
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            self.add(path, f"must be a non-empty string, not {_kind(value)}", fix)
            return None
        return value

    def name(self, mapping: dict[str, Any], path: FieldPath, default: str | None) -> str | None:
        fix = "use lowercase letters, digits and '-' (at most 63, no leading or trailing '-')"
        value = self.text(mapping, path, default, fix)
        if value is None and default is None and mapping.get(str(path[-1])) is None:
            self.add(path, "missing (required)", f"add {path[-1]}: and {fix}")
        elif value is not None and not NAME_RE.match(value):
            self.add(path, f"invalid name {value!r}", fix)
            return None
        return value

    def address(self, mapping: dict[str, Any], path: FieldPath, required: bool) -> str | None:
        fix = "give an IPv4 or IPv6 address such as 192.0.2.10"
        value = mapping.get(str(path[-1]))
        if value is None:
            if required:
                self.add(path, "missing (required)", fix)
            return None
        try:
            return str(ipaddress.ip_address(value if isinstance(value, str) else ""))
        except ValueError:
            shown = repr(value) if isinstance(value, str) else _kind(value)
            self.add(path, f"invalid address {shown}", fix)
            return None

    def url(self, mapping: dict[str, Any], path: FieldPath, default: str | None) -> str | None:
        fix = "give an http:// or https:// URL"
        value = self.text(mapping, path, default, fix)
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                self.add(path, f"invalid URL {value!r}", fix)
                return None
        return value

    def port(self, mapping: dict[str, Any], path: FieldPath, default: int) -> int:
        value = mapping.get(str(path[-1]), default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            shown = repr(value) if isinstance(value, int | str) else _kind(value)
            fix = f"write a number from 1 to 65535 without quotes, e.g. {path[-1]}: {default}"
            self.add(path, f"must be a port number, not {shown}", fix)
            return default
        return value

    def flag(self, mapping: dict[str, Any], path: FieldPath, default: bool) -> bool:
        value = mapping.get(str(path[-1]), default)
        if not isinstance(value, bool):
            self.add(path, f"must be true or false, not {_kind(value)}", "write true or false")
            return default
        return value


def _build(
    data: dict[str, Any], path: Path, reader: _Reader, catalog: Catalog, check_files: bool
) -> Config:
    reader.unknown_keys(data, (), TOP_KEYS)
    name = reader.name(data, ("name",), DEFAULT_NAME)
    ssh = _ssh(reader, reader.section(data, "ssh", SSH_KEYS), path.absolute().parent, check_files)
    hosts, roles_present = _hosts(reader, data)
    services = _services(reader, data, catalog)
    # With ceph: (an existing cluster) the Ceph daemons' groups need no hosts.
    hostless = ("ceph",) if isinstance(data.get("ceph"), dict) else ()
    _check_services(reader, services, roles_present, catalog, hostless)
    network = reader.section(data, "network", NETWORK_KEYS)
    internal = reader.address(network, ("network", "internal_address"), required=False)
    public = reader.address(network, ("network", "public_address"), required=False)
    first = next((h for h in hosts if "control" in h.roles), hosts[0] if hosts else None)
    internal = internal or (first.address if first else "")
    apt = reader.section(data, "apt", APT_KEYS)
    overrides = _overrides(reader, data)
    ceph_section = reader.section(data, "ceph", CEPH_KEYS)
    raw_hosts = data.get("hosts")
    raw_hosts = raw_hosts if isinstance(raw_hosts, list) else []
    for index, item in enumerate(raw_hosts):
        if ceph_section and isinstance(item, dict) and item.get("osd_devices"):
            fix = "remove osd_devices: the existing cluster of ceph: has its own OSDs"
            reader.add(("hosts", index, "osd_devices"), "osdeploy deploys no OSD with ceph:", fix)
    planned = catalog.closure(name for _, name in services) if services else ()
    ceph = _ceph(reader, ceph_section, planned, overrides, path.absolute().parent, check_files)
    storage = [h for h in hosts if "storage" in h.roles]
    if (
        "swift" in planned
        and storage
        and not overrides.get("swift_devices")
        and not any(h.swift_devices for h in storage)
    ):
        fix = "add swift_devices: [sdb] to each storage host (filesystems at /srv/node/<name>)"
        reader.add(("hosts",), "no storage host lists swift_devices: Swift has no device", fix)
    return Config(
        path=path,
        name=name or DEFAULT_NAME,
        ssh=ssh,
        hosts=hosts,
        services=tuple(name for _, name in services),
        internal_address=internal,
        public_address=public or internal,
        apt_mirror=reader.url(apt, ("apt", "mirror"), DEFAULT_APT_MIRROR) or DEFAULT_APT_MIRROR,
        apt_proxy=reader.url(apt, ("apt", "proxy"), None),
        overrides=overrides,
        ceph=ceph,
    )


def _ssh(reader: _Reader, ssh: dict[str, Any], base: Path, check_files: bool) -> SshSettings:
    user_fix = "give the login user, e.g. user: debian"
    user = reader.text(ssh, ("ssh", "user"), DEFAULT_SSH_USER, user_fix) or DEFAULT_SSH_USER
    if not _USER_RE.match(user):
        reader.add(("ssh", "user"), f"invalid user name {user!r}", user_fix)
    key_fix = "give the private key's path, relative to the directory of osdeploy.yml"
    raw_key = reader.text(ssh, ("ssh", "key"), DEFAULT_SSH_KEY, key_fix) or DEFAULT_SSH_KEY
    key = base / Path(raw_key).expanduser()
    if check_files:
        _check_key(reader, key)
    return SshSettings(
        user=user,
        key=key,
        port=reader.port(ssh, ("ssh", "port"), DEFAULT_SSH_PORT),
        host_key_checking=reader.flag(ssh, ("ssh", "host_key_checking"), True),
    )


def _check_key(reader: _Reader, key: Path) -> None:
    if not key.is_file():
        fix = f"create it (ssh-keygen -t ed25519 -f {key}) or point ssh.key at your private key"
        reader.add(("ssh", "key"), f"no such file {key}", fix)
    elif key.stat().st_mode & 0o077:
        reader.add(
            ("ssh", "key"), f"{key} is readable by others; ssh refuses it", f"chmod 600 {key}"
        )


def _hosts(reader: _Reader, data: dict[str, Any]) -> tuple[tuple[Host, ...], set[str] | None]:
    """The valid hosts, and the host roles present (None when some roles are invalid)."""
    raw = data.get("hosts")
    fix = "list hosts as '- name: ctl1' items with address and roles; see `osdeploy init`"
    if "hosts" not in data or raw is None:
        reader.add(("hosts",), "missing (required)", fix)
        return (), None
    if not isinstance(raw, list):
        reader.add(("hosts",), f"must be a list, not {_kind(raw)}", fix)
        return (), None
    if not raw:
        reader.add(("hosts",), "is empty", "add at least one host with the control role")
        return (), None
    hosts: list[Host] = []
    present: set[str] | None = set()
    names: dict[str, int] = {}
    addresses: dict[str, int] = {}
    for index, item in enumerate(raw):
        where: FieldPath = ("hosts", index)
        if not isinstance(item, dict):
            reader.add(where, f"must be a mapping, not {_kind(item)}", "give name, address, roles")
            present = None
            continue
        reader.unknown_keys(item, where, HOST_KEYS)
        name = reader.name(item, (*where, "name"), None)
        address = reader.address(item, (*where, "address"), required=True)
        roles = _roles(reader, item, (*where, "roles"))
        devices = _osd_devices(reader, item, (*where, "osd_devices"), roles)
        swift = _swift_devices(reader, item, (*where, "swift_devices"), roles)
        _unique(reader, (*where, "name"), name, names, "name")
        _unique(reader, (*where, "address"), address, addresses, "address")
        if roles is None:
            present = None
        elif present is not None:
            present.update(roles)
        if name and address and roles:
            hosts.append(Host(name, address, roles, devices, swift))
    if present is not None and "control" not in present:
        fix = "give at least one host the control role (APIs, database, broker)"
        reader.add(("hosts",), "no host has the control role", fix)
    return tuple(hosts), present


def _unique(
    reader: _Reader, path: FieldPath, value: str | None, seen: dict[str, int], what: str
) -> None:
    if value is None:
        return
    if value in seen:
        message = f"duplicate {what} {value} (also hosts[{seen[value]}])"
        reader.add(path, message, f"give each host its own {what}")
    else:
        seen[value] = int(path[1])


def _roles(reader: _Reader, item: dict[str, Any], path: FieldPath) -> tuple[str, ...] | None:
    value = item.get("roles")
    fix = f"give the host roles from {', '.join(HOST_ROLES)}, e.g. roles: [control]"
    if value is None or value == []:
        reader.add(path, "missing: a host needs at least one role", fix)
        return None
    if not isinstance(value, list) or not all(isinstance(role, str) for role in value):
        reader.add(path, f"must be a list of role names, not {_kind(value)}", fix)
        return None
    ok = True
    for index, role in enumerate(value):
        if role not in HOST_ROLES:
            reader.add((*path, index), f"unknown host role {role}", suggest(role, HOST_ROLES, fix))
            ok = False
        elif role in value[:index]:
            reader.add((*path, index), f"role {role} listed twice", "list it once")
    return tuple(role for role in HOST_ROLES if role in value) if ok else None


def _storage_entries(
    reader: _Reader,
    item: dict[str, Any],
    path: FieldPath,
    roles: tuple[str, ...] | None,
    shorthand: str,
    fix: str,
    only: str,
) -> list[tuple[FieldPath, dict[str, Any]]]:
    """The entries of a storage host's device list (``osd_devices``,
    ``swift_devices``), each a mapping: a plain string is ``{shorthand: it}``."""
    key = path[-1]
    value = item.get(str(key))
    if value is None:
        return []
    if not isinstance(value, list):
        reader.add(path, f"must be a list, not {_kind(value)}", fix)
        return []
    if roles is not None and "storage" not in roles:
        reader.add(path, only, f"add storage to its roles, or remove {key}")
    entries: list[tuple[FieldPath, dict[str, Any]]] = []
    for index, entry in enumerate(value):
        where: FieldPath = (*path, index)
        device = {shorthand: entry} if isinstance(entry, str) else entry
        if not isinstance(device, dict):
            reader.add(where, f"must be a {shorthand} or a mapping, not {_kind(entry)}", fix)
            continue
        entries.append((where, device))
    return entries


def _osd_devices(
    reader: _Reader, item: dict[str, Any], path: FieldPath, roles: tuple[str, ...] | None
) -> tuple[dict[str, str], ...]:
    """A storage host's OSDs: whole disks (a path) or files (``{path: ..., size: 10G}``)."""
    fix = "list whole disks, e.g. [/dev/disk/by-id/wwn-0x5000c5...], or {path: <file>, size: 10G}"
    only = "only a storage host runs OSDs"
    devices: list[dict[str, str]] = []
    for where, device in _storage_entries(reader, item, path, roles, "path", fix, only):
        reader.unknown_keys(device, where, ("path", "size"))
        given = device.get("path")
        if not isinstance(given, str) or not given.startswith("/"):
            reader.add(where, f"needs an absolute path, not {given!r}", fix)
            continue
        size = device.get("size")
        if size is not None and not (isinstance(size, str) and _SIZE_RE.match(size)):
            reader.add((*where, "size"), f"invalid size {size!r}", "give a size such as 10G")
            continue
        if given in [d["path"] for d in devices]:
            reader.add(where, f"{given} listed twice", "list each disk once")
            continue
        devices.append({"path": given, **({"size": size} if size is not None else {})})
    return tuple(devices)


def _swift_devices(
    reader: _Reader, item: dict[str, Any], path: FieldPath, roles: tuple[str, ...] | None
) -> tuple[dict[str, Any], ...]:
    """A storage host's Swift devices: names (``sdb``) or ``{name, weight, zone}``."""
    fix = "list the devices' names, e.g. [sdb, sdc], or {name: sdb, weight: 200, zone: 2}"
    only = "only a storage host holds Swift devices"
    devices: list[dict[str, Any]] = []
    for where, device in _storage_entries(reader, item, path, roles, "name", fix, only):
        reader.unknown_keys(device, where, ("name", "weight", "zone"))
        name = device.get("name")
        if not isinstance(name, str) or not _POOL_RE.match(name):
            reader.add(where, f"invalid device name {name!r}", "use letters, digits, . _ -")
            continue
        for key in ("weight", "zone"):
            number = device.get(key)
            if number is not None and (type(number) is not int or number < 1):
                reader.add((*where, key), f"must be a whole number above 0, not {number!r}", fix)
        if name in [d["name"] for d in devices]:
            reader.add(where, f"{name} listed twice", "list each device once")
            continue
        devices.append(dict(device))
    return tuple(devices)


def _services(reader: _Reader, data: dict[str, Any], catalog: Catalog) -> list[tuple[int, str]]:
    """The known, unique requested services with their list index."""
    raw = data.get("services")
    fix = "list the services to deploy, e.g. services: [keystone]"
    if raw is None or raw == []:
        reader.add(("services",), "missing (required)" if raw is None else "is empty", fix)
        return []
    if not isinstance(raw, list):
        reader.add(("services",), f"must be a list, not {_kind(raw)}", fix)
        return []
    services: list[tuple[int, str]] = []
    for index, name in enumerate(raw):
        where: FieldPath = ("services", index)
        if not isinstance(name, str):
            reader.add(where, f"must be a service name, not {_kind(name)}", fix)
        elif name not in catalog:
            message = f"unknown service {name}"
            reader.add(where, message, suggest(name, catalog.names(), "known services"))
        elif name in raw[:index]:
            reader.add(where, f"service {name} listed twice", "list it once")
        else:
            services.append((index, name))
    return services


def _check_services(
    reader: _Reader,
    services: list[tuple[int, str]],
    roles_present: set[str] | None,
    catalog: Catalog,
    hostless: Sequence[str] = (),
) -> None:
    """Each requested service must be deployable, and its groups (but hostless ones') need hosts."""
    ready = ", ".join(catalog.deployable_names())
    deployable: list[str] = []
    for index, name in services:
        blocked = [dep for dep in catalog.closure([name]) if not catalog[dep].deployable]
        if name in blocked:
            message = f"{name} is not deployable yet in this release"
            reader.add(("services", index), message, f"remove it (deployable now: {ready})")
        elif blocked:
            message = f"{name} needs {', '.join(blocked)}, not deployable yet in this release"
            reader.add(("services", index), message, f"remove {name} (deployable now: {ready})")
        else:
            deployable.append(name)
    if roles_present is None or "control" not in roles_present:
        return  # the hosts' roles are already reported as wrong
    missing: dict[tuple[str, ...], list[str]] = {}
    for name in catalog.closure(deployable):
        if name in hostless:
            continue
        for group, roles in catalog[name].groups.items():
            if not roles_present.intersection(roles):
                missing.setdefault(roles, []).append(f"{group} ({name})")
    for roles, groups in missing.items():
        message = f"no host has role {' or '.join(roles)}, needed by {', '.join(groups)}"
        fix = f"add {roles[0]} to the roles of a host, or remove the services that need it"
        reader.add(("hosts",), message, fix)


def _overrides(reader: _Reader, data: dict[str, Any]) -> dict[str, Any]:
    value = data.get("overrides")
    if value is None:
        return {}
    if not isinstance(value, dict):
        fix = "map role variables to values, e.g. keystone_log_debug: true"
        reader.add(("overrides",), f"must be a mapping, not {_kind(value)}", fix)
        return {}
    for key in value:
        where: FieldPath = ("overrides", str(key))
        if not isinstance(key, str) or not _VAR_RE.match(key):
            reader.add(where, "not a variable name", "use lowercase letters, digits and _")
        elif key.startswith(RESERVED_PREFIXES):
            fix = "remove it: osdeploy sets it from ssh:, hosts:, services:, network: and apt:"
            reader.add(where, f"{key} is set by osdeploy itself", fix)
    return dict(value)


def _ceph(
    reader: _Reader,
    ceph: dict[str, Any],
    planned: Sequence[str],
    overrides: dict[str, Any],
    base: Path,
    check_files: bool,
) -> CephExternal | None:
    """``ceph:``, an existing cluster: its ceph.conf, a keyring per user, its pools."""
    if not ceph:
        return None
    if "ceph" not in planned:
        fix = "add cinder (or ceph) to services:, or remove ceph:"
        reader.add(("ceph",), "names a Ceph cluster, but no planned service uses Ceph", fix)
    conf_fix = "give the path of the cluster's ceph.conf, relative to the directory of osdeploy.yml"
    conf = reader.text(ceph, ("ceph", "conf"), None, conf_fix)
    if conf is None and ceph.get("conf") is None:
        reader.add(("ceph", "conf"), "missing (required)", conf_fix)
    conf_path = base / Path(conf or "ceph.conf").expanduser()
    if conf is not None and check_files:
        _check_ceph_conf(reader, conf_path)
    users = [
        str(overrides.get(variable, default))
        for service, pairs in CEPH_USERS.items()
        if service in planned
        for variable, default in pairs
    ]
    keyrings = _ceph_keyrings(reader, ceph.get("keyrings"), users, base, check_files)
    return CephExternal(conf_path, keyrings, _ceph_pools(reader, ceph.get("pools")))


def _check_ceph_conf(reader: _Reader, path: Path) -> None:
    where: FieldPath = ("ceph", "conf")
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        reader.add(where, f"no such file {path}", "copy the cluster's /etc/ceph/ceph.conf there")
        return
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        reader.add(where, f"cannot read {path} ({exc})", "give the cluster's ceph.conf")
        return
    # Ceph takes "mon host" and "mon_host" alike.
    settings = {
        key.replace(" ", "_"): value
        for key, value in (parser["global"].items() if parser.has_section("global") else [])
    }
    if not settings.get("mon_host"):
        fix = "give the ceph.conf the cluster's clients use: it names the monitors (mon_host)"
        reader.add(where, f"{path} has no mon_host in [global]", fix)
    fsid = settings.get("fsid", "")
    try:
        uuid.UUID(fsid)
    except ValueError:
        fix = "give the ceph.conf the cluster's clients use: its [global] holds the fsid"
        reader.add(where, f"{path} has no valid fsid in [global]", fix)


def _ceph_keyrings(
    reader: _Reader, raw: object, users: Sequence[str], base: Path, check_files: bool
) -> dict[str, Path]:
    where: FieldPath = ("ceph", "keyrings")
    example = ", ".join(f"{user}: ceph.client.{user}.keyring" for user in users)
    fix = f"map each cephx user to its keyring file, e.g. {{{example}}}"
    if raw is None:
        reader.add(where, "missing (required)", fix)
        return {}
    if not isinstance(raw, dict):
        reader.add(where, f"must be a mapping, not {_kind(raw)}", fix)
        return {}
    for user in users:
        if user not in raw:
            message = f"no keyring for client.{user}, which the planned services use"
            reader.add(where, message, f"add {user}: <its keyring file> ({fix})")
    keyrings: dict[str, Path] = {}
    for user, value in raw.items():
        path_fix = f"give the path of the keyring of client.{user}"
        text = reader.text(raw, (*where, str(user)), None, path_fix)
        if text is None:
            if value is None:
                reader.add((*where, str(user)), "missing a path", path_fix)
            continue
        keyrings[str(user)] = base / Path(text).expanduser()
        if check_files:
            _check_keyring(reader, (*where, str(user)), str(user), keyrings[str(user)])
    return keyrings


def _check_keyring(reader: _Reader, where: FieldPath, user: str, path: Path) -> None:
    """The file holds client.<user>'s cephx key."""
    fix = f"give the file `ceph auth get client.{user}` writes on the cluster"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        reader.add(where, f"no such file {path}", fix)
        return
    except (OSError, UnicodeDecodeError) as exc:
        reader.add(where, f"cannot read {path} ({exc})", fix)
        return
    # The role takes a file's first key (one user per file, as `ceph auth
    # get` writes it): that must be the user's.
    section, keyed = None, []
    for line in lines:
        if match := _KEYRING_SECTION_RE.match(line):
            section = match.group(1).strip()
        elif match := _KEYRING_KEY_RE.match(line):
            keyed.append((section, match.group(1)))
    key = keyed[0][1] if keyed and keyed[0][0] == f"client.{user}" else None
    if key is None and any(name == f"client.{user}" for name, _ in keyed):
        message = f"{path} holds the key of {keyed[0][0]} before client.{user}'s"
        reader.add(where, message, f"give a file with client.{user} alone ({fix})")
    elif key is None:
        reader.add(where, f"{path} holds no key of client.{user}", fix)
    elif not _is_cephx_key(key):
        reader.add(where, f"{path}: the key of client.{user} is not a cephx key", fix)


def _is_cephx_key(text: str) -> bool:
    """The base64 of a cephx secret: a 12-byte header then as many bytes as it says."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) > 12 and int.from_bytes(raw[10:12], "little") == len(raw) - 12


def _ceph_pools(reader: _Reader, raw: object) -> dict[str, str]:
    where: FieldPath = ("ceph", "pools")
    fix = "map each use to the cluster's pool, e.g. {volumes: volumes, images: images}"
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        reader.add(where, f"must be a mapping, not {_kind(raw)}", fix)
        return {}
    reader.unknown_keys(raw, where, tuple(CEPH_POOL_VARS))
    pools: dict[str, str] = {}
    for use in CEPH_POOL_VARS:
        name_fix = "give a pool name (letters, digits, '_', '.', '-')"
        name = reader.text(raw, (*where, use), None, name_fix)
        if name is not None and not _POOL_RE.match(name):
            reader.add((*where, use), f"invalid pool name {name!r}", name_fix)
        elif name is not None:
            pools[use] = name
    return pools
