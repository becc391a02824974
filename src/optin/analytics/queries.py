"""The figures the report and the dashboard show, computed from the daily rollups only.

Every function takes a :class:`~optin.storage.Storage`, an app and an inclusive window of UTC day
numbers, reads a few rollup metrics (each a single indexed range read) and returns plain
dataclasses. Nothing here reads raw events, so the cost depends on the number of days and
distinct values, never on the number of events.

Definitions:

- *DAU* of a day: the ``day`` active pings of that day (each install sends one per day it is
  used). *MAU* of a month: the ``month`` pings sent in that month. There is no weekly ping and no
  install id, so *WAU* is given as bounds: at least the busiest day of the week, at most the sum
  of its days (and at most the MAU of the month).
- *Failure*: outcome ``failure`` or ``usage_error``; ``interrupted`` is neither a success nor a
  failure. *Failure rate* = failures / runs.
- *Struggle*: see :mod:`optin.analytics.rollups`; ``recovered / failed`` is the share of
  session-days in which a failing command was made to work.
- *Percentiles* come from the duration histogram (log buckets, ~19 % wide), interpolated inside
  the bucket.
- *Spike*: a day whose failure rate for a command exceeds its trailing baseline (the previous 14
  days) by more than 3 standard errors of a binomial proportion, with at least 5 failures.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from optin.analytics.rollups import FAILING, PLATFORM_FIELDS, bucket_bounds
from optin.policy import Policy
from optin.storage import Storage

__all__ = [
    "Activity",
    "CommandStats",
    "OptionStats",
    "Spike",
    "Window",
    "activity",
    "commands",
    "day_of",
    "errors",
    "events",
    "iso",
    "options",
    "percentile",
    "platforms",
    "releases",
    "spikes",
    "window",
]

_EPOCH = dt.date(1970, 1, 1)
BASELINE_DAYS = 14


def iso(day: int) -> str:
    """UTC day number -> ``YYYY-MM-DD``."""
    return (_EPOCH + dt.timedelta(days=day)).isoformat()


def day_of(date: dt.date) -> int:
    return (date - _EPOCH).days


@dataclass(frozen=True)
class Window:
    """An inclusive range of UTC day numbers."""

    first: int
    last: int

    @property
    def days(self) -> int:
        return self.last - self.first + 1


def window(db: Storage, app: str, days: int, end: int | None = None) -> Window | None:
    """The ``days`` days ending on ``end`` (default: the last day with data); None if no data."""
    last = end if end is not None else db.last_day(app)
    if last is None:
        return None
    return Window(last - days + 1, last)


# --- activity -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    dau: dict[int, int]  # every day of the window, 0 when no ping
    dau_last: int
    dau_mean: float
    wau_low: int  # the last 7 days of the window
    wau_high: int
    mau: dict[str, int]  # "YYYY-MM" -> month pings, for months the window touches


def activity(db: Storage, app: str, w: Window) -> Activity:
    """DAU per day, WAU bounds for the last week, MAU per month."""
    rows = db.rollup(app, "active", day_of(_month_start(w.first)), w.last, by_day=True)
    dau = dict.fromkeys(range(w.first, w.last + 1), 0)
    mau: dict[str, int] = {}
    for day, period, _key, n in rows:
        assert day is not None
        if period == "day" and w.first <= day <= w.last:
            dau[day] += n
        elif period == "month":
            month = iso(day)[:7]
            mau[month] = mau.get(month, 0) + n
    week_days = range(max(w.first, w.last - 6), w.last + 1)
    week = [dau[d] for d in week_days]
    low, high = max(week, default=0), sum(week)
    # Everyone active in the week sent a month ping in the month(s) the week touches.
    months = {iso(d)[:7] for d in week_days}
    if all(mau.get(m) for m in months):
        high = min(high, sum(mau[m] for m in months))
    return Activity(
        dau=dau,
        dau_last=dau[w.last],
        dau_mean=sum(dau.values()) / w.days,
        wau_low=low,
        wau_high=max(high, low),
        mau=dict(sorted(mau.items())),
    )


def _month_start(day: int) -> dt.date:
    date = _EPOCH + dt.timedelta(days=day)
    return date.replace(day=1)


# --- commands -----------------------------------------------------------------------------------


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a duration histogram, in ms; None when empty."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = q * total
    seen = 0
    for bucket in sorted(histogram):
        count = histogram[bucket]
        if seen + count >= rank:
            low, high = bucket_bounds(bucket)
            frac = (rank - seen) / count if count else 0.0
            if bucket <= 0:
                return 0.0
            return float(low * (high / low) ** frac)
        seen += count
    return bucket_bounds(max(histogram))[1]


@dataclass
class CommandStats:
    command: str
    runs: int = 0
    failures: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    slow: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    struggled: int = 0  # session-days where it failed
    recovered: int = 0  # ... and then succeeded

    @property
    def failure_rate(self) -> float:
        return self.failures / self.runs if self.runs else 0.0


def commands(db: Storage, app: str, w: Window) -> list[CommandStats]:
    """Per command: runs, outcomes, failure rate, slow runs, p50/p95, struggle; busiest first."""
    stats: dict[str, CommandStats] = {}

    def get(name: str) -> CommandStats:
        if name not in stats:
            stats[name] = CommandStats(name)
        return stats[name]

    for _, cmd, outcome, n in db.rollup(app, "outcome", w.first, w.last):
        s = get(cmd)
        s.runs += n
        s.outcomes[outcome] = s.outcomes.get(outcome, 0) + n
        if outcome in FAILING:
            s.failures += n
    for _, cmd, _key, n in db.rollup(app, "slow", w.first, w.last):
        get(cmd).slow += n
    histograms: dict[str, dict[int, int]] = defaultdict(dict)
    for _, cmd, bucket, n in db.rollup(app, "duration", w.first, w.last):
        histograms[cmd][int(bucket)] = n
    for cmd, hist in histograms.items():
        get(cmd).p50_ms = percentile(hist, 0.50)
        get(cmd).p95_ms = percentile(hist, 0.95)
    for _, cmd, which, n in db.rollup(app, "struggle", w.first, w.last):
        if which == "failed":
            get(cmd).struggled += n
        else:
            get(cmd).recovered += n
    return sorted(stats.values(), key=lambda s: (-s.runs, s.command))


def errors(db: Storage, app: str, w: Window) -> list[tuple[str, str, int]]:
    """(error category, command, count), most frequent first."""
    rows = db.rollup(app, "error", w.first, w.last)
    return sorted(((err, cmd, n) for _, cmd, err, n in rows), key=lambda r: (-r[2], r[0], r[1]))


def releases(db: Storage, app: str, w: Window) -> list[tuple[str, int, float]]:
    """(app version, command runs, failure rate), most used first."""
    runs: dict[str, int] = defaultdict(int)
    fails: dict[str, int] = defaultdict(int)
    for _, version, outcome, n in db.rollup(app, "release", w.first, w.last):
        runs[version] += n
        if outcome in FAILING:
            fails[version] += n
    return sorted(
        ((v, runs[v], fails[v] / runs[v] if runs[v] else 0.0) for v in runs),
        key=lambda r: (-r[1], r[0]),
    )


# --- platforms ----------------------------------------------------------------------------------


def platforms(db: Storage, app: str, w: Window) -> tuple[str, dict[str, dict[str, int]]]:
    """Shares per version, OS, arch, Python, CI, interactive.

    Counted over daily active pings (install-days) when the app sends them, else over command
    runs; the first element says which (``active:day`` or ``command``).
    """
    basis = "active:day"
    rows = db.rollup(app, "platform_active", w.first, w.last)
    if not rows:
        basis, rows = "command", db.rollup(app, "platform_runs", w.first, w.last)
    out: dict[str, dict[str, int]] = {f: {} for f in PLATFORM_FIELDS}
    for _, name, value, n in rows:
        out[name][value] = out[name].get(value, 0) + n
    return basis, {k: dict(sorted(v.items(), key=lambda kv: -kv[1])) for k, v in out.items()}


# --- options ------------------------------------------------------------------------------------


@dataclass
class OptionStats:
    command: str
    option: str
    uses: int
    runs: int  # runs of the command in the window
    values: dict[str, int] = field(default_factory=dict)

    @property
    def share(self) -> float:
        return self.uses / self.runs if self.runs else 0.0


def options(
    db: Storage, app: str, w: Window, policy: Policy | None = None
) -> tuple[list[OptionStats], list[tuple[str, str]]]:
    """Option usage (with values), and the options the policy declares that nobody used."""
    runs: dict[str, int] = defaultdict(int)
    for _, cmd, _outcome, n in db.rollup(app, "outcome", w.first, w.last):
        runs[cmd] += n
    used: dict[tuple[str, str], OptionStats] = {}
    for _, cmd, opt, n in db.rollup(app, "option", w.first, w.last):
        used[(cmd, opt)] = OptionStats(cmd, opt, n, runs[cmd])
    for _, cmd, pair, n in db.rollup(app, "value", w.first, w.last):
        opt, value = pair.split("|", 1)
        if (cmd, opt) not in used:
            used[(cmd, opt)] = OptionStats(cmd, opt, 0, runs[cmd])
        used[(cmd, opt)].values[value] = n
    unused: list[tuple[str, str]] = []
    if policy is not None:
        for path, command in sorted(policy.commands.items()):
            for name in sorted(command.options):
                stats = used.get((path, name))
                if stats is None or stats.uses == 0:
                    unused.append((path, name))
    return sorted(used.values(), key=lambda s: (-s.uses, s.command, s.option)), unused


def dimensions(db: Storage, app: str, w: Window) -> dict[str, dict[str, int]]:
    """Runs per custom dimension value (commands and custom events together)."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for _, _subject, key, n in db.rollup(app, "dimension", w.first, w.last):
        dim, value, _outcome = key.split("|", 2)
        out[dim][value] += n
    return {d: dict(sorted(v.items(), key=lambda kv: -kv[1])) for d, v in sorted(out.items())}


def events(db: Storage, app: str, w: Window) -> dict[str, tuple[int, dict[str, dict[str, int]]]]:
    """Custom events: name -> (count, {property: {value: count}})."""
    out: dict[str, tuple[int, dict[str, dict[str, int]]]] = {}
    for _, name, _key, n in db.rollup(app, "event", w.first, w.last):
        out[name] = (n, {})
    for _, name, pair, n in db.rollup(app, "property", w.first, w.last):
        prop, value = pair.split("|", 1)
        out.setdefault(name, (0, {}))[1].setdefault(prop, {})[value] = n
    return dict(sorted(out.items()))


# --- spikes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spike:
    day: int
    command: str  # "*" for every command together
    runs: int
    failures: int
    rate: float
    baseline: float
    z: float


def spikes(
    db: Storage, app: str, w: Window, baseline_days: int = BASELINE_DAYS, z_min: float = 3.0
) -> list[Spike]:
    """Days in the window whose failure rate jumps above the trailing baseline (see above)."""
    rows = db.rollup(app, "outcome", w.first - baseline_days, w.last, by_day=True)
    runs: dict[tuple[str, int], int] = defaultdict(int)
    fails: dict[tuple[str, int], int] = defaultdict(int)
    for day, cmd, outcome, n in rows:
        assert day is not None
        for name in (cmd, "*"):
            runs[(name, day)] += n
            if outcome in FAILING:
                fails[(name, day)] += n
    found: list[Spike] = []
    for name in sorted({k[0] for k in runs}):
        for day in range(w.first, w.last + 1):
            n, f = runs.get((name, day), 0), fails.get((name, day), 0)
            if f < 5:
                continue
            base_n = sum(runs.get((name, d), 0) for d in range(day - baseline_days, day))
            base_f = sum(fails.get((name, d), 0) for d in range(day - baseline_days, day))
            if base_n < 20:
                continue
            p = max(base_f / base_n, 0.5 / base_n)
            z = (f / n - p) / math.sqrt(p * (1 - p) / n) if p < 1 else 0.0
            if z >= z_min:
                found.append(Spike(day, name, n, f, f / n, base_f / base_n, z))
    return sorted(found, key=lambda s: (-s.z, s.day, s.command))
