"""The Keystone registration module's planning: only the difference is written."""

from types import ModuleType
from typing import Any

import pytest
from conftest import load_module


@pytest.fixture(scope="module")
def reg() -> ModuleType:
    return load_module("roles/openstack_service/library/osdeploy_keystone_registration.py")


SERVICE = {"name": "glance", "type": "image", "description": "OpenStack Image"}
ENDPOINTS = [
    {"interface": "public", "url": "http://192.0.2.1:9292"},
    {"interface": "internal", "url": "http://10.0.0.5:9292"},
]
DESIRED: dict[str, Any] = {
    "service": SERVICE,
    "endpoints": ENDPOINTS,
    "user": "glance",
    "roles": ["admin", "service"],
}
REGISTERED: dict[str, Any] = {
    "service": dict(SERVICE),
    "endpoints": [{"id": f"e{i}", **e} for i, e in enumerate(ENDPOINTS)],
    "user": "glance",
    "user_exists": True,
    "password_ok": True,
    "roles": ["admin", "service"],
}


def actions(
    reg: ModuleType, current: dict[str, Any], desired: dict[str, Any] = DESIRED
) -> list[str]:
    return [a["action"] for a in reg.plan_changes(current, desired)]


def test_nothing_to_do_when_everything_is_registered(reg: ModuleType) -> None:
    assert reg.plan_changes(REGISTERED, DESIRED) == []


def test_an_empty_keystone_gets_everything_in_order(reg: ModuleType) -> None:
    empty = {"service": None, "endpoints": [], "user_exists": False, "roles": []}
    assert actions(reg, empty) == [
        "create_service",
        "create_endpoint",
        "create_endpoint",
        "create_user",
        "grant_role",
        "grant_role",
    ]


def test_a_changed_url_updates_that_endpoint_only(reg: ModuleType) -> None:
    moved = [dict(ENDPOINTS[0]), {"interface": "internal", "url": "http://10.0.0.9:9292"}]
    planned = reg.plan_changes(REGISTERED, {**DESIRED, "endpoints": moved})
    assert planned == [
        {"action": "update_endpoint", "id": "e1", "interface": "internal", "url": moved[1]["url"]}
    ]


def test_a_rejected_password_is_set_and_missing_roles_granted(reg: ModuleType) -> None:
    current = {**REGISTERED, "password_ok": False, "roles": ["admin"]}
    planned = reg.plan_changes(current, DESIRED)
    assert planned == [{"action": "set_password"}, {"action": "grant_role", "role": "service"}]


def test_extra_roles_and_endpoints_are_left_alone(reg: ModuleType) -> None:
    current = {
        **REGISTERED,
        "roles": ["admin", "service", "reader"],
        "endpoints": [*REGISTERED["endpoints"], {"id": "e9", "interface": "admin", "url": "x"}],
    }
    assert reg.plan_changes(current, DESIRED) == []


def test_a_changed_description_updates_the_service(reg: ModuleType) -> None:
    current = {**REGISTERED, "service": {**SERVICE, "description": "old"}}
    assert reg.plan_changes(current, DESIRED) == [
        {"action": "update_service", "description": "OpenStack Image"}
    ]


def test_no_user_means_no_user_actions(reg: ModuleType) -> None:
    desired = {**DESIRED, "user": "", "roles": []}
    empty = {"service": None, "endpoints": [], "user_exists": False, "roles": []}
    assert actions(reg, empty, desired) == ["create_service", "create_endpoint", "create_endpoint"]


def test_diff_shows_no_password_or_ids(reg: ModuleType) -> None:
    empty = {"service": None, "endpoints": [], "user": "glance", "user_exists": False, "roles": []}
    planned = reg.plan_changes(empty, DESIRED)
    after = reg.apply_plan({**empty, "_want_service": SERVICE}, planned)
    before_text, after_text = str(reg.describe(empty)), str(reg.describe(after))
    assert reg.describe(empty)["service"] is None
    assert reg.describe(after) == {
        "service": SERVICE,
        "endpoints": sorted(f"{e['interface']} {e['url']}" for e in ENDPOINTS),
        "user": "glance",
        "roles": ["admin", "service"],
        "project": False,
        "all_roles": [],
        "domain": True,
        "domain_roles": [],
    }
    assert "e0" not in after_text
    assert "password" not in before_text + after_text


def test_missing_project_and_roles_are_created_first(reg: ModuleType) -> None:
    # keystone's own registration: the service project and the roles every
    # other service relies on, in the same API session.
    desired = {
        **DESIRED,
        "user": "",
        "roles": [],
        "ensure_project": "Service users",
        "ensure_roles": ["reader", "member", "admin", "service"],
    }
    current = {**REGISTERED, "project_exists": False, "all_roles": ["admin", "reader"]}
    planned = reg.plan_changes(current, desired)
    assert [(a["action"], a.get("role")) for a in planned] == [
        ("create_project", None),
        ("create_role", "member"),
        ("create_role", "service"),
    ]
    after = reg.apply_plan(current, planned)
    assert reg.describe(after)["all_roles"] == ["admin", "member", "reader", "service"]
    assert reg.describe(after)["project"] is True
    done = {
        **current,
        "project_exists": True,
        "all_roles": ["admin", "member", "reader", "service"],
    }
    assert reg.plan_changes(done, desired) == []


STACK_DOMAIN: dict[str, Any] = {
    "service": {},
    "user": "heat_domain_admin",
    "roles": [],
    "ensure_domain": "Stack projects and users of Heat",
    "domain_roles": ["admin"],
}


def test_a_missing_domain_gets_its_user_and_domain_role(reg: ModuleType) -> None:
    current = {"domain_exists": False, "user_exists": False, "roles": [], "domain_roles": []}
    assert actions(reg, current, STACK_DOMAIN) == [
        "create_domain",
        "create_user",
        "grant_domain_role",
    ]


def test_a_domain_with_its_admin_needs_nothing(reg: ModuleType) -> None:
    current = {"domain_exists": True, "user_exists": True, "password_ok": True}
    assert actions(reg, {**current, "domain_roles": ["admin"]}, STACK_DOMAIN) == []
    assert actions(reg, {**current, "domain_roles": []}, STACK_DOMAIN) == ["grant_domain_role"]


def test_domain_roles_show_in_the_diff(reg: ModuleType) -> None:
    current = {"domain_exists": False, "user": "heat_domain_admin", "user_exists": False}
    plan = reg.plan_changes(current, STACK_DOMAIN)
    after = reg.describe(reg.apply_plan(current, plan))
    assert after["domain"] is True
    assert after["domain_roles"] == ["admin"]
    assert after["service"] is None
