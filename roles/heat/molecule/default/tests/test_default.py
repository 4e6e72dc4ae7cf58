"""Heat answers on its address, and stacks wait for real signals through both APIs.

The stacks here use no other service (no Nova in this scenario): random
strings and wait conditions. A wait condition's signal exercises what a
server of a real stack does: the native one posts with the token of a user
Heat made in its stack domain (stack_domain_admin at work); the
CloudFormation one puts to a pre-signed URL of the CFN API, which checks the
EC2 signature at Keystone (heat_waitcondition_server_url, [ec2authtoken]).
"""

import json
import shlex
import time
import uuid

from osdeploy.catalog import load_catalog

CATALOG = load_catalog()
PORTS = CATALOG["heat"].ports
API_PORT, CFN_PORT = PORTS["api"], PORTS["cfn"]
# Keystone is another role: its port comes from the catalog, as in the roles.
KEYSTONE_PORT = CATALOG["keystone"].ports["public"]
STACK_TIMEOUT = 180

HOT = """
heat_template_version: 2021-04-16
resources:
  secret:
    type: OS::Heat::RandomString
    properties: {length: 12}
  handle:
    type: OS::Heat::WaitConditionHandle
  wait:
    type: OS::Heat::WaitCondition
    depends_on: secret
    properties:
      handle: {get_resource: handle}
      timeout: 300
outputs:
  data:
    value: {get_attr: [wait, data]}
  endpoint:
    value: {get_attr: [handle, endpoint]}
  token:
    value: {get_attr: [handle, token]}
"""

CFN = json.dumps(
    {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"},
            "Wait": {
                "Type": "AWS::CloudFormation::WaitCondition",
                "Properties": {"Handle": {"Ref": "Handle"}, "Timeout": "300"},
            },
        },
        "Outputs": {
            "Data": {"Value": {"Fn::GetAtt": ["Wait", "Data"]}},
            "Url": {"Value": {"Ref": "Handle"}},
        },
    }
)


def _create(host, cli, template, name):
    """Start a stack from the template text (without waiting)."""
    path = f"/tmp/{name}.template"
    host.run(f"printf '%s' {shlex.quote(template)} > {path}")
    return cli(f"stack create -t {path} {name}")


def _ready_output(cli, stack, key):
    """An output of a stack still being created, once it has a value."""
    deadline = time.monotonic() + STACK_TIMEOUT
    while time.monotonic() < deadline:
        value = _output(cli, stack, key)
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"{stack} got no {key}")


def _status(cli, stack):
    return cli(f"stack show {stack}")["stack_status"]


def _settled(cli, stack, within=STACK_TIMEOUT):
    """The stack's status once it is no longer in progress."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status = _status(cli, stack)
        if not status.endswith("IN_PROGRESS"):
            return status
        time.sleep(2)
    raise AssertionError(f"{stack} still in progress after {within} s")


def _output(cli, stack, key):
    shown = cli(f"stack output show {stack} {key}")
    return shown["output_value"]


def _delete(cli, stack):
    # Polled with one CLI call per look: `stack delete --wait` polls on one
    # kept-alive connection, which uwsgi may reset between polls under load
    # ("Connection reset by peer", seen once in a full suite).
    cli(f"stack delete --yes {stack}", json_output=False)
    deadline = time.monotonic() + STACK_TIMEOUT
    while stack in {s["Stack Name"] for s in cli("stack list")}:
        assert time.monotonic() < deadline, f"{stack} still listed after {STACK_TIMEOUT} s"
        time.sleep(2)


def test_healthcheck_on_both_apis(host, address, curl):
    for port in (API_PORT, CFN_PORT):
        status, _ = curl(f"http://{address}:{port}/healthcheck")
        assert status == 200


def test_native_api_requires_a_token(host, address, curl):
    status, _ = curl(f"http://{address}:{API_PORT}/v1/{uuid.uuid4().hex}/stacks")
    assert status == 401


def test_endpoints_in_the_catalog(host, address, openstack_admin):
    for name, kind, port, path in (
        ("heat", "orchestration", API_PORT, "/v1/%(project_id)s"),
        ("heat-cfn", "cloudformation", CFN_PORT, "/v1/"),
    ):
        listed = openstack_admin(f"endpoint list --service {name}")
        assert {e["Service Type"] for e in listed} == {kind}
        urls = {e["Interface"]: e["URL"] for e in listed}
        url = f"http://{address}:{port}{path}"
        assert urls == {"public": url, "internal": url}


def test_stack_domain_and_its_admin(host, address, openstack_admin):
    domain = openstack_admin("domain show heat")
    assert domain["enabled"] is True
    grants = openstack_admin(
        "role assignment list --names --user heat_domain_admin --user-domain heat"
    )
    assert [(g["Role"], g["Domain"]) for g in grants] == [("admin", "heat")]
    roles = {r["Name"] for r in openstack_admin("role list")}
    assert {"heat_stack_owner", "heat_stack_user"} <= roles


def test_engines_report_up(host, address, openstack_admin):
    engines = openstack_admin("orchestration service list")
    assert engines, "no heat-engine registered"
    assert {e["Status"] for e in engines} == {"up"}
    workers = host.check_output("grep -E '^num_engine_workers' /etc/heat/heat.conf")
    assert len(engines) == int(workers.split("=")[1])


def test_hot_stack_waits_for_the_native_signal(host, address, curl, openstack_admin):
    name = f"molecule-hot-{uuid.uuid4().hex[:8]}"
    nonce = uuid.uuid4().hex
    _create(host, openstack_admin, HOT, name)
    try:
        endpoint = _ready_output(openstack_admin, name, "endpoint")
        token = _ready_output(openstack_admin, name, "token")
        # Without a signal the stack waits.
        time.sleep(5)
        assert _status(openstack_admin, name) == "CREATE_IN_PROGRESS"
        body = json.dumps({"status": "SUCCESS", "reason": "molecule", "data": nonce})
        status, _ = curl(
            "-X POST -H 'Content-Type: application/json'",
            f"-H {shlex.quote('X-Auth-Token: ' + token)}",
            f"--data {shlex.quote(body)}",
            shlex.quote(endpoint),
        )
        assert status == 200
        assert _settled(openstack_admin, name) == "CREATE_COMPLETE"
        assert json.loads(_output(openstack_admin, name, "data")) == {"1": nonce}
        # The stack's user lives in a project of the stack domain.
        projects = openstack_admin("project list --domain heat")
        assert projects, "no stack project in domain heat"
    finally:
        _delete(openstack_admin, name)


def test_cfn_stack_waits_for_the_presigned_url(host, address, curl, openstack_admin):
    name = f"molecule-cfn-{uuid.uuid4().hex[:8]}"
    nonce = uuid.uuid4().hex
    _create(host, openstack_admin, CFN, name)
    try:
        # The handle's reference: a URL of the CFN API, EC2-signed for a user
        # Heat made in its stack domain.
        url = _ready_output(openstack_admin, name, "Url")
        assert url.startswith(f"http://{address}:{CFN_PORT}/v1/waitcondition/")
        assert "Signature=" in url
        time.sleep(5)
        assert _status(openstack_admin, name) == "CREATE_IN_PROGRESS"
        body = json.dumps(
            {"Status": "SUCCESS", "Reason": "molecule", "UniqueId": "1", "Data": nonce}
        )
        status, answer = curl(
            "-X PUT -H 'Content-Type:'", f"--data-binary {shlex.quote(body)}", shlex.quote(url)
        )
        assert status == 200, answer
        assert _settled(openstack_admin, name) == "CREATE_COMPLETE"
        assert json.loads(_output(openstack_admin, name, "Data")) == {"1": nonce}
    finally:
        _delete(openstack_admin, name)


def test_stack_projects_are_removed_with_their_stacks(host, address, openstack_admin):
    projects = openstack_admin("project list --domain heat")
    assert projects == []


def test_schema_at_the_package_head(schema_at_head):
    schema_at_head(
        "runuser -u heat -- heat-manage",
        "/usr/lib/python3/dist-packages/heat/db/migrations",
        version="db_version",
    )


def test_config_file(service_config_lines, address):
    lines = service_config_lines("/etc/heat/heat.conf", "heat")
    assert f"heat_waitcondition_server_url = http://{address}:{CFN_PORT}/v1/waitcondition" in lines
    assert "stack_user_domain_name = heat" in lines
    assert "deferred_auth_method = trusts" in lines


def test_listens_on_bind_address_only(listens_only_on_address):
    listens_only_on_address(API_PORT)
    listens_only_on_address(CFN_PORT)


def test_keystone_relay_on_loopback_only_and_keystone_stays_closed(host, address, curl):
    relay = host.socket(f"tcp://127.0.0.1:{PORTS['keystone_relay']}")
    assert relay.is_listening
    assert not host.socket(f"tcp://{address}:{PORTS['keystone_relay']}").is_listening
    # Keystone itself still refuses an EC2 check without a token (OSSA-2025-002).
    status, _ = curl(
        "-X POST -H 'Content-Type: application/json'",
        """--data '{"credentials": {"access": "x", "signature": "y"}}'""",
        f"http://{address}:{KEYSTONE_PORT}/v3/ec2tokens",
    )
    assert status == 401


def test_each_api_logs_to_its_own_file(host):
    assert host.file("/var/log/heat/heat-api-cfn.log").exists
    assert "heat-api-cfn" not in host.file("/var/log/heat/heat-api.log").content_string


def test_services_enabled_and_running(enabled_and_running):
    enabled_and_running("heat-api", "heat-api-cfn", "heat-engine", "heat-keystone-relay")
