"""Checks of the rabbitmq role on a converged host."""

import shlex

ROUND_TRIP = """
import sys, time, amqp
address, user, password, vhost = sys.argv[1:]
with amqp.Connection(host=address + ":5672", userid=user, password=password,
                     virtual_host=vhost, connect_timeout=10) as connection:
    channel = connection.channel()
    channel.queue_declare("molecule", durable=False, auto_delete=True)
    channel.basic_publish(amqp.Message("ping from molecule"), routing_key="molecule")
    for _ in range(100):
        message = channel.basic_get("molecule", no_ack=True)
        if message is not None:
            print(message.body)
            break
        time.sleep(0.1)
"""


def amqp_client(host, address, user, password, vhost):
    args = shlex.join([address, user, password, vhost])
    return host.run(f"python3 -c {shlex.quote(ROUND_TRIP)} {args}")


def test_service_running(host):
    service = host.service("rabbitmq-server")
    assert service.is_running
    assert service.is_enabled


def test_guest_removed(host, address):
    users = host.check_output("rabbitmqctl -q list_users")
    assert "guest" not in users.split()
    assert amqp_client(host, address, "guest", "guest", "/").rc != 0


def test_listens_on_the_address_only(host, address):
    listeners = host.check_output("ss -Hltn 'sport = :5672'")
    assert f"{address}:5672" in listeners
    assert "0.0.0.0:5672" not in listeners
    assert "*:5672" not in listeners
    assert host.check_output("ss -Hltn 'sport = :15672'") == ""


def test_amqp_round_trip(host, address):
    host.run("rabbitmqctl -q add_vhost /molecule")
    host.run("rabbitmqctl -q add_user molecule secret")
    host.check_output("rabbitmqctl -q set_permissions -p /molecule molecule '.*' '.*' '.*'")
    result = amqp_client(host, address, "molecule", "secret", "/molecule")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "ping from molecule"


def test_config_files(host):
    for name in ("rabbitmq.conf", "rabbitmq-env.conf", "enabled_plugins"):
        config = host.file(f"/etc/rabbitmq/{name}")
        assert (config.user, config.group, config.mode) == ("root", "rabbitmq", 0o640)
