#!/usr/bin/python3
"""Ansible module: one OpenStack service's Keystone registration in one API session.

Reads what Keystone holds for the service (the service entry, its endpoints
in the region, the service user, whether the user's password still works,
its roles on the project) once, then writes only the difference. One
openstacksdk connection and a handful of GETs replace the five to eight
openstack.cloud module calls (1.5-4 s each: an interpreter, an import of
openstacksdk and a token apiece) that did the same.

Check mode reports what would change and writes nothing; diff mode shows
the service, endpoints, user and roles before and after (never a password).
The planning step, ``plan_changes``, is pure and unit-tested
(tests/unit/test_keystone_registration.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

DOCUMENTATION = r"""
module: osdeploy_keystone_registration
short_description: Register an OpenStack service in Keystone with one API session
description:
  - Creates or updates the service entry, its endpoints in one region, a
    service user (password set when Keystone rejects it) and the user's
    roles on a project; reads everything once and writes only the difference.
  - Runs where openstacksdk and a clouds.yaml with an admin cloud are.
options:
  cloud: {type: str, required: true, description: Admin cloud in clouds.yaml.}
  service:
    type: dict
    default: {}
    description: >-
      {name, type, description}; empty registers no service (a domain and
      its user only).
  endpoints:
    type: list
    elements: dict
    default: []
    description: "[{interface, url}]."
  region: {type: str, required: true, description: Region of the endpoints.}
  user: {type: str, default: "", description: Service user; empty registers none.}
  password: {type: str, default: "", no_log: true, description: Its password.}
  domain: {type: str, default: Default, description: Domain of the user and project.}
  project: {type: str, default: service, description: Project the roles are granted on; empty none.}
  roles: {type: list, elements: str, default: [], description: Roles on the project.}
  auth_url:
    type: str
    default: ""
    description: Keystone URL (without /v3) the user's password is tried at; default the cloud's.
  ensure_project:
    type: str
    default: ""
    description: Description of the project, created when missing; empty creates none.
  ensure_roles:
    type: list
    elements: str
    default: []
    description: Roles created when missing (whoever holds them).
  ensure_domain:
    type: str
    default: ""
    description: Description of the domain, created when missing; empty creates none.
  domain_roles:
    type: list
    elements: str
    default: []
    description: The user's roles on the domain.
"""

#: Actions, in the order they are applied.
ACTION_ORDER = (
    "create_domain",
    "create_project",
    "create_role",
    "create_service",
    "update_service",
    "create_endpoint",
    "update_endpoint",
    "create_user",
    "set_password",
    "grant_role",
    "grant_domain_role",
)


def plan_changes(current: Mapping[str, Any], desired: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The writes that make ``current`` what ``desired`` says, as action dicts.

    ``current``: ``service`` (``{name, type, description}`` or None),
    ``endpoints`` (``[{id, interface, url}]`` of the service in the region),
    ``user_exists`` (bool), ``password_ok`` (bool; only read when the user
    exists), ``roles`` (role names the user holds on the project),
    ``project_exists`` (bool), ``all_roles`` (every role name Keystone has),
    ``domain_exists`` (bool), ``domain_roles`` (the user's roles on the domain).
    ``desired``: ``service`` (empty: none), ``endpoints`` (``[{interface, url}]``),
    ``user`` (empty: none), ``roles``, ``ensure_project`` (the project's
    description; empty: leave it), ``ensure_roles`` (role names),
    ``ensure_domain`` (the domain's description; empty: leave it),
    ``domain_roles`` (the user's roles on the domain).

    An endpoint is matched by interface; a second endpoint of the same
    interface is left alone (an operator's own, or a load balancer's).
    """
    actions: list[dict[str, Any]] = []
    if desired.get("ensure_domain") and not current.get("domain_exists", True):
        actions.append({"action": "create_domain"})
    if desired.get("ensure_project") and not current.get("project_exists"):
        actions.append({"action": "create_project"})
    existing = set(current.get("all_roles") or ())
    actions.extend(
        {"action": "create_role", "role": role}
        for role in desired.get("ensure_roles") or ()
        if role not in existing
    )
    service = current.get("service")
    want = desired.get("service") or {}
    if want and service is None:
        actions.append({"action": "create_service"})
    elif (
        want
        and want.get("description") is not None
        and service.get("description") != want.get("description")
    ):
        actions.append({"action": "update_service", "description": want["description"]})
    by_interface: dict[str, Mapping[str, Any]] = {}
    for endpoint in current.get("endpoints") or ():
        by_interface.setdefault(endpoint["interface"], endpoint)
    for endpoint in desired.get("endpoints") or ():
        have = by_interface.get(endpoint["interface"])
        if have is None:
            actions.append({"action": "create_endpoint", **endpoint})
        elif have["url"] != endpoint["url"]:
            actions.append({"action": "update_endpoint", "id": have["id"], **endpoint})
    if desired.get("user"):
        if not current.get("user_exists"):
            actions.append({"action": "create_user"})
        elif not current.get("password_ok"):
            actions.append({"action": "set_password"})
        held = set(current.get("roles") or ()) if current.get("user_exists") else set()
        actions.extend(
            {"action": "grant_role", "role": role}
            for role in desired.get("roles") or ()
            if role not in held
        )
        held_on_domain = (
            set(current.get("domain_roles") or ()) if current.get("user_exists") else set()
        )
        actions.extend(
            {"action": "grant_domain_role", "role": role}
            for role in desired.get("domain_roles") or ()
            if role not in held_on_domain
        )
    return sorted(actions, key=lambda a: ACTION_ORDER.index(a["action"]))


def describe(state: Mapping[str, Any]) -> dict[str, Any]:
    """What diff mode shows of a state: no ids, no password."""
    service = state.get("service")
    return {
        "service": dict(service) if service else None,
        "endpoints": sorted(f"{e['interface']} {e['url']}" for e in state.get("endpoints") or ()),
        "user": state.get("user") if state.get("user_exists") else None,
        "roles": sorted(state.get("roles") or ()) if state.get("user_exists") else [],
        "project": state.get("project_exists", False),
        "domain": state.get("domain_exists", True),
        "domain_roles": sorted(state.get("domain_roles") or ()) if state.get("user_exists") else [],
        "all_roles": sorted(state.get("all_roles") or ()),
    }


def apply_plan(current: Mapping[str, Any], actions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``current`` as it will be after ``actions`` (for diff mode's "after")."""
    after: dict[str, Any] = {**current, "endpoints": list(current.get("endpoints") or ())}
    for action in actions:
        kind = action["action"]
        if kind in ("create_service", "update_service"):
            after["service"] = dict(after.get("_want_service") or {})
        elif kind == "create_endpoint":
            after["endpoints"].append({"interface": action["interface"], "url": action["url"]})
        elif kind == "update_endpoint":
            after["endpoints"] = [
                {**e, "url": action["url"]} if e.get("id") == action["id"] else e
                for e in after["endpoints"]
            ]
        elif kind == "create_domain":
            after["domain_exists"] = True
        elif kind == "create_project":
            after["project_exists"] = True
        elif kind == "create_role":
            after["all_roles"] = [*(after.get("all_roles") or ()), action["role"]]
        elif kind == "create_user":
            after["user_exists"] = True
            after["roles"] = []
        elif kind == "grant_role":
            after["roles"] = [*(after.get("roles") or ()), action["role"]]
        elif kind == "grant_domain_role":
            after["domain_roles"] = [*(after.get("domain_roles") or ()), action["role"]]
    return after


# -- the edge: openstacksdk -----------------------------------------------------------


def _read(conn: Any, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The current state, and the objects the writes need (ids)."""
    from keystoneauth1 import exceptions as ks_exc
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    want = params["service"]
    objects: dict[str, Any] = {}
    services = [
        s
        for s in (conn.identity.services() if want else ())
        if s.name == want["name"] and s.type == want["type"]
    ]
    service = services[0] if services else None
    objects["service"] = service
    state: dict[str, Any] = {
        "service": None,
        "endpoints": [],
        "user": params["user"],
        "user_exists": False,
        "password_ok": False,
        "roles": [],
        "project_exists": False,
        "all_roles": [],
        "domain_exists": True,
        "domain_roles": [],
    }
    if service is not None:
        state["service"] = {
            "name": service.name,
            "type": service.type,
            "description": service.description,
        }
        state["endpoints"] = [
            {"id": e.id, "interface": e.interface, "url": e.url}
            for e in conn.identity.endpoints(service_id=service.id)
            if e.region_id == params["region"]
        ]
    if any(params[k] for k in ("user", "ensure_project", "ensure_roles", "ensure_domain")):
        # A domain to be created may be missing (then so are its user and project).
        domain = conn.identity.find_domain(
            params["domain"], ignore_missing=bool(params["ensure_domain"])
        )
        project = None
        if domain is not None and params["project"]:
            project = conn.identity.find_project(
                params["project"], domain_id=domain.id, ignore_missing=not params["user"]
            )
        # Role names by id, for the user's assignments and for new grants.
        role_names = {r.id: r.name for r in conn.identity.roles()}
        objects.update(domain=domain, project=project, roles={n: i for i, n in role_names.items()})
        state["domain_exists"] = domain is not None
        state["project_exists"] = project is not None
        state["all_roles"] = sorted(role_names.values())
    if params["user"] and objects["domain"] is not None:
        domain, project = objects["domain"], objects["project"]
        user = conn.identity.find_user(params["user"], domain_id=domain.id)
        objects["user"] = user
        if user is not None:
            state["user_exists"] = True
            auth = v3.Password(
                auth_url=(params["auth_url"] or conn.config.get_auth_args()["auth_url"]).rstrip("/")
                + "/v3",
                username=params["user"],
                password=params["password"],
                user_domain_id=domain.id,
            )
            try:
                ks_session.Session(auth=auth).get_token()
                state["password_ok"] = True
            except ks_exc.Unauthorized:
                state["password_ok"] = False
            if project is not None:
                state["roles"] = sorted(
                    role_names.get(a.role["id"], a.role["id"])
                    for a in conn.identity.role_assignments(
                        user_id=user.id, scope_project_id=project.id
                    )
                )
            if params["domain_roles"]:
                state["domain_roles"] = sorted(
                    role_names.get(a.role["id"], a.role["id"])
                    for a in conn.identity.role_assignments(
                        user_id=user.id, scope_domain_id=domain.id
                    )
                )
    return state, objects


def _write(
    conn: Any, params: Mapping[str, Any], objects: dict[str, Any], action: Mapping[str, Any]
) -> None:
    kind = action["action"]
    want = params["service"]
    if kind == "create_domain":
        objects["domain"] = conn.identity.create_domain(
            name=params["domain"], description=params["ensure_domain"]
        )
    elif kind == "create_project":
        objects["project"] = conn.identity.create_project(
            name=params["project"],
            domain_id=objects["domain"].id,
            description=params["ensure_project"],
        )
    elif kind == "create_role":
        objects["roles"][action["role"]] = conn.identity.create_role(name=action["role"]).id
    elif kind == "create_service":
        objects["service"] = conn.identity.create_service(
            name=want["name"], type=want["type"], description=want.get("description")
        )
    elif kind == "update_service":
        conn.identity.update_service(objects["service"], description=action["description"])
    elif kind == "create_endpoint":
        conn.identity.create_endpoint(
            service_id=objects["service"].id,
            interface=action["interface"],
            url=action["url"],
            region_id=params["region"],
        )
    elif kind == "update_endpoint":
        conn.identity.update_endpoint(action["id"], url=action["url"])
    elif kind == "create_user":
        objects["user"] = conn.identity.create_user(
            name=params["user"],
            password=params["password"],
            domain_id=objects["domain"].id,
            **({"default_project_id": objects["project"].id} if objects["project"] else {}),
        )
    elif kind == "set_password":
        conn.identity.update_user(objects["user"], password=params["password"])
    elif kind == "grant_role":
        role = objects["roles"].get(action["role"]) or (
            conn.identity.find_role(action["role"], ignore_missing=False).id
        )
        conn.identity.assign_project_role_to_user(objects["project"], objects["user"], role)
    elif kind == "grant_domain_role":
        role = objects["roles"].get(action["role"]) or (
            conn.identity.find_role(action["role"], ignore_missing=False).id
        )
        conn.identity.assign_domain_role_to_user(objects["domain"], objects["user"], role)


def _label(action: Mapping[str, Any]) -> str:
    """One action as the task result lists it (no ids, no password)."""
    detail = action.get("interface") or action.get("role") or ""
    return f"{action['action']} {detail}".rstrip()


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "cloud": {"type": "str", "required": True},
            "service": {"type": "dict", "default": {}},
            "endpoints": {"type": "list", "elements": "dict", "default": []},
            "region": {"type": "str", "required": True},
            "user": {"type": "str", "default": ""},
            "password": {"type": "str", "default": "", "no_log": True},
            "domain": {"type": "str", "default": "Default"},
            "project": {"type": "str", "default": "service"},
            "roles": {"type": "list", "elements": "str", "default": []},
            "auth_url": {"type": "str", "default": ""},
            "ensure_project": {"type": "str", "default": ""},
            "ensure_roles": {"type": "list", "elements": "str", "default": []},
            "ensure_domain": {"type": "str", "default": ""},
            "domain_roles": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        import openstack

        # Identity calls go to auth_url, not to the catalog's identity
        # endpoint: that endpoint is one of the things this module repairs
        # (Keystone's address changed), and a stale one would stop the SDK.
        override = {"identity_endpoint_override": f"{params['auth_url'].rstrip('/')}/v3"}
        conn = openstack.connect(cloud=params["cloud"], **(override if params["auth_url"] else {}))
        current, objects = _read(conn, params)
        desired = {
            "service": params["service"],
            "endpoints": [
                {"interface": e["interface"], "url": e["url"]} for e in params["endpoints"]
            ],
            "user": params["user"],
            "roles": params["roles"],
            "ensure_project": params["ensure_project"],
            "ensure_roles": params["ensure_roles"],
            "ensure_domain": params["ensure_domain"],
            "domain_roles": params["domain_roles"],
        }
        actions = plan_changes(current, desired)
        if not module.check_mode:
            for action in actions:
                _write(conn, params, objects, action)
    except Exception as exc:  # any SDK failure becomes the task's message
        module.fail_json(msg=f"{type(exc).__name__}: {exc}")
    wanted_service = {
        "name": params["service"].get("name"),
        "type": params["service"].get("type"),
        "description": params["service"].get("description"),
    }
    after = apply_plan({**current, "_want_service": wanted_service}, actions)
    result: dict[str, Any] = {
        "changed": bool(actions),
        "actions": [_label(a) for a in actions],
    }
    if module._diff:
        result["diff"] = {"before": describe(current), "after": describe(after)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
