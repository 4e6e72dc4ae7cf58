"""Pure parts of the Glance checks."""

import hashlib

from osdeploy.verify.image import METADEF_NAMESPACES, metadef_problems, sha512_of


def test_sha512_of_chunks_is_the_whole_digest() -> None:
    assert sha512_of([b"ab", b"c"]) == hashlib.sha512(b"abc").hexdigest()


def _namespace(name: str, *types: str) -> dict[str, object]:
    return {"namespace": name, "resource_type_associations": [{"name": t} for t in types]}


#: Part of what Debian's glance-common ships in /etc/glance/metadefs (2:30.0.0):
#: namespace -> resource types it is associated with.
SHIPPED = {
    "CIM::StorageAllocationSettingData": ["OS::Cinder::Volume", "OS::Nova::Aggregate"],
    "OS::Compute::Hypervisor": ["OS::Glance::Image"],
    "OS::Compute::Libvirt": ["OS::Glance::Image", "OS::Nova::Flavor"],
    "OS::Compute::Watchdog": ["OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor"],
    "OS::Glance::CommonImageProperties": [],
    "OS::OperatingSystem": ["OS::Glance::Image", "OS::Cinder::Volume"],
}


def test_metadef_problems_none_for_what_debian_ships() -> None:
    assert metadef_problems([_namespace(n, *t) for n, t in SHIPPED.items()]) == []


def test_metadef_problems_name_missing_namespaces_and_associations() -> None:
    listed = [
        _namespace("OS::Compute::Hypervisor", "OS::Glance::Image"),
        _namespace("OS::Glance::CommonImageProperties"),
        {"namespace": "OS::Compute::Libvirt", "resource_type_associations": None},
        _namespace("OS::OperatingSystem", "OS::Cinder::Volume"),
    ]
    assert metadef_problems(listed) == [
        "OS::Compute::Libvirt not associated with OS::Nova::Flavor",
        "namespace OS::Compute::Watchdog missing",
        "OS::OperatingSystem not associated with OS::Glance::Image",
    ]
    assert metadef_problems([]) == [f"namespace {n} missing" for n in METADEF_NAMESPACES]
