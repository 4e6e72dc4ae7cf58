"""Pure parts of the compute scenario checks."""

import hashlib

from osdeploy.verify_compute import (
    METADEF_NAMESPACES,
    metadef_problems,
    missing_agents,
    ping_results,
    ping_user_data,
    sha512_of,
)


def test_sha512_of_chunks_is_the_whole_digest() -> None:
    assert sha512_of([b"ab", b"c"]) == hashlib.sha512(b"abc").hexdigest()


def test_ping_user_data_lines() -> None:
    assert ping_user_data(["10.0.0.5", "10.0.0.6"]) == "ping 10.0.0.5\nping 10.0.0.6\n"
    assert ping_user_data([]) == ""


def test_ping_results_keep_the_last_answer_per_address() -> None:
    console = (
        "[    1.0] random kernel line\n"
        "OSDEPLOY-PING 10.0.0.5 failed\n"
        "OSDEPLOY-PING 10.0.0.6 ok\n"
        "OSDEPLOY-PING 10.0.0.5 ok\r\n"
        "OSDEPLOY-PING garbage\n"
        "xOSDEPLOY-PING 10.0.0.7 ok\n"
    )
    assert ping_results(console, "OSDEPLOY-PING") == {"10.0.0.5": "ok", "10.0.0.6": "ok"}


def test_missing_agents_needs_alive_and_up() -> None:
    agents = [
        {"binary": "ovn-controller", "host": "ctl1", "is_alive": True},
        {"binary": "ovn-controller", "host": "cmp1", "is_alive": False},
        {"binary": "ovn-controller", "host": "cmp2", "is_alive": True, "is_admin_state_up": False},
        {"binary": "neutron-ovn-metadata-agent", "host": "cmp1", "is_alive": True},
    ]
    wanted = {
        "ovn-controller": ["ctl1", "cmp1", "cmp2"],
        "neutron-ovn-metadata-agent": ["cmp1", "cmp2"],
    }
    assert missing_agents(agents, wanted) == [
        "ovn-controller on cmp1",
        "ovn-controller on cmp2",
        "neutron-ovn-metadata-agent on cmp2",
    ]


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
