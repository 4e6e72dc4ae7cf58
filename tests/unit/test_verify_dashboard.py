import json

from osdeploy.verify.browser import console_errors, failed_responses, same_origin
from osdeploy.verify.dashboard import instances_used, page_title, static_assets

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


def test_instances_used_from_the_overview_text() -> None:
    text = "Limit Summary\nInstances\nUsed 2 of 10\nVCPUs\nUsed 2 of 20"
    assert instances_used(text) == (2, 10)
    assert instances_used("Limit Summary\nVCPUs\nUsed 2 of 20") is None


def _event(method: str, **params: object) -> dict[str, str]:
    """One entry of Chromium's performance log."""
    return {"message": json.dumps({"message": {"method": method, "params": params}})}


def _response(url: str, status: int) -> dict[str, str]:
    return _event("Network.responseReceived", response={"url": url, "status": status})


ORIGIN = "http://10.89.0.11:80"


def test_failed_responses_of_the_dashboards_own_origin() -> None:
    log = [
        _response(f"{ORIGIN}/project/", 200),
        _response(f"{ORIGIN}/static/a.js", 404),
        _response("http://elsewhere/x.js", 500),
        _event("Network.requestWillBeSent", requestId="7", request={"url": f"{ORIGIN}/api/x"}),
        _event("Network.loadingFailed", requestId="7", errorText="net::ERR_EMPTY_RESPONSE"),
        _event("Network.requestWillBeSent", requestId="8", request={"url": f"{ORIGIN}/api/y"}),
        _event("Network.loadingFailed", requestId="8", errorText="net::ERR_ABORTED", canceled=True),
        {"message": "not json"},
    ]
    assert failed_responses(log, ORIGIN) == [
        f"404 {ORIGIN}/static/a.js",
        f"failed {ORIGIN}/api/x: net::ERR_EMPTY_RESPONSE",
    ]


def test_same_origin_needs_scheme_host_and_port() -> None:
    assert same_origin(f"{ORIGIN}/static/x.css", ORIGIN)
    assert same_origin("http://10.89.0.11/static/x.css", ORIGIN)
    assert not same_origin("http://10.89.0.11:8080/x", ORIGIN)
    assert not same_origin("https://10.89.0.11:80/x", ORIGIN)


def test_console_errors_are_the_severe_entries() -> None:
    entries = [
        {"level": "INFO", "message": "hello"},
        {"level": "SEVERE", "message": "Uncaught TypeError: x is undefined"},
        {"level": "WARNING", "message": "deprecated"},
    ]
    assert console_errors(entries) == ["Uncaught TypeError: x is undefined"]
