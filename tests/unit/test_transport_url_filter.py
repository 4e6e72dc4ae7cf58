"""The transport_url filter: every RabbitMQ server with the credentials, then the vhost."""

from conftest import load_module


def test_every_server_gets_the_credentials_and_the_vhost_follows() -> None:
    url = load_module("plugins/filter/osdeploy_transport_url.py").osdeploy_transport_url
    assert (
        url(["10.0.0.1:5672", "10.0.0.2:5672"], "nova", "pw1", "/nova")
        == "rabbit://nova:pw1@10.0.0.1:5672,nova:pw1@10.0.0.2:5672//nova"
    )
    assert url(["[fd00::1]:5672"], "heat", "pw2", "heat") == "rabbit://heat:pw2@[fd00::1]:5672/heat"
