"""Where verify reads Ceph, and as whom.

A cluster osdeploy deploys: on the first monitor host, as client.admin. An
existing cluster (osdeploy.yml's ``ceph:``) gives osdeploy no admin key:
each pool is read as the service user that owns it, on the first host that
holds that user's keyring (the pool names are the site's, ``ceph.pools``).
"""

from __future__ import annotations

from typing import NamedTuple

from osdeploy.config import CEPH_POOL_VARS, CEPH_USERS, Config
from osdeploy.remote import run_on_host
from osdeploy.verify.core import CheckFailed, VerifyContext


class Reader(NamedTuple):
    service: str
    group: str  # a catalog group of the service: its hosts hold the keyring
    user_variable: str  # the role variable naming the cephx user (config.CEPH_USERS)
    user: str  # its default


#: Who reads each pool of an existing cluster, in the order tried for
#: `ceph status` (any service user may read the cluster's maps).
READERS = {
    "volumes": Reader("cinder", "cinder_volume", *CEPH_USERS["cinder"][0]),
    "backups": Reader("cinder", "cinder_volume", *CEPH_USERS["cinder"][1]),
    "vms": Reader("nova", "nova_compute", *CEPH_USERS["nova"][0]),
    "images": Reader("glance", "glance_api", *CEPH_USERS["glance"][0]),
}


def pool_name(config: Config, use: str) -> str:
    """The pool of ``use`` (volumes, images, vms, backups): an override of its
    role variable, else osdeploy.yml's ``ceph.pools``, else ``use`` itself."""
    given = config.ceph.pools.get(use) if config.ceph else None
    return str(config.overrides.get(CEPH_POOL_VARS[use]) or given or use)


def reader(ctx: VerifyContext, use: str | None) -> tuple[str, str]:
    """Host and the ceph/rbd arguments naming the user, to read ``use``'s pool
    (None: the cluster's status)."""
    if ctx.config.ceph is None:
        monitors = ctx.group_hosts("ceph", "ceph_mon")
        if not monitors:
            raise CheckFailed("no ceph_mon host in the config")
        return monitors[0], ""
    for candidate in [READERS[use]] if use else READERS.values():
        hosts = ctx.group_hosts(candidate.service, candidate.group)
        if hosts:
            user = ctx.config.overrides.get(candidate.user_variable, candidate.user)
            return hosts[0], f" --id {user}"
    wanted = f"{READERS[use].service} (pool {use})" if use else "cinder, nova or glance"
    raise CheckFailed(f"no host holds a Ceph keyring of {wanted}")


def run(ctx: VerifyContext, use: str | None, command: str) -> str:
    """Run ``command`` as root where ``use``'s pool can be read; its stdout.

    ``{who}`` in the command becomes the arguments naming the user (put it
    right after ``ceph`` or ``rbd``), ``{pool}`` the pool's name.
    """
    host, who = reader(ctx, use)
    line = command.format(who=who, pool=pool_name(ctx.config, use) if use else "")
    code, out, err = run_on_host(ctx.config, host, f"sudo {line}")
    if code != 0:
        raise CheckFailed(f"`{line}` on {host} failed (exit {code}): {(out + err).strip()[-300:]}")
    return out
