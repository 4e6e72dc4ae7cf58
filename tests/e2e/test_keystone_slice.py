"""Foundation slice end to end: MariaDB, RabbitMQ, memcached and Keystone on a
real lab host, deployed by `osdeploy deploy`, verified with real API calls.

The tests run in file order and build on each other (one lab for the session).
"""

from __future__ import annotations

import json
import urllib.request

import yaml

from .conftest import BIN, Lab


def _summary(run_stdout: str) -> dict:
    return json.loads(run_stdout[run_stdout.index("{") :])


def test_cold_deploy_succeeds(lab: Lab) -> None:
    run = lab.run("deploy", "--json")
    assert run.returncode == 0, run.output[-4000:]
    summary = _summary(run.stdout)
    assert summary["failures"] == []
    assert set(summary["hosts"]) == {"ctl1"}
    assert summary["hosts"]["ctl1"]["changed"] > 0


def test_verify_passes_every_check(lab: Lab) -> None:
    run = lab.run("verify")
    assert run.returncode == 0, run.output
    lines = [line for line in run.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert lines, run.stdout
    assert all(line.startswith("PASS") for line in lines), run.stdout
    for check in ("keystone_token_admin", "keystone_token_demo", "keystone_catalog"):
        assert any(check in line for line in lines), check


def test_openstack_client_uses_written_clouds_yaml(lab: Lab) -> None:
    token = lab.run_raw([str(BIN / "openstack"), "--os-cloud", "osdeploy", "token", "issue"])
    assert token.returncode == 0, token.output
    assert "expires" in token.stdout
    endpoints = lab.run_raw(
        [str(BIN / "openstack"), "--os-cloud", "osdeploy", "endpoint", "list", "-f", "json"]
    )
    assert endpoints.returncode == 0, endpoints.output
    identity = [e for e in json.loads(endpoints.stdout) if e["Service Type"] == "identity"]
    assert {e["Interface"] for e in identity} >= {"public", "internal"}


def test_public_endpoint_serves_version_document(lab: Lab) -> None:
    clouds = yaml.safe_load((lab.dir / "clouds.yaml").read_text())
    auth_url = clouds["clouds"]["osdeploy"]["auth"]["auth_url"].rstrip("/")
    with urllib.request.urlopen(auth_url, timeout=10) as response:  # noqa: S310 (lab host)
        document = json.load(response)
    assert document["version"]["id"].startswith("v3"), document


def test_second_deploy_changes_nothing(lab: Lab) -> None:
    run = lab.run("deploy", "--json")
    assert run.returncode == 0, run.output[-4000:]
    summary = _summary(run.stdout)
    assert {host: counts["changed"] for host, counts in summary["hosts"].items()} == {"ctl1": 0}


def test_check_and_diff_mode_is_clean_and_quiet(lab: Lab) -> None:
    # -C -D on a deployed cloud: nothing would change, and the secret-bearing
    # templates print no diff (the next test looks for leaks in this run too).
    run = lab.run("deploy", "-C", "-D", "--json", "--skip-precheck")
    assert run.returncode == 0, run.output[-4000:]
    assert _summary(run.stdout)["hosts"]["ctl1"]["changed"] == 0


def test_no_secret_in_logs_or_console(lab: Lab) -> None:
    passwords = yaml.safe_load((lab.dir / "passwords.yml").read_text())
    assert passwords, "passwords.yml is empty"
    logs = sorted((lab.dir / "logs").glob("*.log"))
    assert logs, "the runner wrote no log"
    texts = [log.read_text(errors="replace") for log in logs]
    texts += [run.output for run in lab.runs]
    for name, secret in passwords.items():
        for text in texts:
            assert str(secret) not in text, f"value of {name} leaked"


def test_validate_error_touches_no_host(lab: Lab) -> None:
    config = lab.dir / "osdeploy.yml"
    good = config.read_text()
    try:
        config.write_text(good.replace("services:", "services:\n- nosuchservice", 1))
        before = sorted((lab.dir / "logs").glob("*.log"))
        run = lab.run("deploy")
        assert run.returncode == 2, run.output
        assert "nosuchservice" in run.stderr
        assert sorted((lab.dir / "logs").glob("*.log")) == before
    finally:
        config.write_text(good)
