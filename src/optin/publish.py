"""``optin publish``: the open-data site — charts, CSV and JSON tables, datapackage.json.

What is released, per app and per window (the last 30, 90 and 365 days up to ``today``, and each
calendar quarter from the first one with data), is the count tables of
:mod:`optin.analytics.tables`, read from the daily rollups only. Each table goes through:

1. optional noise (``epsilon``): OpenDP's Laplace mechanism (``make_laplace``, which samples the
   discrete Laplace distribution for integer counts) over the whole vector of the table's count
   cells, with ``scale = sensitivity / epsilon``; OpenDP's privacy map is asked to confirm the
   result is ``epsilon``-DP for that L1 sensitivity. Tables whose keys are not a closed list from
   the policy (app and Python versions) use ``make_laplace_threshold`` instead, with the
   smallest threshold >= ``min_count`` for which OpenDP's map gives delta <= :data:`DELTA`.
   Noisy counts are clamped at 0;
2. suppression: any count below ``min_count`` becomes empty (``""`` in CSV, ``null`` in JSON),
   and so does any rate whose numerator or denominator is empty; a row whose counts are all
   empty is left out unless its key comes from the policy (options nobody uses stay listed);
3. derivation: rates and percentiles are computed from the released (noisy) counts, so they
   are post-processing and cost no privacy.

The same released numbers feed the CSV, the JSON and the charts of ``index.html``.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optin import __version__
from optin.analytics.queries import day_of, iso, percentile
from optin.analytics.tables import Field, Table, build_tables
from optin.policy import Policy, to_data
from optin.storage import Storage

__all__ = ["DELTA", "Noise", "Window", "publish", "publish_main", "release", "windows"]

#: The delta of the thresholding mechanism used for open-keyed tables.
DELTA = 1e-6
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


class Noise:
    """Differential-privacy noise from OpenDP, for one ``epsilon`` per released table."""

    def __init__(self, epsilon: float) -> None:
        if not (epsilon > 0 and math.isfinite(epsilon)):
            raise ValueError(f"epsilon must be a positive number, got {epsilon!r}")
        import opendp.prelude as dp

        dp.enable_features("contrib")
        self.dp = dp
        self.epsilon = epsilon

    def vector(self, counts: Sequence[int], sensitivity: int) -> list[int]:
        """The Laplace mechanism over a vector with L1 ``sensitivity``; clamped at 0."""
        if not counts:
            return []
        dp = self.dp
        space = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
        measurement = dp.m.make_laplace(*space, scale=sensitivity / self.epsilon)
        assert measurement.map(sensitivity) <= self.epsilon * (1 + 1e-9)
        return [max(0, int(v)) for v in measurement(list(counts))]

    def threshold(
        self, counts: Mapping[str, int], cells: int, sensitivity: int, min_count: int
    ) -> tuple[dict[str, int], int]:
        """The Laplace threshold mechanism: noisy counts of the keys that pass, and the threshold.

        ``cells`` is how many keys one event can touch (L0), ``sensitivity`` the L1 bound; a
        single key changes by at most 1 (L-infinity).
        """
        dp = self.dp
        space = (
            dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=int)),
            dp.l01inf_distance(dp.absolute_distance(T=int)),
        )
        scale = sensitivity / self.epsilon
        threshold = max(1, min_count)
        while True:
            measurement = dp.m.make_laplace_threshold(*space, scale=scale, threshold=threshold)
            eps, delta = measurement.map((cells, sensitivity, 1))
            if delta <= DELTA:
                break
            threshold = math.ceil(threshold * 1.25) + 1
        assert eps <= self.epsilon * (1 + 1e-9)
        kept = {k: v for k, v in counts.items() if v > 0}
        released = measurement(kept) if kept else {}
        return {k: max(0, int(v)) for k, v in released.items()}, threshold


@dataclass
class Released:
    """A table as published: counts noised and suppressed, rates and percentiles derived."""

    table: Table
    rows: list[dict[str, Any]]
    mechanism: str
    #: The counts after noise, before suppression (what percentiles are read from).
    noisy: list[dict[str, Any]] = field(default_factory=list)


def _key_fields(table: Table) -> list[str]:
    return [f.name for f in table.fields if not f.count and f.rate is None]


def release(table: Table, min_count: int, noise: Noise | None) -> Released:
    """Noise, clamp, suppress and derive one table (see the module docstring)."""
    counts = table.count_fields
    rows = [dict(r) for r in table.rows]
    mechanism = "none"
    if noise is not None and table.open_keys:
        keys = _key_fields(table)
        cells = {
            "|".join(str(r[k]) for k in keys) + "|" + c: int(r[c]) for r in rows for c in counts
        }
        # Each cell moves by at most 1 (L-infinity), so at most ``sensitivity`` cells move (L0).
        out, threshold = noise.threshold(cells, table.sensitivity, table.sensitivity, min_count)
        for r in rows:
            base = "|".join(str(r[k]) for k in keys) + "|"
            for c in counts:
                r[c] = out.get(base + c)
        mechanism = (
            f"OpenDP make_laplace_threshold, epsilon {noise.epsilon:g}, delta {DELTA:g}, "
            f"threshold {threshold}, L1 sensitivity {table.sensitivity}"
        )
    elif noise is not None:
        flat = noise.vector([int(r[c]) for r in rows for c in counts], table.sensitivity)
        for i, r in enumerate(rows):
            for j, c in enumerate(counts):
                r[c] = flat[i * len(counts) + j]
        mechanism = (
            f"OpenDP make_laplace (discrete Laplace), epsilon {noise.epsilon:g}, "
            f"L1 sensitivity {table.sensitivity}, scale {table.sensitivity / noise.epsilon:g}"
        )
    noisy = [dict(r) for r in rows]
    for r in rows:
        for c in counts:
            if r[c] is not None and r[c] < min_count:
                r[c] = None
    kept = [
        r
        for i, r in enumerate(rows)
        if i in table.declared or any(r[c] is not None for c in counts)
    ]
    for r in kept:
        for f in table.fields:
            if f.rate is not None:
                num, den = r[f.rate[0]], r[f.rate[1]]
                r[f.name] = round(num / den, 4) if num is not None and den else None
    out_rows = [{f.name: r.get(f.name) for f in table.fields} for r in kept]
    return Released(table, out_rows, mechanism, noisy)


def _durations(histogram: Released, min_count: int, noisy: bool) -> Released:
    """p50 / p95 per command from the released histogram.

    Exact counts: the whole histogram, as ``optin report`` does. Noisy counts: only the buckets
    that pass suppression, because clamped noise in a hundred empty buckets would otherwise
    drag the upper percentiles out to days.
    """
    hists: dict[str, dict[int, int]] = {}
    source = histogram.rows if noisy else histogram.noisy
    for r in source:
        hists.setdefault(r["command"], {})[int(r["bucket"])] = int(r["runs"] or 0)
    rows: list[dict[str, Any]] = []
    for cmd, hist in hists.items():
        runs = sum(hist.values())
        if runs < min_count:
            continue
        p50, p95 = percentile(hist, 0.5), percentile(hist, 0.95)
        rows.append(
            {
                "command": cmd,
                "runs": runs,
                "p50_ms": None if p50 is None else round(p50, 1),
                "p95_ms": None if p95 is None else round(p95, 1),
            }
        )
    table = Table(
        "durations",
        "Duration percentiles per command",
        "Median and 95th percentile of the run time per command, interpolated inside the "
        "buckets of `duration_histogram` (exact counts before suppression; with noise, only "
        "the buckets that pass suppression); commands with fewer runs than the threshold are "
        "left out.",
        [
            Field("command", "string", "command path"),
            Field("runs", "integer", "runs (sum of the released histogram)", count=True),
            Field("p50_ms", "number", "median duration, ms"),
            Field("p95_ms", "number", "95th percentile duration, ms"),
        ],
        rows,
        sensitivity=0,
    )
    return Released(table, rows, f"derived from duration_histogram ({histogram.mechanism})")


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
                    released.append(_durations(rel, min_count, noise is not None))
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
