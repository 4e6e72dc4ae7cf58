"""Pure parts of the Glance checks."""

import hashlib

from osdeploy.verify.image import METADEF_NAMESPACES, metadef_problems, sha512_of


def test_sha512_of_chunks_is_the_whole_digest() -> None:
    assert sha512_of([b"ab", b"c"]) == hashlib.sha512(b"abc").hexdigest()


def _namespace(name: str, *types: str) -> dict[str, object]:
    return {"namespace": name, "resource_type_associations": [{"name": t} for t in types]}


def test_metadef_problems_none_when_every_standard_namespace_is_associated() -> None:
    listed = [_namespace(n, t, "OS::Cinder::Volume") for n, t in METADEF_NAMESPACES.items()]
    assert metadef_problems([*listed, _namespace("CIM::StorageAllocationSettingData")]) == []


def test_metadef_problems_name_missing_namespaces_and_associations() -> None:
    listed = [
        _namespace("OS::Compute::Hypervisor", "OS::Glance::Image"),
        _namespace("OS::Glance::CommonImageProperties"),
        {"namespace": "OS::Compute::Libvirt", "resource_type_associations": None},
    ]
    assert metadef_problems(listed) == [
        "OS::Glance::CommonImageProperties not associated with OS::Glance::Image",
        "OS::Compute::Libvirt not associated with OS::Nova::Flavor",
        "namespace OS::Compute::Watchdog missing",
    ]
    assert metadef_problems([]) == [f"namespace {n} missing" for n in METADEF_NAMESPACES]
