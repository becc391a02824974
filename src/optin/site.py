"""HTML for the published site's index page, and the page shell the dashboard shares.

Self-contained pages: inline CSS, inline SVG from :mod:`optin.analytics.charts`, no script, no
font, no image fetched from anywhere, so the page works offline and from ``file://``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from optin.analytics import charts
from optin.analytics.queries import iso
from optin.policy import Policy

if TYPE_CHECKING:
    from optin.analytics.release import Released

__all__ = ["CSS", "page", "render_index"]

CSS = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1000px;padding:1rem 1.5rem;
color:#222;background:#fff;line-height:1.4}
h1{font-size:1.6rem}h2{font-size:1.3rem;margin-top:2.5rem;border-bottom:1px solid #ccc}
h3{font-size:1.05rem;margin:1.5rem 0 .3rem}
.note{color:#555;font-size:.9rem}
table.chart,table.data{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
table.chart th,table.chart td,table.data th,table.data td{border:1px solid #ddd;padding:.2rem .6rem;
text-align:right}
table.chart th[scope=row],table.data td:first-child{text-align:left}
caption{text-align:left;font-weight:600;padding:.2rem 0}
svg.chart{max-width:100%;height:auto;display:block}
nav a{margin-right:.8rem}
"""


def page(title: str, body: str, *, head: str = "") -> str:
    """A whole HTML document with the shared style."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(title)}</title><style>{CSS}</style>{head}</head>"
        f"<body>{body}</body></html>\n"
    )


def _rows(released: Sequence[Released], name: str) -> list[dict[str, Any]]:
    for rel in released:
        if rel.table.name == name:
            return rel.rows
    return []


def _charts(app: str, released: Sequence[Released]) -> str:
    daily = _rows(released, "active_daily")
    monthly = {r["month"]: r["mau"] for r in _rows(released, "active_monthly")}
    dates = [r["date"] for r in daily]
    line = charts.line_chart(
        f"{app}-active",
        "Daily and monthly active installs",
        dates,
        {
            "DAU": [r["dau"] for r in daily],
            "MAU (its month)": [monthly.get(d[:7]) for d in dates],
        },
    )
    commands = sorted(
        (r for r in _rows(released, "commands") if r["runs"] is not None),
        key=lambda r: (-r["runs"], r["command"]),
    )
    failing = _rows(released, "daily_failures")
    parts = [
        "<h3>Active installs</h3>",
        line,
        "<h3>Command runs</h3>",
        charts.bar_chart(
            f"{app}-commands",
            "Command runs",
            [(r["command"], r["runs"]) for r in commands],
        ),
        "<h3>Failure rate</h3>",
        charts.bar_chart(
            f"{app}-failure-rate",
            "Failure rate per command",
            [(r["command"], r["failure_rate"]) for r in commands],
            fmt=charts.fmt_percent,
            max_value=1.0,
        ),
        "<h3>Failure rate per day (spikes)</h3>",
        charts.line_chart(
            f"{app}-daily-failure-rate",
            "Failure rate per day, all commands",
            [r["date"] for r in failing],
            {"failure rate": [r["failure_rate"] for r in failing]},
            fmt=charts.fmt_percent,
        ),
        "<h3>Struggle</h3>",
        charts.bar_chart(
            f"{app}-struggle",
            "Session-days with a failure that then succeeded",
            [(r["command"], r["recovery_rate"]) for r in commands],
            fmt=charts.fmt_percent,
            max_value=1.0,
        ),
        "<h3>Durations</h3>",
        charts.percentile_table(
            f"{app}-durations",
            "Run time per command",
            [(r["command"], (r["p50_ms"], r["p95_ms"])) for r in _rows(released, "durations")],
        ),
        "<h3>Error categories</h3>",
        charts.bar_chart(
            f"{app}-errors",
            "Failing runs per error category",
            _sum_by(_rows(released, "errors"), "error", "runs"),
        ),
        "<h3>Options</h3>",
        charts.bar_chart(
            f"{app}-options",
            "Runs using each option",
            [(f"{r['command']} --{r['option']}", r["uses"]) for r in _rows(released, "options")],
        ),
        "<h3>Platforms</h3>",
        charts.bar_chart(
            f"{app}-platforms",
            "Command runs per platform",
            [
                (f"{r['attribute']}: {r['value']}", r["runs"])
                for r in _rows(released, "platforms")
                if r["runs"] is not None
            ],
        ),
        "<h3>Versions</h3>",
        charts.bar_chart(
            f"{app}-versions",
            "Command runs per version",
            [
                (f"{r['attribute']}: {r['value']}", r["runs"])
                for r in _rows(released, "versions")
                if r["runs"] is not None
            ],
        ),
    ]
    return "".join(parts)


def _sum_by(rows: Sequence[Mapping[str, Any]], key: str, value: str) -> list[tuple[str, float]]:
    totals: dict[str, int] = {}
    for r in rows:
        if r[value] is not None:
            totals[r[key]] = totals.get(r[key], 0) + r[value]
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))


def render_index(
    site: Mapping[str, Mapping[str, Sequence[Released]]],
    policies: Mapping[str, Policy],
    today: int,
    min_count: int,
    epsilon: float | None,
    version: str,
) -> str:
    """The index page: per app, charts of the last 90 days and links to every table."""
    privacy = f"Counts below {min_count} are not shown." + (
        f" Differential-privacy noise with ε = {epsilon:g} was added to every count."
        if epsilon is not None
        else ""
    )
    body = [
        "<h1>Usage statistics</h1>",
        f'<p class="note">Published {escape(iso(today))} by optin {escape(version)}. '
        f"{escape(privacy)} Every table is described in "
        '<a href="datapackage.json">datapackage.json</a>.</p>',
        "<nav>"
        + "".join(f'<a href="#{escape(app)}">{escape(app)}</a>' for app in sorted(site))
        + "</nav>",
    ]
    for app, by_window in sorted(site.items()):
        policy = policies[app]
        body.append(f'<section id="{escape(app)}"><h2>{escape(policy.name)}</h2>')
        body.append(
            f'<p>{escape(policy.purpose)} <a href="{escape(app)}/notice.md">What is collected'
            f'</a> · <a href="{escape(app)}/policy.toml">policy</a> (version {policy.version})</p>'
        )
        main = by_window.get("last-90-days") or next(iter(by_window.values()), [])
        body.append('<p class="note">Charts: the last 90 days.</p>')
        body.append(_charts(app, main))
        body.append('<h3>Data</h3><table class="data"><thead><tr><th>table</th>')
        names = [w for w in by_window]
        body.append("".join(f"<th>{escape(w)}</th>" for w in names) + "</tr></thead><tbody>")
        tables = [rel.table for rel in main]
        for table in tables:
            cells = "".join(
                f'<td><a href="{escape(app)}/{escape(w)}/{escape(table.name)}.csv">csv</a> '
                f'<a href="{escape(app)}/{escape(w)}/{escape(table.name)}.json">json</a></td>'
                for w in names
            )
            body.append(f'<tr><td title="{escape(table.description)}">{escape(table.title)}</td>')
            body.append(cells + "</tr>")
        body.append("</tbody></table></section>")
    return page("Usage statistics", "".join(body))
