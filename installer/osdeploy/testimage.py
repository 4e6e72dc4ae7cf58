"""A tiny bootable guest for `osdeploy verify`, made from Debian packages only.

Debian trixie's cloud kernel (``linux-image-cloud-amd64``) plus an initramfs
holding ``busybox-static``, the virtio network and disk modules, dropbear
(SSH server) with the shared libraries it needs, and ``lab/testimage/init``.
The guest behaves like a small cloud image: it prints marker lines on ttyS0,
takes an address by DHCP, puts the server's SSH key from the metadata service
into root's ``authorized_keys`` and serves SSH (keys only), and runs its user
data when that is a script (``#!``). Other user data is read as ``ping
<ipv4>`` lines: one ``OSDEPLOY-PING <ipv4> ok|failed`` line per change of
result. No registry, no download but Debian's archive: the packages are
fetched and unpacked in a throw-away container of the lab image, the
initramfs is written by the pure functions below.

How Nova boots it (read in nova 31.0.0, Debian trixie ``python3-nova``
2:31.0.0-6+deb13u3, and glance 30.0.0 ``python3-glance`` 2:30.0.0-3+deb13u5):

- ``nova/compute/api.py`` ``_handle_kernel_and_ramdisk``: the server's
  ``kernel_id`` and ``ramdisk_id`` come from the root image's properties of
  those names (``nokernel`` turns them off); both images must exist.
- ``nova/virt/libvirt/driver.py`` ``_conf_non_lxc`` -> ``_set_guest_for_inst_kernel``
  when ``instance.kernel_id`` is set: libvirt ``<os><kernel>`` is
  ``<instance dir>/kernel``, ``<initrd>`` ``<instance dir>/ramdisk``, and the
  command line is ``root=<root device> console=tty0 console=ttyS0 console=hvc0``
  plus ``no_timer_check`` when ``virt_type = qemu``, unless the root image
  has ``os_command_line``, which then replaces the whole line. ``hvc0`` last
  makes /dev/console the (unconnected) virtio console, so set
  ``os_command_line`` (``KERNEL_CMDLINE``); /init writes to ttyS0 either way.
- ``_create_image``: kernel and ramdisk are fetched with ``fetch_raw_image``
  (plain download, no format inspection, cached per image id); the root disk
  goes through ``images.fetch_to_raw`` whose deep inspection exempts
  ``ami``/``aki``/``ari`` from the "content must match disk_format" rule and
  treats them as raw: 1 MiB of zeros passes.
- The console log (``openstack console log show``) is the guest's first
  serial port, ttyS0.
- Glance 30 ``location.py``: with ``container_format: bare`` it inspects the
  upload and (``[image_format] require_image_format_match = true``, the
  default) rejects data recognised as another format; with the AMI
  container formats (``aki``/``ari``/``ami``) it does not inspect. oslo.utils'
  inspector takes a bzImage for ``gpt`` (boot signature at byte 510) and
  fails its mbr check, so a ``bare`` kernel upload is refused: upload each
  file with container_format equal to its disk_format (``GLANCE_FORMATS``).
- Live migration: the destination's ``pre_live_migration`` fetches kernel
  and ramdisk with ``fetch_to_raw``, whose inspection does run the mbr check
  on an ``aki``: the builder zeroes the bzImage's padding bytes that read as
  partition boot flags (``disarm_boot_sector``).

Direct kernel boot was kept over a bootloader disk: the code path above is
plain and exempt from format inspection, the files stay small, and the
guest's command line stays under our control.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import lzma
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osdeploy import PROJECT_ROOT
from osdeploy.errors import OsdeployError

#: Printed once /init runs (before any network), e.g. ``... kernel=6.12.117+deb13-cloud-amd64``.
MARKER_BOOTED = "OSDEPLOY-TESTIMAGE-BOOTED"
#: Printed once DHCP configured the interface: ``OSDEPLOY-TESTIMAGE-UP ip=10.0.0.5``.
MARKER_UP = "OSDEPLOY-TESTIMAGE-UP"
#: ``OSDEPLOY-USERDATA ok|script|none|failed targets=a,b``: user data fetched, ping targets.
MARKER_USERDATA = "OSDEPLOY-USERDATA"
#: ``OSDEPLOY-PING <ipv4> ok|failed``: printed when an address's result changes; last one counts.
PING_PREFIX = "OSDEPLOY-PING"
#: ``OSDEPLOY-SSHKEY ok|none|failed``: the server's SSH key from the metadata service.
MARKER_SSHKEY = "OSDEPLOY-SSHKEY"
#: ``OSDEPLOY-SSHD started|failed``: dropbear on port 22, key logins only.
MARKER_SSHD = "OSDEPLOY-SSHD"
#: ``OSDEPLOY-SCRIPT rc=<n>``: a user-data script finished with that exit code.
MARKER_SCRIPT = "OSDEPLOY-SCRIPT"

#: ``os_command_line`` for the root image: Nova's default ends in console=hvc0;
#: no_timer_check is what Nova adds for virt_type=qemu (slow TCG timer checks).
KERNEL_CMDLINE = "console=ttyS0 no_timer_check"
#: Glance disk_format (= container_format) of each file.
GLANCE_FORMATS = {"kernel": "aki", "initrd": "ari", "disk": "ami"}

PACKAGES = ("linux-image-cloud-amd64", "busybox-static")
#: Installed in the build container; the programs go into the guest with the
#: shared libraries ``ldd`` names for them there (glibc of the same release).
PROGRAM_PACKAGES = ("dropbear-bin", "util-linux")
#: dropbear: the SSH server; lsblk: what a user runs to see an attached volume.
PROGRAMS = ("/usr/sbin/dropbear", "/usr/bin/lsblk")
#: Loaded with their dependencies unless the kernel has them built in
#: (trixie's cloud kernel builds virtio_pci in; virtio_net and virtio_blk are modules).
MODULES = ("virtio_net", "virtio_blk")
SOURCE_DIR = PROJECT_ROOT / "lab" / "testimage"
#: Files of lab/testimage and where they go in the initramfs.
SOURCE_FILES = {"init": "init", "udhcpc.script": "etc/udhcpc.script"}
DISK_SIZE = 1024 * 1024
CACHE_DIR = Path(os.environ.get("OSDEPLOY_TESTIMAGE_CACHE", "/var/cache/osdeploy/testimage"))
#: Bump when the builder's output changes for the same inputs.
BUILDER_VERSION = 3

#: Offsets of the boot flags of an MBR's four partition entries.
MBR_BOOT_FLAGS = (446, 462, 478, 494)
#: Where a bzImage's setup header starts; sector 0 before it (the boot flags
#: above included) is the legacy boot stub and its padding.
SETUP_HEADER = 0x1F1

KERNEL_FILE = "vmlinuz"
INITRD_FILE = "initrd.img"
DISK_FILE = "disk.img"
MANIFEST_FILE = "manifest.json"

INITRAMFS_DIRS = (
    "bin",
    "dev",
    "etc",
    "lib",
    "lib/modules",
    "lib/modules/testimage",
    "proc",
    "run",
    "sbin",
    "sys",
    "tmp",
    "usr",
    "usr/bin",
    "usr/sbin",
)


@dataclass(frozen=True)
class TestImage:
    """The built files, all in one cache directory."""

    __test__ = False  # not a pytest test class

    kernel: Path
    initrd: Path
    disk: Path
    kernel_version: str
    manifest: Path


def glance_properties(kernel_id: str, ramdisk_id: str) -> dict[str, str]:
    """Properties of the root (``disk``) image that make Nova boot the kernel directly.

    ``os_shutdown_timeout``: the guest has no ACPI handler, so a clean
    shutdown would only wait out Nova's 60 s default before powering off.
    """
    return {
        "kernel_id": kernel_id,
        "ramdisk_id": ramdisk_id,
        "os_command_line": KERNEL_CMDLINE,
        "os_shutdown_timeout": "5",
    }


# --- pure parts ---------------------------------------------------------------


def disarm_boot_sector(kernel: bytes) -> bytes:
    """The kernel with the boot-sector padding that reads as MBR boot flags zeroed.

    A bzImage's first sector ends in 0x55AA, so oslo.utils' format inspector
    takes the kernel for an MBR disk, and the 0xff padding where the four
    partition entries' boot flags would be fails its safety check. Nova skips
    that check when it boots a server (kernels come through
    ``fetch_raw_image``) but not when a live migration's destination fetches
    the kernel (``pre_live_migration`` -> ``images.fetch_to_raw``): the
    migration fails with "Image does not pass safety check". Nothing reads
    those padding bytes (qemu and boot loaders start at the setup header).
    """
    if kernel[510:512] != b"\x55\xaa":
        return kernel
    data = bytearray(kernel)
    for offset in MBR_BOOT_FLAGS:
        if data[offset] in (0x00, 0x80):
            continue
        if data[offset] != 0xFF:
            raise OsdeployError(
                f"testimage: kernel byte {offset:#x} is {data[offset]:#04x}, not the boot "
                "sector's 0xff padding: this kernel's layout is new to the builder"
            )
        data[offset] = 0
    return bytes(data)


def recipe_hash(
    files: Mapping[str, bytes],
    packages: Sequence[str] = PACKAGES,
    modules: Sequence[str] = MODULES,
    disk_size: int = DISK_SIZE,
    programs: Sequence[str] = (*PROGRAM_PACKAGES, *PROGRAMS),
) -> str:
    """Names a build: same scripts, packages, programs and modules, same cache entry."""
    recipe = {
        "builder": BUILDER_VERSION,
        "packages": list(packages),
        "programs": list(programs),
        "modules": list(modules),
        "disk_size": disk_size,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def ldd_paths(text: str) -> list[str]:
    """The files of the shared libraries in ``ldd`` output (the vDSO has none).

    ``libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)`` and the loader's
    own line ``/lib64/ld-linux-x86-64.so.2 (0x...)``.
    """
    paths: list[str] = []
    for line in text.splitlines():
        if "not found" in line:
            raise OsdeployError(f"testimage: ldd finds no library for {line.strip()!r}")
        words = line.split()
        candidates = words[2:3] if "=>" in words else words[:1]
        paths += [w for w in candidates if w.startswith("/") and w not in paths]
    return paths


def module_name(filename: str) -> str:
    """``kernel/drivers/net/virtio_net.ko.xz`` -> ``virtio_net`` (``-`` and ``_`` are one)."""
    base = filename.rsplit("/", 1)[-1]
    stem = base.split(".ko", 1)[0]
    return stem.replace("-", "_")


def builtin_modules(text: str) -> set[str]:
    """Names listed in ``modules.builtin``."""
    return {module_name(line.strip()) for line in text.splitlines() if line.strip()}


def kernel_package(depends: str) -> str:
    """The versioned image package a ``linux-image-<flavour>`` meta package depends on."""
    for item in depends.split(","):
        name = item.split("(", 1)[0].split("|", 1)[0].strip()
        if name.startswith("linux-image-"):
            return name
    raise OsdeployError(f"testimage: no linux-image-* package in Depends: {depends!r}")


def read_modinfo(elf: bytes) -> dict[str, list[str]]:
    """The ``key=value`` strings of a kernel module's ``.modinfo`` section (ELF64 LE)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise ValueError("not a little-endian ELF64 file")
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        base = shoff + index * shentsize
        name = struct.unpack_from("<I", elf, base)[0]
        offset, size = struct.unpack_from("<QQ", elf, base + 0x18)
        return name, offset, size

    _, names_offset, _ = section(shstrndx)
    for index in range(shnum):
        name, offset, size = section(index)
        end = elf.index(b"\0", names_offset + name)
        if elf[names_offset + name : end] == b".modinfo":
            info: dict[str, list[str]] = {}
            for item in elf[offset : offset + size].split(b"\0"):
                key, sep, value = item.decode(errors="replace").partition("=")
                if sep:
                    info.setdefault(key, []).append(value)
            return info
    return {}


def module_depends(elf: bytes) -> list[str]:
    values = read_modinfo(elf).get("depends", [])
    return [module_name(n) for value in values for n in value.split(",") if n]


def load_order(
    wanted: Iterable[str], depends: Mapping[str, Sequence[str]], builtin: set[str]
) -> list[str]:
    """Modules to insmod, dependencies first; built-in ones are left out.

    ``depends`` maps every available module to its dependencies.
    """
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in builtin or name in order:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise OsdeployError(f"testimage: module dependency cycle {cycle}")
        if name not in depends:
            needed_by = f" (needed by {visiting[-1]})" if visiting else ""
            raise OsdeployError(
                f"testimage: kernel module {name}{needed_by} is neither built in nor shipped "
                "by the kernel package; fix testimage.MODULES"
            )
        visiting.append(name)
        for dependency in depends[name]:
            visit(dependency)
        visiting.pop()
        order.append(name)

    for name in wanted:
        visit(module_name(name))
    return order


@dataclass(frozen=True)
class CpioEntry:
    """One member of a newc archive; ``data`` is the link target for symlinks."""

    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR = 0o040000, 0o100000, 0o120000, 0o020000


def directory(path: str, perm: int = 0o755) -> CpioEntry:
    return CpioEntry(path, S_IFDIR | perm)


def regular(path: str, data: bytes, perm: int = 0o644) -> CpioEntry:
    return CpioEntry(path, S_IFREG | perm, data)


def symlink(path: str, target: str) -> CpioEntry:
    return CpioEntry(path, S_IFLNK | 0o777, target.encode())


def char_device(path: str, major: int, minor: int, perm: int = 0o600) -> CpioEntry:
    return CpioEntry(path, S_IFCHR | perm, rdev=(major, minor))


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def newc_archive(entries: Iterable[CpioEntry]) -> bytes:
    """An uncompressed SVR4 ``newc`` cpio archive, as the kernel unpacks an initramfs.

    Owner root, mtime 0: the same entries give the same bytes.
    """
    out = bytearray()
    members = [*entries, CpioEntry("TRAILER!!!", 0)]
    for ino, entry in enumerate(members, start=1):
        name = entry.path.lstrip("/").encode() + b"\0"
        is_dir = entry.mode & 0o170000 == S_IFDIR
        fields = (
            0 if entry.path == "TRAILER!!!" else ino,
            entry.mode,
            0,  # uid
            0,  # gid
            2 if is_dir else 1,  # nlink
            0,  # mtime
            len(entry.data),
            0,  # devmajor
            0,  # devminor
            entry.rdev[0],
            entry.rdev[1],
            len(name),
            0,  # check
        )
        header = b"070701" + b"".join(b"%08X" % value for value in fields)
        out += header + name + _pad4(len(header) + len(name))
        out += entry.data + _pad4(len(entry.data))
    return bytes(out)


def initramfs_entries(
    busybox: bytes,
    modules: Sequence[tuple[str, bytes]],
    files: Mapping[str, bytes],
    programs: Mapping[str, bytes] | None = None,
) -> list[CpioEntry]:
    """The initramfs: busybox, /dev/console, the scripts, modules numbered in load order.

    ``files`` maps initramfs paths (``init``, ``etc/udhcpc.script``) to
    contents; ``programs`` the same for programs and their libraries
    (``usr/sbin/dropbear``, ``lib/x86_64-linux-gnu/libz.so.1``), whose
    directories are added.
    """
    programs = programs or {}
    dirs = list(INITRAMFS_DIRS)
    for path in sorted(programs):
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            parent = "/".join(parts[:depth])
            if parent not in dirs:
                dirs.append(parent)
    entries = [directory(path) for path in dirs]
    entries[dirs.index("tmp")] = directory("tmp", 0o1777)
    # The kernel opens /dev/console for /init before devtmpfs is mounted.
    entries += [char_device("dev/console", 5, 1), char_device("dev/null", 1, 3, 0o666)]
    entries += [regular("bin/busybox", busybox, 0o755), symlink("bin/sh", "busybox")]
    entries += [regular(path, data, 0o755) for path, data in sorted(files.items())]
    entries += [regular(path, data, 0o755) for path, data in sorted(programs.items())]
    entries += [
        regular(f"lib/modules/testimage/{index:02d}-{name}.ko", data)
        for index, (name, data) in enumerate(modules, start=1)
    ]
    return entries


def decompress_module(filename: str, data: bytes) -> bytes:
    """busybox insmod loads plain ``.ko`` files only."""
    if filename.endswith(".ko.xz"):
        return lzma.decompress(data)
    if filename.endswith(".ko.gz"):
        return gzip.decompress(data)
    if filename.endswith(".ko"):
        return data
    raise OsdeployError(
        f"testimage: cannot decompress kernel module {filename}; only .ko, .ko.xz, .ko.gz"
    )


# --- side effects -------------------------------------------------------------


def _say(message: str) -> None:
    print(f"testimage: {message}", flush=True)


def source_files() -> dict[str, bytes]:
    """The scripts of lab/testimage, keyed by their initramfs path."""
    return {dest: (SOURCE_DIR / name).read_bytes() for name, dest in SOURCE_FILES.items()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_recipe(name: str) -> bool:
    return len(name) == 16 and all(c in "0123456789abcdef" for c in name)


def _load(directory: Path) -> TestImage | None:
    manifest = directory / MANIFEST_FILE
    kernel, initrd, disk = (directory / n for n in (KERNEL_FILE, INITRD_FILE, DISK_FILE))
    if not all(path.is_file() for path in (manifest, kernel, initrd, disk)):
        return None
    try:
        data: dict[str, Any] = json.loads(manifest.read_text())
        version = str(data["kernel_version"])
    except (ValueError, KeyError, TypeError):
        return None
    return TestImage(kernel, initrd, disk, kernel_version=version, manifest=manifest)


def _fetch_packages(work: Path) -> tuple[Path, dict[str, str], dict[str, bytes]]:
    """Download and unpack the packages in a throw-away lab container.

    Returns the unpacked root, the package versions and the programs with
    their libraries (initramfs path -> contents). The machine may be another
    Debian release: its own kernel, busybox and libraries are never used.
    """
    from osdeploy import lab

    lab.build_image()
    container = f"osdeploy-testimage-{os.getpid()}"
    lab.podman(
        "run",
        "--detach",
        "--rm",
        "--name",
        container,
        "--label",
        "osdeploy.testimage=build",
        "--volume",
        f"{work}:/work",
        "--workdir",
        "/work",
        lab.IMAGE,
        "sleep",
        "infinity",
    )
    try:

        def run(*argv: str) -> str:
            return lab.podman("exec", container, *argv)

        def deb(package: str) -> Path:
            found = sorted(work.glob(f"{package}_*.deb"))
            if not found:
                raise OsdeployError(f"testimage: apt-get download left no {package} package")
            return found[-1]

        # apt's sandbox user cannot write to the bind mount; root downloads.
        download = ("apt-get", "-q", "-o", "APT::Sandbox::User=root", "download")
        run("apt-get", "-qq", "update")
        run(*download, *PACKAGES)
        meta = deb(PACKAGES[0])
        kernel = kernel_package(run("dpkg-deb", "-f", f"/work/{meta.name}", "Depends"))
        run(*download, kernel)
        versions: dict[str, str] = {}
        for package in (*PACKAGES, kernel):
            path = f"/work/{deb(package).name}"
            versions[package] = run("dpkg-deb", "-f", path, "Version").strip()
            run("dpkg-deb", "-x", path, "/work/root")
        run(
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-qq",
            "--yes",
            "--no-install-recommends",
            *PROGRAM_PACKAGES,
        )
        for package in PROGRAM_PACKAGES:
            versions[package] = run("dpkg-query", "-W", "-f", "${Version}", package).strip()
        wanted: list[str] = []
        for program in PROGRAMS:
            wanted += [p for p in (program, *ldd_paths(run("ldd", program))) if p not in wanted]
        # Through the bind mount: the container's /lib is a link to usr/lib.
        programs: dict[str, bytes] = {}
        for index, path in enumerate(wanted):
            copy = f"/work/program-{index}"
            run("cp", "--dereference", path, copy)
            programs[path.lstrip("/")] = (work / copy.removeprefix("/work/")).read_bytes()
    finally:
        lab.podman("rm", "--force", "--time", "0", container, check=False)
    return work / "root", versions, programs


def _build(directory: Path, files: Mapping[str, bytes], recipe: str) -> None:
    """Fetch, assemble, and write every output file into ``directory``."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="osdeploy-testimage-", dir="/var/tmp") as tmp:
        root, versions, programs = _fetch_packages(Path(tmp))
        kernels = sorted((root / "boot").glob("vmlinuz-*"))
        if len(kernels) != 1:
            raise OsdeployError(
                f"testimage: expected one kernel in {PACKAGES[0]}, found {len(kernels)}"
            )
        kernel_version = kernels[0].name.removeprefix("vmlinuz-")
        moddir = next(
            (
                base / kernel_version
                for base in (root / "usr/lib/modules", root / "lib/modules")
                if (base / kernel_version).is_dir()
            ),
            None,
        )
        if moddir is None:
            raise OsdeployError(f"testimage: no modules directory for kernel {kernel_version}")
        available = {module_name(str(p)): p for p in moddir.rglob("*.ko*")}
        builtin = builtin_modules((moddir / "modules.builtin").read_text())
        # Unpack only the wanted modules and what they depend on.
        plain: dict[str, bytes] = {}
        depends: dict[str, list[str]] = {}
        todo = [module_name(name) for name in MODULES]
        while todo:
            name = todo.pop()
            if name in depends or name in builtin or name not in available:
                continue  # load_order reports a missing module
            path = available[name]
            plain[name] = decompress_module(path.name, path.read_bytes())
            depends[name] = module_depends(plain[name])
            todo += depends[name]
        order = load_order(MODULES, depends, builtin)
        busybox = root / "usr/bin/busybox"
        if not busybox.is_file():
            busybox = root / "bin/busybox"
        cpio = newc_archive(
            initramfs_entries(busybox.read_bytes(), [(m, plain[m]) for m in order], files, programs)
        )
        (directory / KERNEL_FILE).write_bytes(disarm_boot_sector(kernels[0].read_bytes()))
    (directory / INITRD_FILE).write_bytes(gzip.compress(cpio, compresslevel=9, mtime=0))
    with (directory / DISK_FILE).open("wb") as handle:
        handle.truncate(DISK_SIZE)
    outputs = (KERNEL_FILE, INITRD_FILE, DISK_FILE)
    manifest = {
        "recipe": recipe,
        "kernel_version": kernel_version,
        "packages": versions,
        "modules": order,
        "programs": sorted(programs),
        "files": {
            name: {"sha256": _sha256(directory / name), "size": (directory / name).stat().st_size}
            for name in outputs
        },
        "build_seconds": round(time.monotonic() - started, 1),
    }
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")


def build_test_image(cache_dir: Path | None = None, force: bool = False) -> TestImage:
    """The test image, built once per recipe into ``cache_dir``/<recipe hash>/."""
    cache = Path(cache_dir or CACHE_DIR)
    files = source_files()
    recipe = recipe_hash(files)
    target = cache / recipe
    if not force and (image := _load(target)) is not None:
        return image
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        # One build at a time; a build that finished while we waited is reused.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and (image := _load(target)) is not None:
            return image
        _say(f"building test image {recipe} from Debian trixie packages (about 20 s)")
        partial = Path(tempfile.mkdtemp(prefix=f".build-{recipe}-", dir=cache))
        try:
            _build(partial, files, recipe)
            shutil.rmtree(target, ignore_errors=True)
            partial.chmod(0o755)
            partial.rename(target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        # Older recipes' builds are stale now.
        for stale in cache.iterdir():
            if stale.is_dir() and stale.name != recipe and _is_recipe(stale.name):
                shutil.rmtree(stale, ignore_errors=True)
    image = _load(target)
    if image is None:
        raise OsdeployError(f"testimage: the build left no complete image in {target}")
    return image


def cmd_testimage(force: bool) -> int:
    image = build_test_image(force=force)
    print(f"kernel:  {image.kernel}")
    print(f"initrd:  {image.initrd}")
    print(f"disk:    {image.disk}")
    print(f"version: {image.kernel_version}")
    print(f"manifest: {image.manifest}")
    return 0
