"""Checks of Keystone: tokens for admin and a demo user, the catalog, every endpoint.

The demo project and user (role member) are created when missing; the
catalog's identity entry and each public/internal endpoint's version document
are judged by pure functions (unit-tested).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from osdeploy.cloud import CloudSettings
from osdeploy.verify.core import CheckFailed, VerifyContext, check, explain
from osdeploy.verify.net import probe_endpoint

ENDPOINT_INTERFACES = ("public", "internal")
DEMO_NAME = "demo"
DEMO_ROLE = "member"
DEMO_PASSWORD_KEY = "keystone_demo_password"  # noqa: S105 (a key name in passwords.yml)


# -- pure helpers --------------------------------------------------------------


def catalog_endpoints(
    catalog: Iterable[Mapping[str, Any]], interfaces: Sequence[str] = ENDPOINT_INTERFACES
) -> list[tuple[str, str, str]]:
    """(service type, interface, url) of every catalog endpoint on the interfaces."""
    found: list[tuple[str, str, str]] = []
    for service in catalog:
        stype = str(service.get("type", "?"))
        for endpoint in service.get("endpoints", []) or []:
            interface = str(endpoint.get("interface", ""))
            url = endpoint.get("url")
            if interface in interfaces and isinstance(url, str) and url:
                found.append((stype, interface, url))
    return sorted(set(found))


def identity_problems(catalog: Iterable[Mapping[str, Any]], region: str) -> list[str]:
    """What is missing from the identity entry of a token's catalog (empty = fine)."""
    identity = [s for s in catalog if s.get("type") == "identity"]
    if not identity:
        return ["no identity service in the catalog"]
    problems: list[str] = []
    endpoints = [e for s in identity for e in (s.get("endpoints") or [])]
    for interface in ENDPOINT_INTERFACES:
        matching = [e for e in endpoints if e.get("interface") == interface]
        if not matching:
            problems.append(f"identity has no {interface} endpoint")
        elif not any((e.get("region_id") or e.get("region")) == region for e in matching):
            problems.append(f"identity {interface} endpoint is not in region {region}")
    return problems


# -- checks --------------------------------------------------------------------


@check("keystone_token_admin")
def check_keystone_token_admin(ctx: VerifyContext) -> str:
    ctx.admin().authorize()
    return f"token issued for {ctx.settings.username} in project {ctx.settings.project_name}"


def _ensure_demo(ctx: VerifyContext) -> list[str]:
    """Project demo, user demo (member of it); returns what had to be created."""
    identity = ctx.admin().identity
    created: list[str] = []
    domain = identity.find_domain(ctx.settings.user_domain_name, ignore_missing=False)
    project = identity.find_project(DEMO_NAME, domain_id=domain.id)
    if project is None:
        project = identity.create_project(
            name=DEMO_NAME, domain_id=domain.id, description="osdeploy verify: demo project"
        )
        created.append("project")
    user = identity.find_user(DEMO_NAME, domain_id=domain.id)
    if user is None:
        user = identity.create_user(
            name=DEMO_NAME,
            domain_id=domain.id,
            password=ctx.password(DEMO_PASSWORD_KEY),
            default_project_id=project.id,
            description="osdeploy verify: demo user",
        )
        created.append("user")
    role = identity.find_role(DEMO_ROLE)
    if role is None:
        raise CheckFailed(
            f"role {DEMO_ROLE!r} does not exist — keystone-manage bootstrap creates it; "
            "re-run `osdeploy deploy --services keystone`"
        )
    if not identity.validate_user_has_project_role(project, user, role):
        identity.assign_project_role_to_user(project, user, role)
        created.append("role assignment")
    return created


def demo_settings(ctx: VerifyContext) -> CloudSettings:
    """The admin cloud's settings with the demo user in the demo project."""
    return CloudSettings(
        auth_url=ctx.settings.auth_url,
        username=DEMO_NAME,
        project_name=DEMO_NAME,
        user_domain_name=ctx.settings.user_domain_name,
        project_domain_name=ctx.settings.project_domain_name,
        region_name=ctx.settings.region_name,
        interface=ctx.settings.interface,
    )


@check("keystone_token_demo")
def check_keystone_token_demo(ctx: VerifyContext) -> str:
    created = _ensure_demo(ctx)
    demo = demo_settings(ctx)
    conn = ctx.connect(demo, DEMO_PASSWORD_KEY)
    try:
        conn.authorize()
    except Exception as exc:
        raise CheckFailed(explain(exc, demo)) from exc
    finally:
        conn.close()
    note = f" (created {', '.join(created)})" if created else ""
    return f"token issued for {DEMO_NAME} with role {DEMO_ROLE} in project {DEMO_NAME}{note}"


def token_catalog(ctx: VerifyContext) -> list[dict[str, Any]]:
    conn = ctx.admin()
    access = conn.session.auth.get_access(conn.session)
    return list(access.service_catalog.catalog or [])


@check("keystone_catalog")
def check_keystone_catalog(ctx: VerifyContext) -> str:
    catalog = token_catalog(ctx)
    problems = identity_problems(catalog, ctx.settings.region_name)
    if problems:
        raise CheckFailed(
            "; ".join(problems) + " — re-run `osdeploy deploy --services keystone` "
            "(keystone-manage bootstrap registers the identity endpoints)"
        )
    types = sorted({str(s.get("type")) for s in catalog})
    return f"catalog has {len(catalog)} entries: {', '.join(types)}"


@check("keystone_endpoints")
def check_keystone_endpoints(ctx: VerifyContext) -> str:
    targets = catalog_endpoints(token_catalog(ctx))
    if not targets:
        raise CheckFailed("the catalog has no public or internal endpoints")
    problems: list[str] = []
    for _stype, _interface, url in targets:
        try:
            problem = probe_endpoint(url)
        except CheckFailed as exc:
            problem = str(exc)
        if problem:
            problems.append(problem)
    if problems:
        raise CheckFailed(
            "; ".join(problems) + " — check the service and the address in the endpoint "
            "(network.public_address / internal_address)"
        )
    return f"{len(targets)} endpoints answer with a version document (Swift: its /info)"
