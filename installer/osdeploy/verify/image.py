"""Checks of Glance: an image's data makes the round trip, the metadata definitions are there."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

from osdeploy.verify.core import PREFIX, CheckFailed, VerifyContext, check

BLOB_BYTES = 4 * 1024 * 1024


# -- pure helpers --------------------------------------------------------------


def sha512_of(chunks: Iterable[bytes]) -> str:
    digest = hashlib.sha512()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


#: Namespaces of glance's standard metadata definitions that clients (the
#: dashboard's metadata dialogs, image property hints) look for, and a
#: resource type each must be associated with.
METADEF_NAMESPACES: dict[str, str | None] = {
    "OS::Compute::Hypervisor": "OS::Glance::Image",
    "OS::Compute::Libvirt": "OS::Nova::Flavor",
    "OS::Compute::Watchdog": "OS::Cinder::Volume",
    "OS::OperatingSystem": "OS::Glance::Image",
    # Shipped with no resource type: the properties every image may carry.
    "OS::Glance::CommonImageProperties": None,
}


def metadef_problems(namespaces: Iterable[Mapping[str, Any]]) -> list[str]:
    """What is missing from glance's metadata definitions, one phrase each.

    ``namespaces`` as the metadefs API lists them: ``namespace`` and
    ``resource_type_associations`` (each with a ``name``).
    """
    types = {
        str(ns.get("namespace")): {
            str(a.get("name")) for a in ns.get("resource_type_associations") or ()
        }
        for ns in namespaces
    }
    problems = []
    for name, resource_type in METADEF_NAMESPACES.items():
        if name not in types:
            problems.append(f"namespace {name} missing")
        elif resource_type is not None and resource_type not in types[name]:
            problems.append(f"{name} not associated with {resource_type}")
    return problems


# -- checks --------------------------------------------------------------------


@check("glance_image_roundtrip")
def check_glance_image_roundtrip(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    blob = os.urandom(BLOB_BYTES)
    want = hashlib.sha512(blob).hexdigest()
    name = f"{PREFIX}-blob"
    for old in conn.image.images(name=name):
        conn.image.delete_image(old)
    image = conn.image.create_image(
        name=name, data=blob, disk_format="raw", container_format="bare", wait=True
    )
    try:
        image = conn.image.get_image(image)
        if image.status != "active":
            raise CheckFailed(f"uploaded image is {image.status}, not active — see glance-api.log")
        if image.hash_value and image.hash_value != want:
            raise CheckFailed("glance's os_hash_value differs from the uploaded data's sha512")
        response = conn.image.download_image(image, stream=True)
        got = sha512_of(response.iter_content(chunk_size=1 << 20))
        if got != want:
            raise CheckFailed("downloaded data differs from the uploaded data (sha512)")
        stores = str(getattr(image, "stores", None) or (image.properties or {}).get("stores", "?"))
    finally:
        conn.image.delete_image(image, ignore_missing=True)
    return (
        f"uploaded and downloaded {BLOB_BYTES >> 20} MiB in store {stores}, "
        "sha512 and os_hash_value match"
    )


@check("glance_metadefs")
def check_glance_metadefs(ctx: VerifyContext) -> str:
    conn = ctx.admin()
    namespaces = [ns.to_dict() for ns in conn.image.metadef_namespaces()]
    problems = metadef_problems(namespaces)
    if problems:
        raise CheckFailed(
            f"{'; '.join(problems)} ({len(namespaces)} namespaces listed) — "
            "the glance role loads them with glance-manage db load_metadefs; "
            "re-run deploy --services glance"
        )
    types = {t.name for t in conn.image.metadef_resource_types()}
    associated = sum(1 for ns in namespaces if ns.get("resource_type_associations"))
    return (
        f"{len(namespaces)} namespaces ({associated} with resource types), "
        f"{len(types)} resource types; {', '.join(METADEF_NAMESPACES)} present"
    )
