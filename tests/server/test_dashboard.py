"""The dashboard: a real ``optin serve`` on loopback with data in it, checked in a real headless
Chromium (no console error, the charts and their labels, no request leaving the collector), its
token, and the rule that ``optin serve`` beyond loopback needs one."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.server.helpers import POLICY, ProcessServer, ThreadServer
from tests.usage_data import APP, fill

from optin.analytics import charts
from optin.server.access import dashboard_token, is_loopback
from optin.server.app import create_app

TOKEN = "test-token-0123456789abcdef"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('dash') / 'optin.db'}"
    fill(url, int(time.time()) // 86400)
    return url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: run `make system-deps`", pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Recorder:
    """Everything a page did: requests, console errors, uncaught exceptions."""

    def __init__(self, page: Any) -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def assert_stayed_on(self, origin: str) -> None:
        assert self.requests
        outside = [u for u in self.requests if not u.startswith((origin + "/", "data:"))]
        assert not outside, outside
        assert not self.errors, self.errors


def _serve(tmp_path: Path, db_url: str, *args: str) -> ProcessServer:
    return ProcessServer(tmp_path, db_url, "--rate-limit", "0", *args)


@pytest.mark.browser
def test_the_dashboard_in_a_real_browser(browser: Any, db_url: str, tmp_path: Path) -> None:
    with _serve(tmp_path, db_url) as server:
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        page = context.new_page()
        seen = Recorder(page)
        page.goto(server.url + "/dashboard")
        assert page.url == server.url + "/dashboard/"
        page.click(f"text={APP}")
        page.click("text=90 days")
        assert page.url == f"{server.url}/dashboard/{APP}?days=90"
        assert page.locator("h1").inner_text() == APP
        charts_shown = {
            page.locator("svg.chart").nth(i).get_attribute("data-chart")
            for i in range(page.locator("svg.chart").count())
        }
        assert {
            "active", "commands", "failure-rate", "struggle", "errors", "slow", "options",
            "values", "platform-version", "platform-os", "releases", "events",
        } <= charts_shown  # fmt: skip
        assert page.locator('svg[data-chart="active"] polyline').count() >= 2
        for label in ("canister.install", "deploy", "start"):
            bars = page.locator(f'svg[data-chart="commands"] g.bar[data-label="{label}"] rect')
            assert bars.count() == 1
            assert float(bars.get_attribute("width") or 0) > 0
        errors = page.locator('svg[data-chart="errors"] g.bar[data-label^="ProviderNotFound ("]')
        assert errors.count() == 3
        durations = page.locator('table[data-chart="durations"] tbody tr')
        assert durations.count() == 3
        assert re.fullmatch(r"\S+\t[\d.]+ m?s\t[\d.]+ m?s", durations.first.inner_text())
        # The simulated population fails half its runs three days ago: a spike.
        assert page.locator('table[data-chart="spikes"] tbody tr').count() >= 1
        # Options nobody used: --background on start.
        assert "start --background" in page.locator("text=Options nobody used").inner_text()
        assert page.locator('svg[data-chart="platform-os"] g.bar[data-label="linux"]').count() == 1
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        seen.assert_stayed_on(server.url)
        context.close()


@pytest.mark.browser
def test_a_configured_token_is_required_in_the_browser(
    browser: Any, db_url: str, tmp_path: Path
) -> None:
    with _serve(tmp_path, db_url, "--dashboard-token", TOKEN) as server:
        context = browser.new_context()
        page = context.new_page()
        seen = Recorder(page)
        response = page.goto(f"{server.url}/dashboard/{APP}")
        assert response is not None and response.status == 401
        assert "Token needed" in page.content()
        assert page.locator("svg.chart").count() == 0
        seen.errors.clear()  # the 401 itself is logged as a failed resource
        response = page.goto(f"{server.url}/dashboard/{APP}?days=7&token={TOKEN}")
        assert response is not None and response.status == 200
        assert page.url == f"{server.url}/dashboard/{APP}?days=7"  # the token left the URL
        assert page.locator("svg.chart").count() > 5
        cookies = context.cookies()
        assert [c["httpOnly"] for c in cookies] == [True]
        assert TOKEN not in cookies[0]["value"]
        assert page.evaluate("document.cookie") == ""
        page.goto(f"{server.url}/dashboard/")
        assert page.locator(f"a:text('{APP}')").count() == 1
        seen.assert_stayed_on(server.url)
        context.close()
        other = browser.new_context()
        response = other.new_page().goto(f"{server.url}/dashboard/{APP}?token=wrong")
        assert response is not None and response.status == 401
        other.close()


# --- without a browser ----------------------------------------------------------------------


@pytest.fixture
def guarded(db_url: str) -> Iterator[str]:
    with ThreadServer(create_app(POLICY, db_url, rate_limit=0, dashboard_token=TOKEN)) as srv:
        yield srv.url


def test_bearer_cookie_and_query_token(guarded: str) -> None:
    with httpx.Client(base_url=guarded, timeout=10) as client:
        assert client.get("/dashboard/").status_code == 401
        assert client.get(f"/dashboard/{APP}").headers["www-authenticate"].startswith("Bearer")
        bad = client.get("/dashboard/", headers={"authorization": "Bearer nope"})
        assert bad.status_code == 401
        good = client.get(f"/dashboard/{APP}", headers={"authorization": f"Bearer {TOKEN}"})
        assert good.status_code == 200 and "<svg" in good.text
        assert "default-src 'none'" in good.headers["content-security-policy"]
        assert good.headers["cache-control"] == "no-store"
        login = client.get(f"/dashboard/{APP}", params={"token": TOKEN, "days": "7"})
        assert login.status_code == 303
        assert login.headers["location"] == f"/dashboard/{APP}?days=7"
        assert "HttpOnly" in login.headers["set-cookie"]
        assert client.get(f"/dashboard/{APP}?days=7").status_code == 200  # the cookie
        client.cookies.clear()
        assert client.get(f"/dashboard/{APP}").status_code == 401
        # The ingest path and health never need the dashboard token.
        assert client.get("/healthz").status_code == 200


def test_pages_and_their_limits(db_url: str) -> None:
    with (
        ThreadServer(create_app(POLICY, db_url, rate_limit=0)) as srv,
        httpx.Client(base_url=srv.url, timeout=10) as client,
    ):
        index = client.get("/dashboard", follow_redirects=True)
        assert index.status_code == 200 and f'href="/dashboard/{APP}"' in index.text
        assert client.get("/dashboard/no-such-app").status_code == 404
        for days in ("0", "-5", "abc", "999999"):
            assert client.get(f"/dashboard/{APP}", params={"days": days}).status_code == 200
        page = client.get(f"/dashboard/{APP}", params={"days": "3"}).text
        assert "(3 days, UTC" in page
        assert "<script" not in page and "http://" not in page.replace(
            'xmlns="http://www.w3.org/2000/svg"', ""
        )


def test_chart_labels_are_escaped() -> None:
    evil = '<script>alert("x")</script>&'
    svg = charts.bar_chart("c", evil, [(evil, 3.0), ("ok", None)])
    svg += charts.line_chart("l", evil, [evil, "b"], {evil: [1.0, None]})
    svg += charts.percentile_table("p", evil, [(evil, (1.0, None))])
    assert "<script" not in svg and "&lt;script&gt;" in svg and '"x"' not in svg


def test_serve_refuses_a_public_host_without_a_token(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1") and not is_loopback("")
    assert dashboard_token("0.0.0.0", None, {})[0] is None
    assert dashboard_token("0.0.0.0", None, {"OPTIN_DASHBOARD_TOKEN": TOKEN}) == (TOKEN, None)
    assert dashboard_token("127.0.0.1", None, {}) == (None, None)
    assert dashboard_token("127.0.0.1", "short", {})[1] is not None
    env = {k: v for k, v in __import__("os").environ.items() if k != "OPTIN_DASHBOARD_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "optin", "serve", "--policies", str(POLICY), "--host", "0.0.0.0",
         "--db", f"sqlite:///{tmp_path / 'x.db'}", "--port", "1"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 1
    assert "needs a token" in done.stderr and "--dashboard-token" in done.stderr
    assert not (tmp_path / "x.db").exists()
