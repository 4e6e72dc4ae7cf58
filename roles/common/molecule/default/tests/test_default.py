"""Checks of the common role on a converged host."""

import pytest


def test_hosts_file_lists_the_inventory_host(host, address):
    hosts = host.file("/etc/hosts").content_string
    assert f"{address} osd-molecule-common\n" in hosts
    assert "# BEGIN osdeploy hosts" in hosts


def test_apt_sources(host):
    sources = host.file("/etc/apt/sources.list.d/debian.sources")
    assert sources.mode == 0o644
    assert "Suites: trixie trixie-updates" in sources.content_string
    assert "URIs: http://deb.debian.org/debian-security" in sources.content_string
    assert "Suites: trixie-security" in sources.content_string
    assert not host.file("/etc/apt/sources.list").exists
    assert not host.file("/etc/apt/apt.conf.d/01osdeploy-proxy").exists
    # The sources really work: the security suite's index was fetched.
    policy = host.check_output("apt-cache policy")
    assert "trixie-security/main" in policy
    assert "trixie-updates/main" in policy


@pytest.mark.parametrize("name", ["ca-certificates", "chrony", "curl", "gnupg", "python3-apt"])
def test_base_packages(host, name):
    assert host.package(name).is_installed


def test_policy_rc_d_removed_after_install(host):
    # Also the one prepare.yml left behind, as a killed run would.
    assert not host.file("/usr/sbin/policy-rc.d").exists


def test_interrupted_transaction_finished(host):
    # prepare.yml left osdeploy-unfinished unpacked, as a deploy killed
    # mid-install leaves its packages: the converge configured it.
    status = host.check_output("dpkg-query -W -f='${db:Status-Status}' osdeploy-unfinished")
    assert status == "installed"


def test_polkit_answers_on_the_system_bus(host):
    # polkitd came in the held-back transaction: dbus must have reloaded
    # after its postinst created the polkitd user, or the bus refuses it
    # the name and every libvirt client (nova-compute) times out.
    call = host.run(
        "timeout 60 busctl --system call org.freedesktop.PolicyKit1"
        " /org/freedesktop/PolicyKit1/Authority org.freedesktop.DBus.Properties"
        " Get ss org.freedesktop.PolicyKit1.Authority BackendName"
    )
    assert call.rc == 0, call.stderr
    assert call.stdout.startswith("v s "), call.stdout


def test_chrony_runs_without_clock_control(host):
    service = host.service("chrony")
    assert service.is_running
    assert service.is_enabled
    assert 'DAEMON_OPTS="-F 1 -x"' in host.file("/etc/default/chrony").content_string
    assert "-x" in host.check_output("ps -o args= -C chronyd")
    sources = host.check_output("chronyc -n sourcestats 2>/dev/null || chronyc -n sources")
    assert sources
    conf = host.file("/etc/chrony/chrony.conf").content_string
    assert "pool 2.debian.pool.ntp.org iburst" in conf
    assert "server ntp.example.invalid iburst" in conf
    assert "makestep" not in conf


def test_apt_index_refresh_is_stamped(host):
    # cache_valid_time reads this stamp; without it every run refreshes again
    # and check mode reports a change.
    stamp = host.file("/var/lib/apt/periodic/update-success-stamp")
    assert stamp.exists
    before = int(host.check_output("date +%s"))
    host.run_test("apt-get update -qq")
    assert stamp.mtime.timestamp() >= before


@pytest.mark.parametrize("name", ["memcached", "keystone"])
def test_service_role_packages_installed_up_front(host, name):
    # common_service_roles (molecule.yml): installed by common, in one
    # transaction, with the service held back until its role configures it.
    assert host.package(name).is_installed
    assert not host.service(name).is_running


def test_base_and_service_packages_go_in_one_transaction(host):
    # A host new to its service roles pays for one apt transaction, not two:
    # the install that brought keystone brought the base packages too.
    history = host.file("/var/log/apt/history.log").content_string
    installs = [entry for entry in history.split("\n\n") if "\nInstall: " in entry]
    with_keystone = [entry for entry in installs if "keystone:" in entry]
    assert len(with_keystone) == 1, installs
    assert "polkitd:" in with_keystone[0] and "chrony:" in with_keystone[0]


def test_service_role_debconf_answered_before_the_install(host):
    # keystone's questions were preseeded by its install step in collect
    # mode, so the package set up no database of its own.
    selections = host.check_output("debconf-show keystone")
    assert "keystone/configure_db: false" in selections
