"""The dashboard answers on its address, logs a user in and serves its assets."""

import json
import textwrap

PORT = 80
ADMIN_PASSWORD = "molecule-admin"

# Run on the host with python3-requests (a dependency of Horizon): the login
# page, a login with its CSRF token, then a page only a session reaches.
LOGIN = textwrap.dedent(
    r"""
    import json, re, sys
    import requests

    base, user, password, page = sys.argv[1:5]
    out = {}
    s = requests.Session()
    r = s.get(base + "auth/login/", timeout=60)
    out["login_status"] = r.status_code
    out["login_title"] = re.search(r"<title>\s*(.*?)\s*</title>", r.text, re.S).group(1)
    form = {
        m.group(1): m.group(2)
        for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', r.text)
    }
    form.update(username=user, password=password)
    r = s.post(base + "auth/login/", data=form, allow_redirects=False, timeout=60)
    out["post_status"] = r.status_code
    out["post_location"] = r.headers.get("Location")
    out["cookies"] = sorted(s.cookies.keys())
    r = s.get(base + page, allow_redirects=False, timeout=60)
    out["page_status"] = r.status_code
    m = re.search(r"<title>\s*(.*?)\s*</title>", r.text, re.S)
    out["page_title"] = m.group(1) if m else None
    assets = re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', r.text)
    out["assets"] = {a: s.get(base.rstrip("/") + a, timeout=60).status_code for a in assets}
    print(json.dumps(out))
    """
)


def _login(host, address, password, page="identity/"):
    host.run("cat > /tmp/molecule-login.py << 'EOF'\n" + LOGIN + "\nEOF")
    cmd = host.run(
        f"python3 /tmp/molecule-login.py http://{address}:{PORT}/ admin {password} {page}"
    )
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout)


def test_login_page(address, curl):
    status, body = curl(f"http://{address}:{PORT}/auth/login/")
    assert status == 200
    assert "<title>Login - OpenStack Dashboard</title>" in body


def test_unknown_host_name_refused(address, curl):
    status, _ = curl("-H 'Host: not-allowed.invalid'", f"http://{address}:{PORT}/auth/login/")
    assert status == 400


def test_login_over_http_with_csrf(host, address):
    seen = _login(host, address, ADMIN_PASSWORD)
    assert seen["login_status"] == 200
    assert seen["login_title"] == "Login - OpenStack Dashboard"
    assert seen["post_status"] == 302, seen
    assert "sessionid" in seen["cookies"]
    assert seen["page_status"] == 200, seen
    assert "OpenStack Dashboard" in seen["page_title"]
    assert seen["page_title"] != "Login - OpenStack Dashboard"
    # The compressed bundles of the offline manifest, and the rest.
    assert any(a.startswith("/static/dashboard/") for a in seen["assets"]), seen["assets"]
    assert {a: s for a, s in seen["assets"].items() if s != 200} == {}


def test_wrong_password_shows_horizons_error(host, address):
    seen = _login(host, address, "not-the-password")
    assert seen["post_status"] == 200
    # No session: the page asks to log in again.
    assert seen["page_status"] == 302


def test_settings_not_world_readable(host):
    for path in (
        "/etc/openstack-dashboard/local_settings.py",
        "/etc/openstack-dashboard/local_settings.d/_9000_osdeploy.py",
        "/etc/openstack-dashboard/local_settings.d/_9001_osdeploy_secret.py",
    ):
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "www-data", 0o640), path


def test_effective_settings(host):
    out = host.check_output(
        "cd /usr/share/openstack-dashboard && runuser -u www-data -- python3 manage.py shell -c "
        "\"from django.conf import settings as s; print(s.CACHES['default']['BACKEND'], "
        's.SESSION_ENGINE, s.WEBROOT, s.OPENSTACK_KEYSTONE_URL)"'
    )
    assert out.split() == [
        "django.core.cache.backends.memcached.PyMemcacheCache",
        "django.contrib.sessions.backends.cache",
        "/",
        "http://192.0.2.10:5000/v3",
    ]


def test_daemon_mode(host):
    # Horizon runs in the mod_wsgi daemon group, not in Apache's children.
    assert host.run("pgrep -f '^\\(wsgi:horizon\\)'").rc == 0
    vhost = host.file("/etc/apache2/sites-enabled/openstack-dashboard.conf").content_string
    assert "WSGIProcessGroup horizon" in vhost


def test_listens_on_bind_address_only(listens_only_on_address, host):
    listens_only_on_address(PORT)
    assert not host.socket("tcp://0.0.0.0:443").is_listening


def test_service_enabled_and_running(enabled_and_running):
    enabled_and_running("apache2")


def test_compressed_scripts_run_on_angularjs_1_8(host):
    # Debian's angular-gettext 2.3.8 calls angular.lowercase (gone since
    # AngularJS 1.7): the role diverts it and writes it back without that
    # call, and the compressed bundles are built from the mended file.
    assert "angular-gettext.js.distrib" in host.check_output("dpkg-divert --list '*angular-gettext.js'")
    mended = host.file("/usr/share/javascript/angular.js/angular-gettext.js").content_string
    assert "angular.lowercase(" not in mended and "toLowerCase()" in mended
    assert (
        "angular.lowercase("
        in host.file("/usr/share/javascript/angular.js/angular-gettext.js.distrib").content_string
    )
    bundles = host.run(
        "grep -l 'angular.lowercase(' /var/lib/openstack-dashboard/static/dashboard/js/*.js"
    )
    assert bundles.rc == 1, bundles.stdout
