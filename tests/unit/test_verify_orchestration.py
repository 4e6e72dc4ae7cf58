"""Verify, Heat: the example templates, the guest's signal script, and the checks' parsers."""

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from osdeploy.verify import CHECKS
from osdeploy.verify.compute import FLAVOR, IMAGE_NAME
from osdeploy.verify.core import PREFIX, CheckFailed, credential_access
from osdeploy.verify.orchestration import (
    CFN_TEMPLATE,
    HEAT_PREFIX,
    HOT_TEMPLATE,
    cfn_parameters,
    cfn_statuses,
    drop_unset_times,
    engines_up,
    event_time,
    hot_parameters,
    leftovers,
    load_template,
    members,
    outputs_of,
    replaced,
    seconds,
    signal_data,
    top_level,
    tracked,
    unfinished,
)
from osdeploy.verify.run import check_graph, check_names

SERVER = "6f1c0b7e-3a52-4d8e-9b0c-1e2f3a4b5c6d"
HEAT_CHECKS = (
    "heat_services",
    "heat_stack_hot",
    "heat_stack_update",
    "heat_stack_cfn",
    "heat_cfn_api",
    "heat_stack_delete",
)


# -- the templates -------------------------------------------------------------


def test_the_names_stay_clear_of_the_compute_scenario_s_sweep() -> None:
    # compute's cleanup removes everything named PREFIX* in every project,
    # beside these checks: the stacks (and what Heat names after them) must not be.
    assert not HEAT_PREFIX.startswith(PREFIX)


def test_hot_template_has_what_the_checks_read() -> None:
    template = load_template(HOT_TEMPLATE)
    assert template["heat_template_version"] == "2021-04-16"  # a string, as Heat reads it
    resources = {name: r["type"] for name, r in template["resources"].items()}
    assert resources == {
        "network": "OS::Neutron::Net",
        "subnet": "OS::Neutron::Subnet",
        "router": "OS::Neutron::Router",
        "router_interface": "OS::Neutron::RouterInterface",
        "security_group": "OS::Neutron::SecurityGroup",
        "port": "OS::Neutron::Port",
        "wait_handle": "OS::Heat::WaitConditionHandle",
        "wait": "OS::Heat::WaitCondition",
        "server": "OS::Nova::Server",
        "floating_ip": "OS::Neutron::FloatingIP",
        "volume": "OS::Cinder::Volume",
        "volume_attachment": "OS::Cinder::VolumeAttachment",
        "extra": "OS::Heat::ResourceGroup",
    }
    # The volume only when asked for; the update adds servers to the group.
    volume = template["resources"]["volume"]
    assert volume["condition"] == template["resources"]["volume_attachment"]["condition"]
    assert template["resources"]["extra"]["properties"]["count"] == {"get_param": "extra_servers"}
    assert {"server_id", "signal_data", "floating_ip", "volume_id"} <= set(template["outputs"])
    # The user data runs as the test image's script: RAW, starting with #!.
    server = template["resources"]["server"]["properties"]
    assert server["user_data_format"] == "RAW"
    assert server["user_data"]["str_replace"]["template"].startswith("#!/bin/sh\n")


def test_hot_defaults_fit_the_demo_cloud_and_the_check_s_parameters_exist() -> None:
    parameters = load_template(HOT_TEMPLATE)["parameters"]
    defaults = {name: p.get("default") for name, p in parameters.items()}
    assert defaults["image"] == IMAGE_NAME
    assert defaults["flavor"] == FLAVOR["name"]
    assert defaults["public_network"] == "public"
    assert defaults["volume_size"] == defaults["extra_servers"] == 0
    # A user runs it without a parameter: every one has a default.
    assert all("default" in p for p in parameters.values())
    given = hot_parameters("ext", with_volume=True)
    assert set(given) <= set(parameters)
    assert given["volume_size"] == 1
    assert hot_parameters("ext", with_volume=False)["volume_size"] == 0


def test_cfn_template_is_cloudformation_with_the_test_image_s_defaults() -> None:
    template = load_template(CFN_TEMPLATE)
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert {n: r["Type"] for n, r in template["Resources"].items()} == {
        "VPC": "AWS::EC2::VPC",
        "Subnet": "AWS::EC2::Subnet",
        "Instance": "AWS::EC2::Instance",
    }
    parameters = template["Parameters"]
    assert parameters["ImageId"]["Default"] == IMAGE_NAME
    assert parameters["InstanceType"]["Default"] == FLAVOR["name"]
    assert set(cfn_parameters()) <= set(parameters)
    assert set(template["Outputs"]) == {"InstanceId", "PrivateIp", "AvailabilityZone"}


# -- the guest's signal script ---------------------------------------------------

FAKE_WGET = """#!/bin/sh
# wget as the script calls it: the metadata URL prints $META; a POST is
# recorded (headers, body, URL) in $CALLS.
post='' headers=''
while [ $# -gt 1 ]; do
    case "$1" in
        --header) headers="$headers$2;"; shift 2 ;;
        --post-data) post=$2; shift 2 ;;
        -T | -O) shift 2 ;;
        *) shift ;;
    esac
done
case "$1" in
    *meta_data.json) printf '%s' "$META" ;;
    *) printf '%s\\n%s\\n%s\\n' "$headers" "$post" "$1" >"$CALLS" ;;
esac
"""


def _run_user_data(tmp_path: Path, meta: str) -> tuple[str, dict[str, Any], str]:
    """The HOT template's user data run by sh with a fake wget; what it posted."""
    template = load_template(HOT_TEMPLATE)["resources"]["server"]["properties"]["user_data"]
    script = template["str_replace"]["template"]
    for name in template["str_replace"]["params"]:
        value = "http://heat:8004/v1/p/stacks/s/i/resources/wait_handle/signal"
        script = script.replace(name, value if name.endswith("URL") else "gAAAAtoken")
    (tmp_path / "wget").write_text(FAKE_WGET)
    (tmp_path / "wget").chmod(0o755)
    calls = tmp_path / "calls"
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "META": meta}
    env["CALLS"] = str(calls)
    run = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, check=True)
    headers, body, url = calls.read_text().splitlines()
    return headers, json.loads(body), url + "\n" + run.stdout


def test_the_server_signals_its_own_id(tmp_path: Path) -> None:
    # Nova's meta_data.json: one line, the server's uuid first among others.
    meta = json.dumps(
        {
            "uuid": SERVER,
            "meta": {"note": "a, b"},
            "devices": [],
            "project_id": "0a1b",
            "name": "osdeploy-heat-hot-server-abc",
        }
    )
    headers, body, out = _run_user_data(tmp_path, meta)
    assert "X-Auth-Token: gAAAAtoken;" in headers
    assert "Content-Type: application/json;" in headers
    assert body == {"status": "SUCCESS", "reason": "booted", "data": SERVER}
    assert out.startswith("http://heat:8004/v1/p/stacks/s/i/resources/wait_handle/signal\n")
    assert f"signalled {SERVER}" in out


def test_without_metadata_the_server_signals_failure(tmp_path: Path) -> None:
    _headers, body, _out = _run_user_data(tmp_path, "")
    assert body["status"] == "FAILURE"
    assert "metadata service" in body["reason"]


# -- parsers and decisions -------------------------------------------------------


def test_signal_data_of_a_wait_condition() -> None:
    assert signal_data(json.dumps({"1": SERVER})) == [SERVER]
    assert signal_data({"10": "b", "2": "a"}) == ["a", "b"]
    assert signal_data("not json") == signal_data(None) == signal_data("[]") == []


def test_outputs_of_a_stack() -> None:
    outputs = [
        {"output_key": "server_id", "output_value": SERVER, "description": "Id"},
        {"output_key": "floating_ip", "output_value": "172.24.11.20"},
    ]
    assert outputs_of(outputs) == {"server_id": SERVER, "floating_ip": "172.24.11.20"}
    assert outputs_of(None) == {}
    broken = [*outputs, {"output_key": "signal_data", "output_error": "wait not ready"}]
    with pytest.raises(CheckFailed, match="signal_data: wait not ready"):
        outputs_of(broken)


def test_engines_up_per_host() -> None:
    services = [
        {"binary": "heat-engine", "host": "ctl1", "status": "up"},
        {"binary": "heat-engine", "host": "ctl1.lab", "status": "up"},
        {"binary": "heat-engine", "host": "ctl1", "status": "down"},
        {"binary": "heat-engine", "host": "other", "status": "up"},
    ]
    assert engines_up(services, ["ctl1", "ctl2"]) == {"ctl1": 2, "ctl2": 0}


def _event(resource: str, status: str, at: str) -> dict[str, str]:
    return {"resource_name": resource, "resource_status": status, "event_time": at}


def test_event_times() -> None:
    events = [
        _event("s", "CREATE_IN_PROGRESS", "2025-12-06T02:10:00Z"),
        _event("server", "CREATE_COMPLETE", "2025-12-06T02:10:41Z"),
        _event("wait", "CREATE_COMPLETE", "2025-12-06T02:11:02Z"),
    ]
    active = event_time(events, "server", "CREATE_COMPLETE")
    assert seconds(event_time(events, "s", "CREATE_IN_PROGRESS"), active) == "41"
    assert seconds(active, event_time(events, "wait", "CREATE_COMPLETE")) == "21"
    assert seconds(active, event_time(events, "wait", "CREATE_FAILED")) == "?"


def _resource(name: str, physical: str, kind: str, status: str, **more: str) -> dict[str, str]:
    return {
        "resource_name": name,
        "physical_resource_id": physical,
        "resource_type": kind,
        "resource_status": status,
        **more,
    }


RESOURCES = [
    _resource("network", "n1", "OS::Neutron::Net", "CREATE_COMPLETE"),
    _resource("server", "s1", "OS::Nova::Server", "CREATE_COMPLETE"),
    _resource(
        "wait",
        "w1",
        "OS::Heat::WaitCondition",
        "CREATE_FAILED",
        resource_status_reason="timed out",
    ),
    _resource("extra", "g1", "OS::Heat::ResourceGroup", "UPDATE_COMPLETE"),
    _resource("0", "s2", "OS::Nova::Server", "CREATE_IN_PROGRESS", parent_resource="extra"),
]


def test_top_level_members_and_what_an_update_changed() -> None:
    before = top_level(RESOURCES)
    assert before == {"network": "n1", "server": "s1", "wait": "w1", "extra": "g1"}
    assert [r["physical_resource_id"] for r in members(RESOURCES, "extra")] == ["s2"]
    assert replaced(before, dict(before)) == []
    after = {**before, "server": "s9", "port": "p1"}
    del after["wait"]
    assert replaced(before, after) == ["port added", "wait removed", "server replaced"]


def test_unfinished_resources_with_their_reason() -> None:
    assert unfinished(RESOURCES) == ["wait CREATE_FAILED: timed out", "0 CREATE_IN_PROGRESS"]


def test_leftovers_by_physical_id_owner_and_name() -> None:
    known = tracked(RESOURCES)
    # The wait condition and the group are Heat's own: nothing to look for.
    assert known == {"n1": "network network", "s1": "server server", "s2": "server 0"}
    present = [
        {"kind": "server", "id": "s2", "name": "osdeploy-heat-hot-extra-x-0-y"},
        {"kind": "port", "id": "p7", "name": "", "owners": ("s1", "n5")},
        {"kind": "port", "id": "p8", "name": "", "owners": ("", "n1")},
        {"kind": "router", "id": "r3", "name": "osdeploy-heat-cfn-VPC-abc"},
        {"kind": "network", "id": "n9", "name": f"{PREFIX}-net"},
        {"kind": "server", "id": "s5", "name": "someone-else"},
    ]
    assert leftovers(known, present, HEAT_PREFIX) == [
        "server osdeploy-heat-hot-extra-x-0-y (server 0)",
        "port p7 (of server server)",
        "port p8 (of network network)",
        "router osdeploy-heat-cfn-VPC-abc",
    ]
    assert leftovers(known, [], HEAT_PREFIX) == []


def test_credential_access_key() -> None:
    assert credential_access(json.dumps({"access": "osdeploy-heat-1", "secret": "s"})) == (
        "osdeploy-heat-1"
    )
    assert credential_access("{}") == credential_access("no json") == credential_access("[]") == ""


#: What Heat's ListStacks answers (cut to one stack): "None" for the times it lacks.
LIST_STACKS = (
    b"<ListStacksResponse><ListStacksResult><StackSummaries><member>"
    b"<CreationTime>2026-12-06T02:26:16Z</CreationTime><LastUpdatedTime>None</LastUpdatedTime>"
    b"<StackId>arn:openstack:heat::p:stacks/osdeploy-heat-cfn/9c6b</StackId>"
    b"<StackName>osdeploy-heat-cfn</StackName><StackStatus>CREATE_COMPLETE</StackStatus>"
    b"<DeletionTime>None</DeletionTime></member></StackSummaries></ListStacksResult>"
    b"</ListStacksResponse>"
)


def test_an_aws_client_parses_heat_s_answer_once_unset_times_are_dropped() -> None:
    import boto3
    from botocore.parsers import create_parser

    client = boto3.client(
        "cloudformation",
        endpoint_url="http://heat:8000/v1/",
        region_name="RegionOne",
        aws_access_key_id="a",
        aws_secret_access_key="s",
    )
    shape = client.meta.service_model.operation_model("ListStacks").output_shape

    def parse(body: bytes) -> Any:
        response = {"body": body, "headers": {}, "status_code": 200}
        return create_parser("query").parse(response, shape)

    # (boto3's endpoint reports it as a ResponseParserError)
    with pytest.raises(ValueError, match='Invalid timestamp "None"'):
        parse(LIST_STACKS)
    body = drop_unset_times(LIST_STACKS)
    assert b"None" not in body
    assert b"<CreationTime>2026-12-06T02:26:16Z</CreationTime>" in body
    (summary,) = parse(body)["StackSummaries"]
    assert cfn_statuses([summary]) == {"osdeploy-heat-cfn": "CREATE_COMPLETE"}
    assert "LastUpdatedTime" not in summary


def test_cfn_statuses_leave_deleted_stacks_out() -> None:
    summaries = [
        {"StackName": "osdeploy-heat-hot", "StackStatus": "UPDATE_COMPLETE"},
        {"StackName": "old", "StackStatus": "DELETE_COMPLETE"},
    ]
    assert cfn_statuses(summaries) == {"osdeploy-heat-hot": "UPDATE_COMPLETE"}


# -- when the checks run ---------------------------------------------------------


def test_heat_checks_run_beside_the_compute_scenario_in_their_order() -> None:
    assert set(HEAT_CHECKS) <= set(CHECKS)
    services = {
        "keystone": SimpleNamespace(verify=("keystone_token_admin",), depends=(), kind="openstack"),
        "nova": SimpleNamespace(
            verify=("compute_network", "compute_servers", "compute_lifecycle"),
            depends=("keystone",),
            kind="openstack",
        ),
        "heat": SimpleNamespace(verify=HEAT_CHECKS, depends=("keystone",), kind="openstack"),
    }
    plan = SimpleNamespace(services=tuple(SimpleNamespace(name=n) for n in services))
    catalog: Any = services
    names = check_names(plan, catalog)
    graph = check_graph(names, plan, catalog)
    assert graph["heat_services"] == {"keystone_token_admin"}
    # The stacks need the test image and flavor; the two create side by side.
    assert (
        graph["heat_stack_hot"]
        == graph["heat_stack_cfn"]
        == {
            "heat_services",
            "compute_servers",
        }
    )
    assert graph["heat_stack_update"] == {"heat_stack_hot"}
    assert graph["heat_cfn_api"] == {"heat_stack_update", "heat_stack_cfn"}
    assert graph["heat_stack_delete"] == {"heat_stack_update", "heat_stack_cfn", "heat_cfn_api"}
    # Nothing of the compute scenario waits for Heat.
    assert graph["compute_lifecycle"] == {"compute_servers"}
