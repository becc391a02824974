"""``optin publish``: the open-data site — charts, CSV and JSON tables, datapackage.json.

What is released, per app and per window (the last 30, 90 and 365 days up to ``today``, and each
calendar quarter from the first one with data), is the count tables of
:mod:`optin.analytics.tables`, read from the daily rollups only, after the noise, suppression and
derivation of :mod:`optin.analytics.release`. The same released numbers feed the CSV, the JSON
and the charts of ``index.html`` (:mod:`optin.site`).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optin import __version__
from optin.analytics.queries import day_of, iso
from optin.analytics.release import DELTA, Noise, Released, durations, release
from optin.analytics.tables import build_tables
from optin.policy import Policy, to_data
from optin.storage import Storage

__all__ = ["Window", "publish", "publish_main", "windows"]

ROLLING = (30, 90, 365)


@dataclass(frozen=True)
class Window:
    name: str  # "last-30-days", "2026-q3"
    title: str
    first: int
    last: int


def windows(today: int, first_data_day: int | None) -> list[Window]:
    """The rolling windows ending ``today`` and the calendar quarters with data, in order."""
    out = [
        Window(f"last-{n}-days", f"last {n} days to {iso(today)}", today - n + 1, today)
        for n in ROLLING
    ]
    if first_data_day is None:
        return out
    date = dt.date.fromisoformat(iso(min(first_data_day, today)))
    year, quarter = date.year, (date.month - 1) // 3
    end = dt.date.fromisoformat(iso(today))
    while (year, quarter) <= (end.year, (end.month - 1) // 3):
        start = dt.date(year, 3 * quarter + 1, 1)
        nxt = dt.date(year + (quarter == 3), 3 * ((quarter + 1) % 4) + 1, 1)
        last = min(day_of(nxt) - 1, today)
        partial = " (to date)" if last < day_of(nxt) - 1 else ""
        out.append(
            Window(f"{year}-q{quarter + 1}", f"{year} Q{quarter + 1}{partial}", day_of(start), last)
        )
        year, quarter = year + (quarter == 3), (quarter + 1) % 4
    return out


# --- files ----------------------------------------------------------------------------------


def _csv(released: Released) -> str:
    buffer = io.StringIO()
    names = [f.name for f in released.table.fields]
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for r in released.rows:
        writer.writerow(["" if r[n] is None else r[n] for n in names])
    return buffer.getvalue()


def _resource_name(*parts: str) -> str:
    return "-".join(parts).lower().replace("_", "-")


def _describe(min_count: int, epsilon: float | None, tables: Sequence[int]) -> str:
    lines = [
        "Usage statistics published by optin from daily rollups (no raw event is read). "
        "Each app has tables for the last 30, 90 and 365 days and for each calendar quarter, "
        "as CSV and as JSON (the same rows; empty CSV cell = JSON null).",
        f"Suppression: any count below {min_count} is left empty, and so is any rate computed "
        "from an empty count; a row whose counts are all empty is left out unless its key "
        "comes from the policy. Suppression applies cell by cell: totals from one table can "
        "sometimes be compared with cells of another, so on its own it is not a formal "
        "privacy guarantee (differential privacy below is).",
    ]
    if epsilon is None:
        lines.append("No differential-privacy noise was added: counts are exact.")
    else:
        per_window = max(tables, default=0)
        lines.append(
            f"Differential privacy: every count table of every window is released with "
            f"epsilon = {epsilon:g} by OpenDP (discrete Laplace noise, scale = sensitivity / "
            "epsilon; app and Python versions with OpenDP's Laplace threshold mechanism, "
            f"delta = {DELTA:g}), before suppression; noisy counts are clamped at 0; rates and "
            "percentiles are computed from the noisy counts. Unit of privacy: one event (one "
            "command run, one custom event, one active ping). A person sends at most one daily "
            "active ping per UTC day and one monthly ping per month, so DAU is protected per "
            "person-day and MAU per person-month; a person who runs commands many times is "
            "protected per run, not as a whole (there is no person id to bound it by). "
            "Sensitivity (the most one event changes a table's counts, L1) is stated per "
            "resource: active_daily 1, active_monthly 1, commands 5 (runs, failures or "
            "interrupted, slow, struggled, recovered), daily_failures 2, duration_histogram 1, "
            "errors 1, options = the most options a command declares, option_values = the most "
            "valued options of a command, dimensions = the number of dimensions, platforms 4, "
            "versions 2 (L0 2, L-infinity 1), events 1, event_properties = the most properties "
            "of an event. An event is counted in several tables and in overlapping windows: by "
            f"sequential composition the total for one event is at most {epsilon:g} times the "
            f"number of tables it appears in ({per_window} per window at most) times the "
            "number of windows that contain its day.",
        )
    return "\n\n".join(lines)


def publish(
    storage: Storage,
    policies: Mapping[str, Policy],
    out_dir: str | Path,
    min_count: int = 10,
    epsilon: float | None = None,
    today: int | None = None,
) -> Path:
    """Write the site into ``out_dir`` (created; its previous files of ours are replaced).

    ``today`` is a UTC day number (default: the current day). Returns the path of
    ``datapackage.json``.
    """
    from optin.notice import render as render_notice
    from optin.site import render_index

    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")
    noise = Noise(epsilon) if epsilon is not None else None
    if today is None:
        today = day_of(dt.datetime.now(dt.UTC).date())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    resources: list[dict[str, Any]] = []
    site: dict[str, dict[str, list[Released]]] = {}
    table_counts: list[int] = []
    known = set(storage.apps())
    for app, policy in sorted(policies.items()):
        app_dir = out / app
        if app_dir.exists():
            shutil.rmtree(app_dir)
        app_dir.mkdir()
        if policy.source and Path(policy.source).is_file():
            shutil.copyfile(policy.source, app_dir / "policy.toml")
            resources.append(_file_resource(app, "policy", "policy.toml", "toml", policy))
        (app_dir / "policy.json").write_text(json.dumps(to_data(policy), indent=2) + "\n")
        resources.append(_file_resource(app, "policy", "policy.json", "json", policy))
        (app_dir / "notice.md").write_text(render_notice(policy), encoding="utf-8")
        resources.append(_file_resource(app, "notice", "notice.md", "markdown", policy))
        first_day = _first_day(storage, app, today) if app in known else None
        site[app] = {}
        for w in windows(today, first_day):
            released: list[Released] = []
            for table in build_tables(storage, policy, w.first, w.last):
                rel = release(table, min_count, noise)
                released.append(rel)
                if table.name == "duration_histogram":
                    released.append(durations(rel, min_count, noise is not None))
            table_counts.append(sum(1 for r in released if r.table.sensitivity))
            site[app][w.name] = released
            (app_dir / w.name).mkdir()
            for rel in released:
                resources += _write_table(out, app, w, rel)
    index = render_index(site, policies, today, min_count, epsilon, __version__)
    (out / "index.html").write_text(index, encoding="utf-8")
    resources.insert(
        0,
        {
            "name": "index",
            "path": "index.html",
            "format": "html",
            "mediatype": "text/html",
            "title": "Charts",
        },
    )
    package = {
        "profile": "tabular-data-package",
        "name": "optin-open-data",
        "title": "Usage statistics: " + ", ".join(sorted(policies)),
        "description": _describe(min_count, epsilon, table_counts),
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "optin": {
            "version": __version__,
            "today": iso(today),
            "min_count": min_count,
            "epsilon": epsilon,
            "delta_open_keys": DELTA if epsilon is not None else None,
        },
        "resources": resources,
    }
    path = out / "datapackage.json"
    path.write_text(json.dumps(package, indent=2) + "\n", encoding="utf-8")
    return path


def _first_day(storage: Storage, app: str, today: int) -> int | None:
    days = [
        r[0]
        for metric in ("active", "outcome", "event")
        for r in storage.rollup(app, metric, 0, today, by_day=True)
        if r[0] is not None
    ]
    return min(days, default=None)


def _file_resource(app: str, kind: str, name: str, fmt: str, policy: Policy) -> dict[str, Any]:
    media = {"toml": "application/toml", "json": "application/json", "markdown": "text/markdown"}
    return {
        "name": _resource_name(app, name.replace(".", "-")),
        "path": f"{app}/{name}",
        "format": fmt,
        "mediatype": media[fmt],
        "title": f"{app}: {'collection policy' if kind == 'policy' else 'public notice'} "
        f"(policy version {policy.version})",
    }


def _write_table(out: Path, app: str, w: Window, rel: Released) -> list[dict[str, Any]]:
    table = rel.table
    base = f"{app}/{w.name}/{table.name}"
    (out / f"{base}.csv").write_text(_csv(rel), encoding="utf-8")
    (out / f"{base}.json").write_text(json.dumps(rel.rows, indent=1) + "\n", encoding="utf-8")
    schema = {
        "fields": [
            {"name": f.name, "type": f.type, "description": f.description} for f in table.fields
        ],
        "missingValues": [""],
    }
    meta = {
        "app": app,
        "window": w.name,
        "first_day": iso(w.first),
        "last_day": iso(w.last),
        "sensitivity": table.sensitivity or None,
        "mechanism": rel.mechanism,
    }
    common = {"title": f"{app}: {table.title}, {w.title}", "description": table.description}
    return [
        {
            "name": _resource_name(app, w.name, table.name, fmt),
            "path": f"{base}.{fmt}",
            "profile": "tabular-data-resource",
            "format": fmt,
            "mediatype": media,
            "encoding": "utf-8",
            **common,
            "schema": schema,
            "optin": meta,
        }
        for fmt, media in (("csv", "text/csv"), ("json", "application/json"))
    ]


def publish_main(args: argparse.Namespace) -> int:
    """``optin publish --db URL --policies PATH --out DIR [--min-count N] [--epsilon E]``."""
    from optin.storage import StorageError, load_policies, open_storage

    policies = load_policies(args.policies)
    if args.min_count < 1:
        print("optin publish: --min-count must be at least 1", file=sys.stderr)
        return 1
    if args.epsilon is not None and not (args.epsilon > 0 and math.isfinite(args.epsilon)):
        print("optin publish: --epsilon must be a positive number", file=sys.stderr)
        return 1
    try:
        with open_storage(args.db) as storage:
            path = publish(storage, policies, args.out, args.min_count, args.epsilon)
    except StorageError as exc:
        print(f"optin publish: {exc}", file=sys.stderr)
        return 1
    print(f"optin publish: wrote {path.parent}/index.html and {path}")
    return 0
