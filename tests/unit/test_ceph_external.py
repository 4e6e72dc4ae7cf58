"""An existing Ceph cluster (``ceph:``): validated before any host is touched, no Ceph daemons."""

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import BASE_CONFIG

from osdeploy.catalog import Catalog
from osdeploy.cloud import CloudSettings
from osdeploy.config import Config, load_config
from osdeploy.errors import ConfigError
from osdeploy.inventory import HOSTS_FILE, VARS_FILE, load_defaults, render_files
from osdeploy.plan import build_plan
from osdeploy.secrets import generate_cephx_key
from osdeploy.verify import ceph
from osdeploy.verify.core import CheckFailed, VerifyContext

FSID = "0d4f1f3e-8f4a-4f43-9d64-2b1f7c5a9e10"
#: conftest's minimal config with a storage host (cinder's volume hosts).
HOSTS = BASE_CONFIG.replace("roles: [compute]}", "roles: [compute, storage]}")
CEPH = """\
ceph:
  conf: site-ceph/ceph.conf
  keyrings:
    cinder: site-ceph/ceph.client.cinder.keyring
    cinder-backup: site-ceph/ceph.client.cinder-backup.keyring
"""


def keyring(user: str, key: str | None = None) -> str:
    """A keyring as `ceph auth get client.<user> -o <file>` writes it."""
    return (
        f"[client.{user}]\n\tkey = {key or generate_cephx_key()}\n"
        '\tcaps mon = "profile rbd"\n\tcaps osd = "profile rbd pool=volumes"\n'
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The files a site hands over: ceph.conf and the keyrings of cinder's users."""
    directory = tmp_path / "site-ceph"
    directory.mkdir()
    (directory / "ceph.conf").write_text(
        f"[global]\n\tfsid = {FSID}\n\tmon host = 10.9.0.1,10.9.0.2,10.9.0.3\n"
    )
    for user in ("cinder", "cinder-backup"):
        (directory / f"ceph.client.{user}.keyring").write_text(keyring(user))
    return directory


@pytest.fixture
def load(write_config: Callable[[str], Path], catalog: Catalog) -> Callable[[str], Config]:
    def load(text: str) -> Config:
        return load_config(write_config(text), catalog)

    return load


def problems(load: Callable[[str], Config], text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text)
    return [f"{p.path}: {p.message}; {p.fix}" for p in caught.value.problems]


def test_existing_cluster_is_planned_without_ceph_hosts(
    load: Callable[[str], Config], site: Path, catalog: Catalog
) -> None:
    config = load(f"{HOSTS}services: [cinder]\n{CEPH}  pools: {{volumes: cloud-volumes}}\n")

    assert config.ceph is not None
    assert config.ceph.conf == site / "ceph.conf"
    assert config.ceph.keyrings["cinder"] == site / "ceph.client.cinder.keyring"
    plan = build_plan(config, catalog)
    assert "ceph" in plan
    assert plan.service("ceph").groups == {"ceph_mon": (), "ceph_osd": ()}
    assert plan.service("cinder").groups == {"cinder_api": ("ctl1",), "cinder_volume": ("cmp1",)}
    # The cluster's fsid and keys are the site's: none is generated.
    assert not set(catalog["ceph"].secrets) & set(plan.secrets)
    assert "cinder_rbd_secret_uuid" in plan.secrets  # libvirt's, on every compute

    files = render_files(config, plan, catalog, load_defaults())
    children = yaml.safe_load(files[HOSTS_FILE])["all"]["children"]
    assert children["ceph_mon"] == {} and children["ceph_osd"] == {}
    assert children["cinder_volume"] == {"children": {"storage": {}}}
    variables = yaml.safe_load(files[VARS_FILE])
    assert variables["enable_ceph"] is True  # glance and nova use it too
    assert variables["osdeploy_ceph_external"] == {
        "conf": str(site / "ceph.conf"),
        "keyrings": {
            "cinder": str(site / "ceph.client.cinder.keyring"),
            "cinder-backup": str(site / "ceph.client.cinder-backup.keyring"),
        },
    }
    assert variables["cinder_rbd_pool"] == "cloud-volumes"
    assert "ceph_mon" not in variables["osdeploy_wiring"].get("servers", {})


def test_without_ceph_section_osdeploy_deploys_the_cluster(
    load: Callable[[str], Config], catalog: Catalog
) -> None:
    config = load(f"{HOSTS}services: [cinder]\n")
    assert config.ceph is None
    plan = build_plan(config, catalog)
    assert plan.service("ceph").groups == {"ceph_mon": ("ctl1",), "ceph_osd": ("cmp1",)}
    assert set(catalog["ceph"].secrets) <= set(plan.secrets)
    variables = yaml.safe_load(render_files(config, plan, catalog, load_defaults())[VARS_FILE])
    assert variables["osdeploy_ceph_external"] is None
    assert "cinder_rbd_pool" not in variables  # the role's default


def test_ceph_daemons_need_no_storage_host_with_an_existing_cluster(
    load: Callable[[str], Config], site: Path
) -> None:
    # Glance and nova on an existing cluster; no host has the storage role.
    text = HOSTS.replace("[compute, storage]", "[compute]")
    glance = "    glance: site-ceph/ceph.client.glance.keyring\n"
    nova = "    nova: site-ceph/ceph.client.nova.keyring\n"
    for user in ("glance", "nova"):
        (site / f"ceph.client.{user}.keyring").write_text(keyring(user))
    config = load(f"{text}services: [ceph, glance, nova]\n{CEPH}{glance}{nova}")
    assert config.ceph is not None and set(config.ceph.keyrings) >= {"glance", "nova"}


def test_every_user_of_the_planned_services_needs_a_keyring(
    load: Callable[[str], Config], site: Path
) -> None:
    found = problems(load, f"{HOSTS}services: [cinder, glance]\n{CEPH}")
    assert found == [
        "ceph.keyrings: no keyring for client.glance, which the planned services use; add glance:"
        " <its keyring file> (map each cephx user to its keyring file, e.g. {cinder:"
        " ceph.client.cinder.keyring, cinder-backup: ceph.client.cinder-backup.keyring,"
        " glance: ceph.client.glance.keyring})"
    ]


def test_gnocchi_stores_in_the_existing_cluster_as_its_own_user(
    load: Callable[[str], Config], site: Path, catalog: Catalog
) -> None:
    # Ceph in the plan (cinder) makes gnocchi's storage ceph: its user
    # needs a keyring, and pools.metrics names its pool.
    services = f"{HOSTS}services: [cinder, gnocchi]\n"
    found = problems(load, f"{services}{CEPH}")
    assert len(found) == 1
    assert found[0].startswith("ceph.keyrings: no keyring for client.gnocchi")

    (site / "ceph.client.gnocchi.keyring").write_text(keyring("gnocchi"))
    gnocchi = "    gnocchi: site-ceph/ceph.client.gnocchi.keyring\n"
    config = load(f"{services}{CEPH}{gnocchi}  pools: {{metrics: cloud-metrics}}\n")
    variables = yaml.safe_load(
        render_files(config, build_plan(config, catalog), catalog, load_defaults())[VARS_FILE]
    )
    assert variables["enable_ceph"] is True
    assert variables["gnocchi_ceph_pool"] == "cloud-metrics"
    assert "gnocchi" in variables["osdeploy_ceph_external"]["keyrings"]


def test_a_renamed_user_needs_its_own_keyring(load: Callable[[str], Config], site: Path) -> None:
    overrides = "overrides: {cinder_rbd_user: openstack-volumes}\n"
    found = problems(load, f"{HOSTS}services: [cinder]\n{CEPH}{overrides}")
    assert len(found) == 1
    assert found[0].startswith("ceph.keyrings: no keyring for client.openstack-volumes")


def test_keyring_of_another_user(load: Callable[[str], Config], site: Path) -> None:
    (site / "ceph.client.cinder.keyring").write_text(keyring("admin"))
    found = problems(load, f"{HOSTS}services: [cinder]\n{CEPH}")
    path = site / "ceph.client.cinder.keyring"
    assert found == [
        f"ceph.keyrings.cinder: {path} holds no key of client.cinder; give the file"
        " `ceph auth get client.cinder` writes on the cluster"
    ]


def test_keyring_with_another_user_first(load: Callable[[str], Config], site: Path) -> None:
    path = site / "ceph.client.cinder.keyring"
    path.write_text(keyring("admin") + keyring("cinder"))
    found = problems(load, f"{HOSTS}services: [cinder]\n{CEPH}")
    assert found == [
        f"ceph.keyrings.cinder: {path} holds the key of client.admin before client.cinder's;"
        " give a file with client.cinder alone (give the file `ceph auth get client.cinder`"
        " writes on the cluster)"
    ]


def test_keyring_with_a_bad_key(load: Callable[[str], Config], site: Path) -> None:
    (site / "ceph.client.cinder.keyring").write_text(keyring("cinder", "AQnotakey=="))
    found = problems(load, f"{HOSTS}services: [cinder]\n{CEPH}")
    assert len(found) == 1
    assert "the key of client.cinder is not a cephx key" in found[0]


def test_missing_files(load: Callable[[str], Config], site: Path) -> None:
    (site / "ceph.conf").unlink()
    (site / "ceph.client.cinder-backup.keyring").unlink()
    found = problems(load, f"{HOSTS}services: [cinder]\n{CEPH}")
    assert found == [
        f"ceph.conf: no such file {site / 'ceph.conf'}; copy the cluster's"
        " /etc/ceph/ceph.conf there",
        f"ceph.keyrings.cinder-backup: no such file {site / 'ceph.client.cinder-backup.keyring'};"
        " give the file `ceph auth get client.cinder-backup` writes on the cluster",
    ]


def test_conf_without_monitors_or_fsid(load: Callable[[str], Config], site: Path) -> None:
    (site / "ceph.conf").write_text("[global]\nauth_client_required = cephx\n")
    found = problems(load, f"{HOSTS}services: [cinder]\n{CEPH}")
    assert [line.split(";")[0] for line in found] == [
        f"ceph.conf: {site / 'ceph.conf'} has no mon_host in [global]",
        f"ceph.conf: {site / 'ceph.conf'} has no valid fsid in [global]",
    ]


def test_no_service_uses_ceph(load: Callable[[str], Config], site: Path) -> None:
    found = problems(load, f"{HOSTS}services: [keystone]\n{CEPH}")
    assert found == [
        "ceph: names a Ceph cluster, but no planned service uses Ceph; add cinder (or ceph)"
        " to services:, or remove ceph:"
    ]


def test_bad_pools(load: Callable[[str], Config], site: Path) -> None:
    pools = "  pools: {volumes: 'my volumes', snapshots: snaps}\n"
    found = problems(load, f"{HOSTS}services: [cinder]\n{CEPH}{pools}")
    assert [line.split(";")[0] for line in found] == [
        "ceph.pools.snapshots: unknown key",
        "ceph.pools.volumes: invalid pool name 'my volumes'",
    ]


def verify_context(config: Config, catalog: Catalog, tmp_path: Path) -> VerifyContext:
    settings = CloudSettings(auth_url="http://10.0.0.5:5000/v3")
    plan = build_plan(config, catalog)
    return VerifyContext(tmp_path, config, plan, catalog, {}, settings)


def test_verify_reads_an_existing_cluster_as_the_pools_users(
    load: Callable[[str], Config], site: Path, catalog: Catalog, tmp_path: Path
) -> None:
    pools = "  pools: {volumes: cloud-volumes, backups: cloud-backups}\n"
    config = load(f"{HOSTS}services: [cinder]\n{CEPH}{pools}")
    context = verify_context(config, catalog, tmp_path)

    assert ceph.reader(context, "volumes") == ("cmp1", " --id cinder")
    assert ceph.reader(context, "backups") == ("cmp1", " --id cinder-backup")
    assert ceph.reader(context, None) == ("cmp1", " --id cinder")
    assert ceph.pool_name(config, "volumes") == "cloud-volumes"
    assert ceph.pool_name(config, "vms") == "vms"
    with pytest.raises(CheckFailed, match=r"no host holds a Ceph keyring of nova \(pool vms\)"):
        ceph.reader(context, "vms")


def test_verify_reads_its_own_cluster_as_admin_on_the_first_monitor(
    load: Callable[[str], Config], catalog: Catalog, tmp_path: Path
) -> None:
    config = load(f"{HOSTS}services: [cinder]\noverrides: {{nova_rbd_pool: ephemeral}}\n")
    context = verify_context(config, catalog, tmp_path)

    assert ceph.reader(context, "backups") == ("ctl1", "")
    assert ceph.reader(context, None) == ("ctl1", "")
    assert ceph.pool_name(config, "vms") == "ephemeral"


def test_osd_devices_per_storage_host(load: Callable[[str], Config], catalog: Catalog) -> None:
    disks = (
        "    osd_devices: [/dev/disk/by-id/wwn-0x5000c500a1b2c3d4,"
        " {path: /srv/osd1.img, size: 20G}]\n"
    )
    text = HOSTS.replace(
        "roles: [compute, storage]}", "roles: [compute, storage],\n" + disks + "    }"
    )
    config = load(f"{text}services: [cinder]\n")
    assert config.host("cmp1").osd_devices == (
        {"path": "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"},
        {"path": "/srv/osd1.img", "size": "20G"},
    )
    files = render_files(config, build_plan(config, catalog), catalog, load_defaults())
    hosts = yaml.safe_load(files[HOSTS_FILE])["all"]["hosts"]
    assert hosts["cmp1"]["ceph_osd_devices"] == [
        {"path": "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"},
        {"path": "/srv/osd1.img", "size": "20G"},
    ]
    assert "ceph_osd_devices" not in hosts["ctl1"]


def test_bad_osd_devices(load: Callable[[str], Config]) -> None:
    text = HOSTS.replace(
        "roles: [control, network]}",
        "roles: [control, network], osd_devices: [sdb, /dev/sdc, /dev/sdc,"
        " {path: /srv/x.img, size: lots}]}",
    )
    found = problems(load, f"{text}services: [cinder]\n")
    assert [line.split(";")[0] for line in found] == [
        "hosts[0].osd_devices: only a storage host runs OSDs",
        "hosts[0].osd_devices[0]: needs an absolute path, not 'sdb'",
        "hosts[0].osd_devices[2]: /dev/sdc listed twice",
        "hosts[0].osd_devices[3].size: invalid size 'lots'",
    ]


def test_no_osd_devices_with_an_existing_cluster(load: Callable[[str], Config], site: Path) -> None:
    text = HOSTS.replace(
        "roles: [compute, storage]}", "roles: [compute, storage], osd_devices: [/dev/sdb]}"
    )
    found = problems(load, f"{text}services: [cinder]\n{CEPH}")
    assert [line.split(";")[0] for line in found] == [
        "hosts[1].osd_devices: osdeploy deploys no OSD with ceph:"
    ]
