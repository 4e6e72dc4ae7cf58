"""demoservice got its database, RabbitMQ user and Keystone registration."""

import json
import shlex

from osdeploy.catalog import load_catalog

DB_PASSWORD = "molecule-demo-db"
MQ_PASSWORD = "molecule-demo-mq"
# Keystone is another role: its port comes from the catalog, as in the roles.
KEYSTONE_PORT = load_catalog()["keystone"].ports["public"]
KS_PASSWORD = "molecule-demo-ks"


def _openstack(host, address, *args):
    env = {
        "OS_AUTH_URL": f"http://{address}:{KEYSTONE_PORT}",
        "OS_USERNAME": "demoservice",
        "OS_PASSWORD": KS_PASSWORD,
        "OS_PROJECT_NAME": "service",
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_REGION_NAME": "RegionOne",
        "OS_IDENTITY_API_VERSION": "3",
        "OS_INTERFACE": "internal",
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    cmd = host.run(f"env {exports} openstack {' '.join(args)} -f json")
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout)


def test_database_user_connects_over_tcp(host, address):
    cmd = host.run(
        f"mariadb -h {address} -u demoservice -p{DB_PASSWORD} demoservice -N -e 'SELECT DATABASE()'"
    )
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.strip() == "demoservice"


def test_database_user_sees_only_its_database(host, address):
    cmd = host.run(f"mariadb -h {address} -u demoservice -p{DB_PASSWORD} keystone -e 'SELECT 1'")
    assert cmd.rc != 0


def test_rabbitmq_user_authenticates(host):
    cmd = host.run(f"rabbitmqctl authenticate_user demoservice {MQ_PASSWORD}")
    assert cmd.rc == 0, cmd.stderr
    wrong = host.run("rabbitmqctl authenticate_user demoservice wrong")
    assert wrong.rc != 0


def test_rabbitmq_user_has_full_permissions_on_its_vhost(host):
    out = host.check_output("rabbitmqctl list_permissions -q -p /demoservice")
    rows = [line.split("\t") for line in out.splitlines()]
    assert ["demoservice", ".*", ".*", ".*"] in rows


def test_service_user_gets_a_token(host, address):
    token = _openstack(host, address, "token issue")
    assert token["id"]
    assert token["project_id"]


def test_endpoints_in_the_catalog(host, address):
    entry = _openstack(host, address, "catalog show demoservice")
    assert entry["type"] == "demo"
    urls = {e["interface"]: e["url"] for e in entry["endpoints"]}
    assert urls == {
        "public": f"http://{address}:9999/v1",
        "internal": f"http://{address}:9999/v1",
    }


def test_service_user_has_admin_and_service_on_project_service(host, address):
    rows = _openstack(
        host, address, "role assignment list --user demoservice --project service --names"
    )
    assert {row["Role"] for row in rows} == {"admin", "service"}
