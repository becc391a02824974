"""The aggregate tables of the open data: plain counts from the daily rollups, with a schema.

:mod:`optin.analytics.queries` computes the figures the maintainers see; the published site needs
something else first: the *counts* those figures come from, laid out so that noise and
suppression can be applied cell by cell before any rate or percentile is derived (a rate computed
from raw counts would leak what suppression hides). So every table here holds only counts, plus
the names of the rates and percentiles :mod:`optin.publish` derives afterwards, with the same
definitions as ``queries`` (failure = ``failure`` or ``usage_error``; struggle = session-days;
percentiles from the duration histogram via :func:`queries.percentile`).

Row keys come from the policy wherever the policy closes the list (commands, options, values,
error categories, dimensions, events, properties, OS, architecture), so that the set of rows does
not depend on the data; that is what lets a differential-privacy mechanism add noise to every
cell, zeros included. Only app and Python versions are open lists: their table says so
(``open_keys``) and is released with a thresholding mechanism instead.

``sensitivity`` is the most one event can change the table's count cells in total (L1). One
event is one command run, one custom event, or one active ping; a person sends at most one
``day`` ping per UTC day and one ``month`` ping per month.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from optin.analytics.queries import iso
from optin.analytics.rollups import FAILING, duration_bucket
from optin.events import ARCHES, MAX_DURATION_MS, OSES
from optin.policy import OTHER, UNKNOWN_COMMAND, Policy
from optin.storage import Storage

__all__ = ["Field", "Table", "build_tables", "month_range"]

#: Every histogram bucket a valid duration can fall in (0 ms .. 7 days).
DURATION_BUCKETS = range(duration_bucket(MAX_DURATION_MS) + 1)
_PLATFORM = ("app_version", "os", "arch", "python", "ci", "interactive")


@dataclass(frozen=True)
class Field:
    """One column: a Frictionless type and what it means. ``count`` columns get noise and
    suppression; ``rate`` columns are ``numerator / denominator`` of two count columns."""

    name: str
    type: str
    description: str
    count: bool = False
    rate: tuple[str, str] | None = None


@dataclass
class Table:
    name: str
    title: str
    description: str
    fields: list[Field]
    rows: list[dict[str, Any]]
    sensitivity: int
    open_keys: bool = False
    #: Row keys (by index) that come from the policy: kept even when every count is suppressed.
    declared: set[int] = field(default_factory=set)

    @property
    def count_fields(self) -> list[str]:
        return [f.name for f in self.fields if f.count]


def _s(name: str, description: str) -> Field:
    return Field(name, "string", description)


def _n(name: str, description: str) -> Field:
    return Field(name, "integer", description, count=True)


def _r(name: str, description: str, num: str, den: str) -> Field:
    return Field(name, "number", description, rate=(num, den))


def month_range(first: int, last: int) -> list[str]:
    """Every ``YYYY-MM`` a window of day numbers touches."""
    months: list[str] = []
    for day in range(first, last + 1):
        month = iso(day)[:7]
        if not months or months[-1] != month:
            months.append(month)
    return months


def _commands(policy: Policy) -> list[str]:
    return [*sorted(policy.commands), UNKNOWN_COMMAND]


def _max_options(policy: Policy, valued: bool) -> int:
    counts = [
        sum(1 for o in c.options.values() if o.values or not valued)
        for c in policy.commands.values()
    ]
    return max(counts, default=0)


def build_tables(db: Storage, policy: Policy, first: int, last: int) -> list[Table]:
    """Every count table of one app over the inclusive window ``first..last`` (day numbers)."""
    app = policy.app

    def read(metric: str, by_day: bool = False, start: int = first) -> Iterable[Any]:
        return db.rollup(app, metric, start, last, by_day=by_day)

    tables = [
        _active_daily(read("active", by_day=True), first, last),
        _active_monthly(read("active", by_day=True, start=_month_start(first)), first, last),
        _commands_table(policy, read("outcome"), read("slow"), read("struggle")),
        _daily_failures(read("outcome", by_day=True), first, last),
        _histogram(policy, read("duration")),
        _errors(policy, read("error")),
        _options(policy, read("option")),
        _values(policy, read("value")),
        _dimensions(policy, read("dimension")),
        _platforms(read("platform")),
        _versions(read("platform")),
    ]
    if policy.events:
        tables += [_events(policy, read("event")), _properties(policy, read("property"))]
    return tables


def _month_start(day: int) -> int:
    date = iso(day)
    return day - int(date[8:10]) + 1


def _active_daily(rows: Iterable[Any], first: int, last: int) -> Table:
    dau = dict.fromkeys(range(first, last + 1), 0)
    for day, period, _key, n in rows:
        if period == "day" and day in dau:
            dau[day] += n
    return Table(
        "active_daily",
        "Daily active users",
        "Per UTC day, the number of `day` active pings: each install that is used on a day "
        "sends one, carrying no identifier.",
        [Field("date", "date", "the UTC day"), _n("dau", "daily active installs")],
        [{"date": iso(d), "dau": n} for d, n in dau.items()],
        sensitivity=1,
        declared=set(range(len(dau))),
    )


def _active_monthly(rows: Iterable[Any], first: int, last: int) -> Table:
    months = month_range(first, last)
    mau = dict.fromkeys(months, 0)
    for day, period, _key, n in rows:
        month = iso(day)[:7]
        if period == "month" and month in mau:
            mau[month] += n
    return Table(
        "active_monthly",
        "Monthly active users",
        "Per calendar month the window touches, the number of `month` active pings sent in "
        "that month up to the end of the window (one per install per month).",
        [Field("month", "yearmonth", "the UTC month"), _n("mau", "monthly active installs")],
        [{"month": m, "mau": n} for m, n in mau.items()],
        sensitivity=1,
        declared=set(range(len(mau))),
    )


def _commands_table(
    policy: Policy, outcomes: Iterable[Any], slow: Iterable[Any], struggle: Iterable[Any]
) -> Table:
    names = _commands(policy)
    columns = ("runs", "failures", "interrupted", "slow", "struggled", "recovered")
    rows = {c: {"command": c, **dict.fromkeys(columns, 0)} for c in names}
    for _, cmd, outcome, n in outcomes:
        row = rows.setdefault(cmd, {"command": cmd, **dict.fromkeys(columns, 0)})
        row["runs"] += n
        if outcome in FAILING:
            row["failures"] += n
        elif outcome == "interrupted":
            row["interrupted"] += n
    for _, cmd, _key, n in slow:
        if cmd in rows:
            rows[cmd]["slow"] += n
    for _, cmd, which, n in struggle:
        if cmd in rows:
            rows[cmd]["struggled" if which == "failed" else "recovered"] += n
    return Table(
        "commands",
        "Command usage, failures, slow runs and struggle",
        "Per command: runs; failures (outcome `failure` or `usage_error`); interrupted runs; "
        "runs over the policy's slow threshold; session-days in which the command failed "
        "(`struggled`) and of those, the ones where it then succeeded (`recovered`).",
        [
            _s("command", "command path from the policy (`<unknown>`: not in the policy)"),
            _n("runs", "command runs"),
            _n("failures", "runs that failed or were usage errors"),
            _r("failure_rate", "failures / runs", "failures", "runs"),
            _n("interrupted", "runs interrupted (Ctrl-C)"),
            _n("slow", "runs over the slow threshold"),
            _r("slow_rate", "slow / runs", "slow", "runs"),
            _n("struggled", "session-days with a failure of this command"),
            _n("recovered", "of those, session-days with a success at or after the failure"),
            _r("recovery_rate", "recovered / struggled", "recovered", "struggled"),
        ],
        list(rows.values()),
        # runs 1 + failures or interrupted 1 + slow 1 + struggled 1 + recovered 1.
        sensitivity=5,
        declared=set(range(len(names))),
    )


def _daily_failures(rows: Iterable[Any], first: int, last: int) -> Table:
    days = {d: {"date": iso(d), "runs": 0, "failures": 0} for d in range(first, last + 1)}
    for day, _cmd, outcome, n in rows:
        if day in days:
            days[day]["runs"] += n
            if outcome in FAILING:
                days[day]["failures"] += n
    return Table(
        "daily_failures",
        "Runs and failures per day (all commands)",
        "Per UTC day, all command runs and the failing ones: the series error-rate spikes are "
        "read from.",
        [
            Field("date", "date", "the UTC day"),
            _n("runs", "command runs"),
            _n("failures", "failing runs"),
            _r("failure_rate", "failures / runs", "failures", "runs"),
        ],
        list(days.values()),
        sensitivity=2,
        declared=set(range(len(days))),
    )


def _histogram(policy: Policy, rows: Iterable[Any]) -> Table:
    from optin.analytics.rollups import bucket_bounds

    counts: dict[tuple[str, int], int] = defaultdict(int)
    for _, cmd, bucket, n in rows:
        counts[(cmd, int(bucket))] += n
    names = sorted({*_commands(policy), *(c for c, _ in counts)})
    out = []
    for cmd in names:
        for bucket in DURATION_BUCKETS:
            low, high = bucket_bounds(bucket)
            out.append(
                {
                    "command": cmd,
                    "bucket": bucket,
                    "low_ms": round(low, 3),
                    "high_ms": round(high, 3),
                    "runs": counts.get((cmd, bucket), 0),
                }
            )
    return Table(
        "duration_histogram",
        "Duration histogram per command",
        "Per command, runs per duration bucket: bucket b >= 1 holds durations in "
        "[2^((b-1)/4), 2^(b/4)) ms, bucket 0 holds 0 ms. Percentiles are read from it.",
        [
            _s("command", "command path"),
            Field("bucket", "integer", "bucket number"),
            Field("low_ms", "number", "lowest duration in the bucket, ms"),
            Field("high_ms", "number", "highest duration in the bucket (excluded), ms"),
            _n("runs", "runs in the bucket"),
        ],
        out,
        sensitivity=1,
    )


def _errors(policy: Policy, rows: Iterable[Any]) -> Table:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for _, cmd, err, n in rows:
        counts[(cmd, err)] += n
    keys = {(c, e) for c in _commands(policy) for e in (*policy.errors, OTHER)} | set(counts)
    return Table(
        "errors",
        "Error categories per command",
        "Per command and error category (from the policy; `other` for any other), failing runs.",
        [_s("command", "command path"), _s("error", "error category"), _n("runs", "runs")],
        [{"command": c, "error": e, "runs": counts.get((c, e), 0)} for c, e in sorted(keys)],
        sensitivity=1,
    )


def _options(policy: Policy, rows: Iterable[Any]) -> Table:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for _, cmd, opt, n in rows:
        counts[(cmd, opt)] += n
    keys = sorted({(p, o) for p, c in policy.commands.items() for o in c.options} | set(counts))
    return Table(
        "options",
        "Option usage",
        "Per declared option, the runs that gave it on the command line. Every option the "
        "policy declares is listed: an empty count means fewer uses than the threshold (an "
        "option almost nobody uses).",
        [_s("command", "command path"), _s("option", "option name"), _n("uses", "runs using it")],
        [{"command": c, "option": o, "uses": counts.get((c, o), 0)} for c, o in keys],
        sensitivity=max(1, _max_options(policy, valued=False)),
        declared=set(range(len(keys))),
    )


def _values(policy: Policy, rows: Iterable[Any]) -> Table:
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for _, cmd, pair, n in rows:
        opt, value = pair.split("|", 1)
        counts[(cmd, opt, value)] += n
    keys = {
        (p, o.name, v)
        for p, c in policy.commands.items()
        for o in c.options.values()
        if o.values
        for v in (*o.values, OTHER)
    } | set(counts)
    return Table(
        "option_values",
        "Option values",
        "Per option with a closed list of values in the policy, the runs per value.",
        [
            _s("command", "command path"),
            _s("option", "option name"),
            _s("value", "value from the policy's list, or `other`"),
            _n("runs", "runs"),
        ],
        [
            {"command": c, "option": o, "value": v, "runs": counts.get((c, o, v), 0)}
            for c, o, v in sorted(keys)
        ],
        sensitivity=max(1, _max_options(policy, valued=True)),
    )


def _dimensions(policy: Policy, rows: Iterable[Any]) -> Table:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for _, _subject, key, n in rows:
        dim, value, _outcome = key.split("|", 2)
        counts[(dim, value)] += n
    keys = {(d, v) for d, spec in policy.dimensions.items() for v in (*spec.values, OTHER)}
    keys |= set(counts)
    return Table(
        "dimensions",
        "Custom dimensions",
        "Per custom dimension and value, the command runs and custom events that carried it.",
        [_s("dimension", "dimension"), _s("value", "value"), _n("runs", "runs and events")],
        [{"dimension": d, "value": v, "runs": counts.get((d, v), 0)} for d, v in sorted(keys)],
        sensitivity=max(1, len(policy.dimensions)),
    )


def _platform_counts(
    rows: Iterable[Any], names: tuple[str, ...]
) -> dict[tuple[str, str], list[int]]:
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for _, kind, key, n in rows:
        column = 0 if kind == "command" else 1 if kind == "active:day" else None
        if column is None:
            continue
        for name, value in zip(_PLATFORM, key.split("|"), strict=True):
            if name in names:
                counts[(name, value)][column] += n
    return counts


_PLATFORM_FIELDS = [
    _s("attribute", "what is counted: os, arch, ci, interactive, app_version or python"),
    _s("value", "its value (ci and interactive: 1 yes, 0 no)"),
    _n("runs", "command runs"),
    _n("active_days", "install-days: `day` active pings"),
]


def _platforms(rows: Iterable[Any]) -> Table:
    names = ("os", "arch", "ci", "interactive")
    counts = _platform_counts(rows, names)
    domain = {
        "os": (*OSES,),
        "arch": (*ARCHES,),
        "ci": ("0", "1"),
        "interactive": ("0", "1"),
    }
    keys = {(a, v) for a, values in domain.items() for v in values} | set(counts)
    return Table(
        "platforms",
        "Platforms",
        "Per operating system, CPU architecture, CI and interactive use: command runs and "
        "install-days.",
        _PLATFORM_FIELDS,
        [
            {
                "attribute": a,
                "value": v,
                "runs": counts[(a, v)][0],
                "active_days": counts[(a, v)][1],
            }
            for a, v in sorted(keys, key=lambda k: (names.index(k[0]), k[1]))
        ],
        # One event adds 1 to one value of each of the four attributes, in one column.
        sensitivity=4,
    )


def _versions(rows: Iterable[Any]) -> Table:
    names = ("app_version", "python")
    counts = _platform_counts(rows, names)
    return Table(
        "versions",
        "App and Python versions",
        "Per app version and Python version: command runs and install-days. Versions are not "
        "a closed list, so a version appears only when its counts pass the threshold.",
        _PLATFORM_FIELDS,
        [
            {"attribute": a, "value": v, "runs": c[0], "active_days": c[1]}
            for (a, v), c in sorted(
                counts.items(), key=lambda kv: (names.index(kv[0][0]), kv[0][1])
            )
        ],
        sensitivity=2,
        open_keys=True,
    )


def _events(policy: Policy, rows: Iterable[Any]) -> Table:
    counts: dict[str, int] = dict.fromkeys(policy.events, 0)
    for _, name, _key, n in rows:
        counts[name] = counts.get(name, 0) + n
    return Table(
        "events",
        "Custom events",
        "Per custom event of the policy, how many were recorded.",
        [_s("event", "event name"), _n("count", "events")],
        [{"event": e, "count": n} for e, n in sorted(counts.items())],
        sensitivity=1,
        declared=set(range(len(counts))),
    )


def _properties(policy: Policy, rows: Iterable[Any]) -> Table:
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for _, name, pair, n in rows:
        prop, value = pair.split("|", 1)
        counts[(name, prop, value)] += n
    keys: set[tuple[str, str, str]] = set(counts)
    for e in policy.events.values():
        for p in e.properties.values():
            if p.type == "enum":
                values: tuple[str, ...] = (*p.values, OTHER)
            elif p.type == "bool":
                values = ("true", "false")
            else:
                values = tuple(str(b) for b in (0, *p.buckets))
            keys |= {(e.name, p.name, v) for v in values}
    most = max((len(e.properties) for e in policy.events.values()), default=1)
    return Table(
        "event_properties",
        "Custom event properties",
        "Per custom event, property and value (bucket lower bounds for numbers), the events.",
        [
            _s("event", "event name"),
            _s("property", "property name"),
            _s("value", "value"),
            _n("count", "events"),
        ],
        [
            {"event": e, "property": p, "value": v, "count": counts.get((e, p, v), 0)}
            for e, p, v in sorted(keys)
        ],
        sensitivity=max(1, most),
    )
