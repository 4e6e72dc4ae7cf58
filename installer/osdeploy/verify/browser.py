"""A real browser for the dashboard's checks: headless Chromium driven by Selenium.

Debian's ``chromium`` and ``chromium-driver`` on the machine that runs
verify (scripts/host-deps installs them); Selenium from PyPI is told where
both are, so it never looks for or downloads a browser. Every page load can
be judged by what the browser itself recorded: its console errors and the
HTTP status of every response from the dashboard's own origin
(`page_problems`). Screenshots are numbered by step.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from osdeploy.verify.core import CheckFailed

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Seconds a page or an element may take to appear.
PAGE_TIMEOUT = 60
WINDOW = "1440,1000"


# -- pure helpers --------------------------------------------------------------


def same_origin(url: str, origin: str) -> bool:
    """True when ``url`` is served by ``origin`` (scheme://host[:port]; a
    default port or none are the same)."""

    def key(text: str) -> tuple[str, str | None, int | None]:
        parts = urllib.parse.urlsplit(text)
        default = {"http": 80, "https": 443}.get(parts.scheme)
        return parts.scheme, parts.hostname, parts.port or default

    return key(url) == key(origin)


def failed_responses(performance: Iterable[Mapping[str, Any]], origin: str) -> list[str]:
    """``"<status> <url>"`` of every response of ``origin`` with status >= 400, and
    ``"failed <url>: <error>"`` of every request of it that got no answer, from
    Chromium's performance log entries (DevTools Network events as JSON)."""
    urls: dict[str, str] = {}
    found: list[str] = []
    for entry in performance:
        try:
            message = json.loads(entry["message"])["message"]
        except (KeyError, TypeError, ValueError):
            continue
        method, params = message.get("method"), message.get("params") or {}
        if method == "Network.requestWillBeSent":
            urls[params.get("requestId", "")] = (params.get("request") or {}).get("url", "")
        elif method == "Network.responseReceived":
            response = params.get("response") or {}
            url, status = response.get("url", ""), int(response.get("status") or 0)
            if status >= 400 and same_origin(url, origin):
                found.append(f"{status} {url}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            url = urls.get(params.get("requestId", ""), "")
            if same_origin(url, origin):
                found.append(f"failed {url}: {params.get('errorText', '?')}")
    return found


def console_errors(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """The messages of the browser console's errors (level SEVERE)."""
    return [str(e.get("message", ""))[:300] for e in entries if e.get("level") == "SEVERE"]


# -- the browser ---------------------------------------------------------------


class Browser:
    """One headless Chromium at a site (``base``: its URL, to which `open`'s
    paths are relative); ``shots`` is where its numbered screenshots go."""

    def __init__(self, base: str, shots: Path) -> None:
        for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
            if not Path(path).exists():
                raise CheckFailed(
                    f"no {path} on this machine — install Debian's {package} "
                    "(`scripts/host-deps` does) to run the dashboard's browser checks"
                )
        from selenium import webdriver  # slow import: only when a check needs it
        from selenium.webdriver.chrome.service import Service

        self.base = base.rstrip("/") + "/"
        parts = urllib.parse.urlsplit(base)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.shots = shots
        self.step = 0
        self._profile = tempfile.mkdtemp(prefix="osdeploy-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in (
            "--headless=new",
            "--no-sandbox",  # verify runs as root
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            # Nothing but the dashboard: no update checks, sync, metrics or
            # QUIC probes to addresses outside the cloud under test.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-domain-reliability",
            "--disable-client-side-phishing-detection",
            "--no-default-browser-check",
            "--lang=en-US",
            f"--window-size={WINDOW}",
            f"--user-data-dir={self._profile}",
        ):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        try:
            self.driver = webdriver.Chrome(
                options=options, service=Service(executable_path=CHROMEDRIVER)
            )
        except Exception:
            shutil.rmtree(self._profile, ignore_errors=True)
            raise
        self.driver.set_page_load_timeout(PAGE_TIMEOUT)

    def open(self, path: str) -> None:
        """Load ``path`` (relative to the base URL) and wait for the page."""
        self.driver.get(self.base + path.lstrip("/"))

    def wait(self, condition: Any, what: str, timeout: float = PAGE_TIMEOUT) -> Any:
        """Wait until ``condition(driver)`` is true; else CheckFailed naming ``what``."""
        from selenium.common import exceptions
        from selenium.webdriver.support.ui import WebDriverWait

        # Angular re-renders its tables and dialogs: an element found a
        # moment ago may be gone or covered; the next poll looks again.
        passing = (
            exceptions.NoSuchElementException,
            exceptions.StaleElementReferenceException,
            exceptions.ElementClickInterceptedException,
            exceptions.ElementNotInteractableException,
        )
        try:
            return WebDriverWait(
                self.driver, timeout, poll_frequency=0.5, ignored_exceptions=passing
            ).until(condition)
        except exceptions.TimeoutException:
            shot = self.screenshot("timeout")
            raise CheckFailed(
                f"{what}: not seen within {timeout:.0f} s on {self.driver.current_url} "
                f"(title {self.driver.title!r}; screenshot {shot})"
            ) from None

    def click(self, find: Any, what: str) -> None:
        """Click the first element ``find(driver)`` returns, once there is one
        that takes the click."""

        def clicked(driver: Any) -> bool:
            found = find(driver)
            if not found:
                return False
            (found[0] if isinstance(found, list) else found).click()
            return True

        self.wait(clicked, what)

    def screenshot(self, name: str) -> Path:
        self.step += 1
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{self.step:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def problems(self) -> list[str]:
        """What went wrong in the browser since the last call: failed responses
        of the dashboard's own origin, then console errors."""
        performance = self.driver.get_log("performance")  # type: ignore[no-untyped-call]
        console = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        return failed_responses(performance, self.origin) + [
            f"console: {m}" for m in console_errors(console)
        ]

    def clean(self, page: str) -> None:
        """CheckFailed when the page (since the last call) loaded anything with
        status >= 400 from the dashboard or logged a JavaScript error."""
        found = self.problems()
        if found:
            raise CheckFailed(f"{page}: {len(found)} problem(s) in the browser: {found[:3]}")

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self._profile, ignore_errors=True)
