"""deployed.yml: what earlier deploys installed, and what a run adds."""

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from osdeploy.catalog import Catalog
from osdeploy.config import Config, Host
from osdeploy.plan import build_plan, change_text
from osdeploy.state import after_run, limit_hosts, load_deployed, save_deployed


def test_limit_hosts() -> None:
    known = ["ctl1", "cmp1", "cmp3"]
    assert limit_hosts(None, known) is None
    assert limit_hosts("cmp3", known) == {"cmp3"}
    assert limit_hosts("cmp1,cmp3", known) == {"cmp1", "cmp3"}
    # Groups or patterns: nothing osdeploy can be sure of.
    assert limit_hosts("compute", known) == set()
    assert limit_hosts("cmp*", known) == set()


def test_after_run_records_services_and_new_hosts(
    make_config: Callable[..., Config], catalog: Catalog
) -> None:
    config = make_config("[keystone]")
    plan = build_plan(config, catalog)
    state = after_run({}, plan, None)
    assert state == {name: ("ctl1",) for name in plan.names()}
    glance = build_plan(make_config("[keystone, glance]"), catalog, ["glance"])
    state = after_run(state, glance, None)
    assert state["glance"] == ("ctl1",)
    assert change_text(glance.service("glance"), state) == "deployed"
    assert change_text(glance.service("glance"), {}) == "new"


def test_a_limited_run_records_only_its_hosts(
    make_config: Callable[..., Config], catalog: Catalog
) -> None:
    base = make_config("[keystone, glance]")
    two = replace(
        base, hosts=(*base.hosts, Host(name="ctl2", address="10.0.0.9", roles=("control",)))
    )
    plan = build_plan(two, catalog)
    state = after_run({}, plan, {"ctl1"})
    assert state["glance"] == ("ctl1",)
    later = after_run(state, plan, {"ctl2"})
    assert later["glance"] == ("ctl1", "ctl2")
    assert change_text(plan.service("glance"), state) == "adds ctl2"


def test_state_file_round_trip(tmp_path: Path) -> None:
    assert load_deployed(tmp_path) == {}
    save_deployed(tmp_path, {"keystone": ("ctl1",), "nova": ("ctl1", "cmp1")})
    assert load_deployed(tmp_path) == {"keystone": ("ctl1",), "nova": ("ctl1", "cmp1")}
    (tmp_path / "deployed.yml").write_text(": not yaml [")
    assert load_deployed(tmp_path) == {}
