"""Pure parts of the compute scenario checks."""

from osdeploy.verify.compute import missing_agents, ping_results, ping_user_data


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
