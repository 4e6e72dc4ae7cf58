"""Pure parts of the test image: cpio writer, module order, modinfo, recipe hash."""

import struct
import subprocess

import pytest

from osdeploy import testimage as ti
from osdeploy.errors import OsdeployError


def read_newc(archive: bytes) -> list[tuple[str, int, bytes, tuple[int, int]]]:
    """(name, mode, data, rdev) of each member up to the trailer; checks the alignment."""
    members = []
    offset = 0
    while True:
        assert offset % 4 == 0
        header = archive[offset : offset + 110]
        assert header[:6] == b"070701"
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, size, rmajor, rminor, namesize = (fields[i] for i in (1, 6, 9, 10, 11))
        name_start = offset + 110
        name = archive[name_start : name_start + namesize - 1].decode()
        assert archive[name_start + namesize - 1] == 0
        data_start = name_start + namesize + (-(110 + namesize) % 4)
        data = archive[data_start : data_start + size]
        offset = data_start + size + (-size % 4)
        if name == "TRAILER!!!":
            assert offset == len(archive)
            return members
        members.append((name, mode, data, (rmajor, rminor)))


def test_newc_archive_round_trips_every_kind_of_member() -> None:
    entries = [
        ti.directory("bin"),
        ti.regular("bin/busybox", b"\x7fELF odd length", 0o755),
        ti.symlink("bin/sh", "busybox"),
        ti.char_device("dev/console", 5, 1),
        ti.regular("/init", b"#!/bin/sh\n", 0o755),
    ]
    archive = ti.newc_archive(entries)
    assert read_newc(archive) == [
        ("bin", 0o040755, b"", (0, 0)),
        ("bin/busybox", 0o100755, b"\x7fELF odd length", (0, 0)),
        ("bin/sh", 0o120777, b"busybox", (0, 0)),
        ("dev/console", 0o020600, b"", (5, 1)),
        ("init", 0o100755, b"#!/bin/sh\n", (0, 0)),
    ]
    assert ti.newc_archive(entries) == archive  # mtime 0: reproducible


def test_initramfs_numbers_modules_in_load_order() -> None:
    entries = ti.initramfs_entries(
        b"bb", [("failover", b"a"), ("virtio_net", b"b")], {"init": b"#!/bin/sh\n"}
    )
    names = [entry.path for entry in entries]
    assert "lib/modules/testimage/01-failover.ko" in names
    assert "lib/modules/testimage/02-virtio_net.ko" in names
    assert {"init", "bin/busybox", "bin/sh", "dev/console"} <= set(names)
    # Parents come before their members.
    for name in names:
        parent = name.rpartition("/")[0]
        assert not parent or names.index(parent) < names.index(name)


DEPENDS = {
    "virtio_net": ["net_failover"],
    "net_failover": ["failover"],
    "failover": [],
    "virtio_blk": [],
}


def test_load_order_puts_dependencies_first_and_skips_builtins() -> None:
    order = ti.load_order(["virtio_net", "virtio_blk", "virtio_pci"], DEPENDS, {"virtio_pci"})
    assert order == ["failover", "net_failover", "virtio_net", "virtio_blk"]


def test_load_order_names_a_missing_module_and_who_needs_it() -> None:
    with pytest.raises(OsdeployError, match=r"net_failover \(needed by virtio_net\)"):
        ti.load_order(["virtio_net"], {"virtio_net": ["net_failover"]}, set())


def test_load_order_reports_a_cycle() -> None:
    with pytest.raises(OsdeployError, match="cycle a -> b -> a"):
        ti.load_order(["a"], {"a": ["b"], "b": ["a"]}, set())


def test_module_names_and_builtin_list() -> None:
    assert ti.module_name("kernel/drivers/net/virtio_net.ko.xz") == "virtio_net"
    assert ti.module_name("virtio-rng.ko") == "virtio_rng"
    text = "kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/virtio/virtio.ko\n\n"
    assert ti.builtin_modules(text) == {"virtio_pci", "virtio"}


def test_kernel_package_is_read_from_the_meta_package_depends() -> None:
    depends = "linux-image-6.12.117+deb13-cloud-amd64 (= 6.12.117-1)"
    assert ti.kernel_package(depends) == "linux-image-6.12.117+deb13-cloud-amd64"
    with pytest.raises(OsdeployError, match="no linux-image"):
        ti.kernel_package("libc6 (>= 2.36)")


def fake_module(modinfo: bytes) -> bytes:
    """An ELF64 file with a section-name table and a .modinfo section, nothing else."""
    names = b"\0.shstrtab\0.modinfo\0"
    names_at, modinfo_at = 64, 64 + len(names)
    shoff = modinfo_at + len(modinfo)
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x28, shoff)
    struct.pack_into("<HHH", header, 0x3A, 64, 3, 1)

    def section(name: int, offset: int, size: int) -> bytes:
        entry = bytearray(64)
        struct.pack_into("<I", entry, 0, name)
        struct.pack_into("<QQ", entry, 0x18, offset, size)
        return bytes(entry)

    sections = section(0, 0, 0) + section(1, names_at, len(names))
    sections += section(11, modinfo_at, len(modinfo))
    return bytes(header) + names + modinfo + sections


def test_module_depends_come_from_the_modinfo_section() -> None:
    elf = fake_module(b"license=GPL\0depends=net_failover,virtio-ring\0vermagic=6.12\0")
    assert ti.read_modinfo(elf)["license"] == ["GPL"]
    assert ti.module_depends(elf) == ["net_failover", "virtio_ring"]
    assert ti.module_depends(fake_module(b"depends=\0")) == []


def test_read_modinfo_rejects_other_files() -> None:
    with pytest.raises(ValueError, match="ELF64"):
        ti.read_modinfo(b"#!/bin/sh\n" + bytes(64))


def test_recipe_hash_follows_the_scripts_and_lists() -> None:
    files = {"init": b"a", "etc/udhcpc.script": b"b"}
    same = ti.recipe_hash(dict(reversed(list(files.items()))))
    assert ti.recipe_hash(files) == same
    assert len(same) == 16
    assert ti.recipe_hash({**files, "init": b"c"}) != same
    assert ti.recipe_hash(files, modules=("virtio_net",)) != same
    assert ti.recipe_hash(files, packages=("busybox-static",)) != same


def test_init_prints_the_markers_the_verify_code_looks_for() -> None:
    init = (ti.SOURCE_DIR / "init").read_text()
    for marker in (ti.MARKER_BOOTED, ti.MARKER_UP, ti.MARKER_USERDATA, ti.PING_PREFIX):
        assert f'echo "{marker} ' in init
    for name in ti.SOURCE_FILES:
        script = ti.SOURCE_DIR / name
        subprocess.run(["sh", "-n", str(script)], check=True)


def test_glance_properties_boot_the_kernel_directly() -> None:
    assert ti.glance_properties("k", "r") == {
        "kernel_id": "k",
        "ramdisk_id": "r",
        "os_command_line": ti.KERNEL_CMDLINE,
        "os_shutdown_timeout": "5",
    }
    assert ti.GLANCE_FORMATS == {"kernel": "aki", "initrd": "ari", "disk": "ami"}


def _boot_sector() -> bytes:
    """Sector 0 of a bzImage: stub, 0xff padding up to the setup header, 0x55AA."""
    sector = bytearray(b"MZ" + bytes(0x198))
    sector += b"\xff" * (ti.SETUP_HEADER - len(sector))
    sector += b"\x27\x01\x00" + bytes(510 - ti.SETUP_HEADER - 3) + b"\x55\xaa"
    return bytes(sector) + b"rest of the kernel"


def _passes_inspection(data: bytes) -> bool:
    """Nova's check of a fetched image (oslo.utils' format inspector, mbr safety)."""
    from oslo_utils.imageutils import format_inspector

    inspector = format_inspector.GPTInspector()
    inspector.eat_chunk(data)
    assert inspector.format_match  # taken for an MBR disk either way
    try:
        inspector.safety_check()
    except format_inspector.SafetyCheckFailed:
        return False
    return True


def test_kernel_boot_sector_passes_nova_s_inspection_after_disarming() -> None:
    kernel = _boot_sector()
    assert not _passes_inspection(kernel)
    disarmed = ti.disarm_boot_sector(kernel)
    assert _passes_inspection(disarmed)
    changed = [i for i, (a, b) in enumerate(zip(kernel, disarmed, strict=True)) if a != b]
    assert changed == list(ti.MBR_BOOT_FLAGS)
    assert ti.disarm_boot_sector(disarmed) == disarmed


def test_a_kernel_without_boot_signature_is_left_alone_and_odd_layouts_refused() -> None:
    assert ti.disarm_boot_sector(b"\x7fELF" + bytes(600)) == b"\x7fELF" + bytes(600)
    odd = bytearray(_boot_sector())
    odd[ti.MBR_BOOT_FLAGS[1]] = 0x42
    with pytest.raises(OsdeployError, match="not the boot sector's 0xff padding"):
        ti.disarm_boot_sector(bytes(odd))


LDD = """\tlinux-vdso.so.1 (0x00007f2205bdb000)
\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f2205a72000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2205840000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f2205bdd000)
"""


def test_ldd_paths_names_the_library_files_and_the_loader() -> None:
    assert ti.ldd_paths(LDD) == [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
    ]


def test_ldd_paths_refuses_a_missing_library() -> None:
    with pytest.raises(OsdeployError, match="libtomcrypt"):
        ti.ldd_paths("\tlibtomcrypt.so.1 => not found\n")


def test_initramfs_adds_the_directories_of_programs_and_libraries() -> None:
    programs = {
        "usr/sbin/dropbear": b"\x7fELF",
        "lib/x86_64-linux-gnu/libz.so.1": b"z",
        "lib64/ld-linux-x86-64.so.2": b"ld",
    }
    entries = ti.initramfs_entries(b"bb", [], {"init": b"#!/bin/sh\n"}, programs)
    by_path = {entry.path: entry for entry in entries}
    for path in programs:
        assert by_path[path].mode == ti.S_IFREG | 0o755
    assert by_path["lib/x86_64-linux-gnu"].mode == ti.S_IFDIR | 0o755
    assert by_path["lib64"].mode == ti.S_IFDIR | 0o755
    names = [entry.path for entry in entries]
    assert len(names) == len(set(names))
    for name in names:
        parent = name.rpartition("/")[0]
        assert not parent or names.index(parent) < names.index(name)


def test_recipe_hash_follows_the_programs() -> None:
    files = {"init": b"a"}
    assert ti.recipe_hash(files) != ti.recipe_hash(files, programs=("dropbear-bin",))
