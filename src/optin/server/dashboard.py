"""The dashboard: ``GET /dashboard`` (the apps) and ``GET /dashboard/{app}?days=N`` (one app).

Server-rendered HTML with inline SVG (:mod:`optin.analytics.charts`): no script, no CDN, no
font or image from elsewhere, so it works on an air-gapped host; a Content-Security-Policy says
so to the browser too. The figures are :mod:`optin.analytics.queries` over the rollups, computed
on one thread of the dashboard's own (so the event loop never waits for the database) with one
storage connection opened on first use.

Access: with a token configured (``optin serve --dashboard-token`` or ``OPTIN_DASHBOARD_TOKEN``;
``optin serve`` refuses to listen beyond loopback without one), every request needs it, as
``Authorization: Bearer TOKEN`` or once as ``?token=TOKEN``, which sets an HttpOnly, SameSite
cookie holding a keyed hash of the token (never the token itself) and redirects to the same page
without it, so the token does not linger in the address bar or the history.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from html import escape
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from optin.analytics import charts, queries
from optin.server.ingest import Policies
from optin.site import page
from optin.storage import Storage, StorageError, open_storage

__all__ = ["COOKIE", "DEFAULT_DAYS", "MAX_DAYS", "Dashboard"]

COOKIE = "optin_dashboard"
DEFAULT_DAYS = 30
MAX_DAYS = 3660
CHOICES = (7, 30, 90, 365)
HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
T = TypeVar("T")


class Dashboard:
    """The ASGI app mounted at ``/dashboard``; :meth:`close` releases its storage."""

    def __init__(
        self,
        policies: Policies,
        storage_url: str,
        *,
        token: str | None = None,
        opener: Callable[[str], Storage] = open_storage,
    ) -> None:
        self.policies = policies
        self.url = storage_url
        self.token = token or None
        self._cookie = (
            hmac.new(self.token.encode(), b"optin dashboard cookie", hashlib.sha256).hexdigest()
            if self.token
            else ""
        )
        self._opener = opener
        self._storage: Storage | None = None
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="optin-dashboard")
        self.app = Starlette(
            routes=[
                Route("/", self.index, methods=["GET", "HEAD"]),
                Route("/{app}", self.app_page, methods=["GET", "HEAD"]),
            ]
        )

    # --- ASGI and access ----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.token:
            request = Request(scope)
            response = self._check(request)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _check(self, request: Request) -> Response | None:
        """None when the request may see the dashboard; else the response to send instead."""
        assert self.token is not None
        given = request.query_params.get("token")
        if given is not None:
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return _unauthorized("That token is not the dashboard token.")
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            response = RedirectResponse(target, status_code=303, headers=HEADERS)
            response.set_cookie(
                COOKIE,
                self._cookie,
                httponly=True,
                samesite="strict",
                path=request.scope.get("root_path") or "/dashboard",
                secure=request.url.scheme == "https",
            )
            return response
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), self.token.encode()
        ):
            return None
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie.encode(), self._cookie.encode()):
            return None
        return _unauthorized(
            "The dashboard needs its token: open this page once with ?token=TOKEN "
            "(the token given to optin serve), or send Authorization: Bearer TOKEN."
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            if self._storage is not None:
                self._storage.close()
                self._storage = None

    async def _read(self, func: Callable[[Storage], T]) -> T:
        def run() -> T:
            with self._lock:
                if self._storage is None:
                    self._storage = self._opener(self.url)
                storage = self._storage
            return func(storage)

        return await asyncio.get_running_loop().run_in_executor(self._pool, run)

    # --- pages --------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        root = request.scope.get("root_path", "")
        try:
            stored = await self._read(lambda db: db.apps())
        except StorageError as exc:
            return _unavailable(exc)
        apps = sorted(set(stored) | set(self.policies.by_app))
        items = "".join(
            f'<li><a href="{escape(root)}/{escape(a)}">{escape(a)}</a>'
            f"{'' if a in stored else ' <span class=note>(no data yet)</span>'}</li>"
            for a in apps
        )
        body = f"<h1>optin dashboard</h1><ul>{items or '<li>no app</li>'}</ul>"
        return HTMLResponse(page("optin dashboard", body), headers=HEADERS)

    async def app_page(self, request: Request) -> Response:
        app = request.path_params["app"]
        policy = self.policies.latest(app)
        try:
            days = int(request.query_params.get("days", DEFAULT_DAYS))
        except ValueError:
            days = DEFAULT_DAYS
        days = min(max(days, 1), MAX_DAYS)
        try:
            known = await self._read(lambda db: db.apps())
            if policy is None and app not in known:
                return HTMLResponse(
                    page(
                        "not found",
                        "<h1>No such app</h1><p>This collector has no data and "
                        "no policy for that app.</p>",
                    ),
                    status_code=404,
                    headers=HEADERS,
                )
            figures = await self._read(lambda db: _figures(db, app, days, policy))
        except StorageError as exc:
            return _unavailable(exc)
        root = request.scope.get("root_path", "")
        html = render_app(app, days, figures, root)
        return HTMLResponse(page(f"{app}: optin dashboard", html), headers=HEADERS)


def _unauthorized(message: str) -> Response:
    body = page("token needed", f"<h1>Token needed</h1><p>{escape(message)}</p>")
    return HTMLResponse(body, 401, {**HEADERS, "www-authenticate": 'Bearer realm="dashboard"'})


def _unavailable(exc: Exception) -> Response:
    body = page("unavailable", f"<h1>Storage unavailable</h1><p>{escape(str(exc))}</p>")
    return HTMLResponse(body, 503, {**HEADERS, "retry-after": "5"})


def _figures(db: Storage, app: str, days: int, policy: Any) -> dict[str, Any] | None:
    """Every figure of the page, from :mod:`optin.analytics.queries`."""
    w = queries.window(db, app, days)
    if w is None:
        return None
    used, unused = queries.options(db, app, w, policy)
    basis, shares = queries.platforms(db, app, w)
    return {
        "window": w,
        "activity": queries.activity(db, app, w),
        "commands": queries.commands(db, app, w),
        "errors": queries.errors(db, app, w),
        "releases": queries.releases(db, app, w),
        "options": used,
        "unused": unused,
        "basis": basis,
        "platforms": shares,
        "dimensions": queries.dimensions(db, app, w),
        "events": queries.events(db, app, w),
        "spikes": queries.spikes(db, app, w),
    }


def render_app(app: str, days: int, figures: dict[str, Any] | None, root: str = "") -> str:
    """The body of one app's page."""
    links = " ".join(
        f'<a href="{escape(root)}/{escape(app)}?days={n}"'
        f"{' aria-current=page' if n == days else ''}>{n} days</a>"
        for n in CHOICES
    )
    head = f'<p><a href="{escape(root)}/">all apps</a></p><h1>{escape(app)}</h1><nav>{links}</nav>'
    if figures is None:
        return head + "<p>No data yet for this app.</p>"
    w: queries.Window = figures["window"]
    act: queries.Activity = figures["activity"]
    cmds: list[queries.CommandStats] = figures["commands"]
    spikes: list[queries.Spike] = figures["spikes"]
    spiking = {s.command for s in spikes}
    dates = [queries.iso(d) for d in act.dau]
    parts = [
        head,
        f'<p class="note">{escape(queries.iso(w.first))} to {escape(queries.iso(w.last))} '
        f"({w.days} days, UTC; the window ends on the last day with data).</p>",
        "<h2>Active users</h2>",
        f"<p>DAU on the last day: <b>{act.dau_last:,}</b> · mean DAU {act.dau_mean:,.1f} · "
        f"WAU (last 7 days) between <b>{act.wau_low:,}</b> and <b>{act.wau_high:,}</b> · MAU: "
        + (", ".join(f"{escape(m)} <b>{n:,}</b>" for m, n in act.mau.items()) or "none")
        + "</p>",
        charts.line_chart(
            "active",
            "Daily and monthly active installs",
            dates,
            {
                "DAU": list(act.dau.values()),
                "MAU (its month)": [act.mau.get(d[:7]) for d in dates],
            },
        ),
        "<h2>Commands</h2>",
        charts.bar_chart("commands", "Runs per command", [(c.command, c.runs) for c in cmds]),
        "<h2>Failures</h2>",
        '<p class="note">Failure = outcome failure or usage error. Orange: a command with an '
        "error-rate spike in this period (below).</p>",
        charts.bar_chart(
            "failure-rate",
            "Failure rate per command",
            [(c.command, c.failure_rate) for c in cmds],
            fmt=charts.fmt_percent,
            max_value=1.0,
            highlight=sorted(spiking),
        ),
        "<h3>Struggle: failed, then made it work in the same session</h3>",
        charts.bar_chart(
            "struggle",
            "Share of session-days with a failure that then succeeded",
            [(c.command, c.recovered / c.struggled) for c in cmds if c.struggled],
            fmt=charts.fmt_percent,
            max_value=1.0,
            empty="no failures in this period",
        ),
        "<h3>Error-rate spikes (against the previous 14 days)</h3>",
        _spikes(spikes),
        "<h3>Error categories</h3>",
        charts.bar_chart(
            "errors",
            "Failing runs per error category",
            [(f"{err} ({cmd})", n) for err, cmd, n in figures["errors"]],
            empty="no errors in this period",
        ),
        "<h2>Durations</h2>",
        charts.percentile_table(
            "durations",
            "Run time per command",
            [(c.command, (c.p50_ms, c.p95_ms)) for c in cmds],
        ),
        "<h3>Slow commands</h3>",
        charts.bar_chart(
            "slow",
            "Runs over the slow threshold",
            [(c.command, c.slow) for c in sorted(cmds, key=lambda c: -c.slow) if c.slow],
            empty="no slow runs in this period",
        ),
        "<h2>Options</h2>",
        _options(figures["options"], figures["unused"]),
        "<h2>Platforms and versions</h2>",
        f'<p class="note">Counted over {escape(_basis(figures["basis"]))}.</p>',
        _platforms(figures["platforms"]),
        "<h3>Releases</h3>",
        charts.bar_chart(
            "releases",
            "Failure rate per app version",
            [(v, rate) for v, _runs, rate in figures["releases"]],
            fmt=charts.fmt_percent,
            max_value=1.0,
        ),
        _dimensions(figures["dimensions"]),
        _events(figures["events"]),
    ]
    return "".join(parts)


def _basis(basis: str) -> str:
    return "install-days (daily active pings)" if basis == "active:day" else "command runs"


def _spikes(spikes: list[queries.Spike]) -> str:
    if not spikes:
        return '<p class="note" data-chart="spikes">No spike in this period.</p>'
    rows = "".join(
        f"<tr><td>{escape(queries.iso(s.day))}</td><td>{escape(s.command)}</td>"
        f"<td>{s.failures:,} / {s.runs:,}</td><td>{escape(charts.fmt_percent(s.rate))}</td>"
        f"<td>{escape(charts.fmt_percent(s.baseline))}</td><td>{s.z:.1f}</td></tr>"
        for s in spikes[:20]
    )
    return (
        '<table class="data" data-chart="spikes"><thead><tr><th>day</th><th>command</th>'
        "<th>failures / runs</th><th>rate</th><th>baseline</th><th>z</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _options(used: list[queries.OptionStats], unused: list[tuple[str, str]]) -> str:
    bars = charts.bar_chart(
        "options",
        "Share of the command's runs using each option",
        [(f"{o.command} --{o.option}", o.share) for o in used if o.uses]
        + [(f"{c} --{o}", 0.0) for c, o in unused],
        fmt=charts.fmt_percent,
        max_value=1.0,
        highlight=[f"{c} --{o}" for c, o in unused],
    )
    values = [(f"{o.command} --{o.option}={v}", n) for o in used for v, n in o.values.items()]
    nobody = (
        "<p>Options nobody used in this period: "
        + ", ".join(f"<code>{escape(c)} --{escape(o)}</code>" for c, o in unused)
        + "</p>"
        if unused
        else "<p>Every declared option was used in this period.</p>"
    )
    return (
        bars
        + nobody
        + "<h3>Option values</h3>"
        + charts.bar_chart("values", "Runs per option value", values)
    )


def _platforms(shares: dict[str, dict[str, int]]) -> str:
    out = []
    for name, title in (
        ("version", "App versions"),
        ("os", "Operating systems"),
        ("arch", "CPU architectures"),
        ("python", "Python versions"),
        ("ci", "Run in CI"),
        ("interactive", "Run at a terminal"),
    ):
        values = shares.get(name, {})
        out.append(f"<h3>{escape(title)}</h3>")
        out.append(charts.bar_chart(f"platform-{name}", title, list(values.items())))
    return "".join(out)


def _dimensions(dimensions: dict[str, dict[str, int]]) -> str:
    if not dimensions:
        return ""
    out = ["<h2>Custom dimensions</h2>"]
    for dim, values in dimensions.items():
        out.append(f"<h3>{escape(dim)}</h3>")
        out.append(charts.bar_chart(f"dimension-{dim}", dim, list(values.items())))
    return "".join(out)


def _events(events: dict[str, tuple[int, dict[str, dict[str, int]]]]) -> str:
    if not events:
        return ""
    out = [
        "<h2>Custom events</h2>",
        charts.bar_chart("events", "Custom events", [(n, c) for n, (c, _) in events.items()]),
    ]
    for name, (_count, props) in events.items():
        rows = [(f"{p}={v}", n) for p, values in props.items() for v, n in values.items()]
        if rows:
            out.append(f"<h3>{escape(name)}</h3>")
            out.append(charts.bar_chart(f"event-{name}", f"{name} properties", rows))
    return "".join(out)
