from osdeploy.verify.dashboard import page_title, static_assets

PAGE = b"""<html><head>
<title>
  Login - OpenStack Dashboard</title>
<link rel="stylesheet" href="/static/dashboard/css/output.361cca58bb99.css" type="text/css">
<link rel="shortcut icon" href="/static/dashboard/img/favicon.ico"/>
<script src="/static/dashboard/js/output.f43b26f96f67.js"></script>
<script src="/static/dashboard/js/output.f43b26f96f67.js"></script>
<script src="https://example.invalid/x.js"></script>
</head></html>"""


def test_page_title() -> None:
    assert page_title(PAGE) == "Login - OpenStack Dashboard"
    assert page_title(b"<html></html>") is None


def test_static_assets_css_and_js_once_each() -> None:
    assert static_assets(PAGE) == [
        "/static/dashboard/css/output.361cca58bb99.css",
        "/static/dashboard/js/output.f43b26f96f67.js",
    ]


def test_static_assets_under_a_webroot() -> None:
    assert static_assets(b'<script src="/horizon/static/a.js"></script>') == [
        "/horizon/static/a.js"
    ]
