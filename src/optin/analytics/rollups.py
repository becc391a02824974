"""Events to rollup deltas: the pure half of ingestion, shared by both storage back-ends.

A rollup is a count keyed by ``(day, metric, subject, key)`` inside one app. ``day`` is the UTC
day number (``time // 86400``); ``metric`` says what is counted; ``subject`` is the command path,
the custom event name or the active period; ``key`` holds the remaining parts joined by ``|``
(no value the policy allows can contain ``|``: names, versions, closed-list values and error
categories all exclude it). Counts only ever add up, so deltas from any split of the events into
batches sum to the deltas of all of them at once: that is what the recomputation test checks.

Metrics (``subject`` / ``key``)::

    outcome   command / outcome                       usage, failure rate, error-rate spikes
    slow      command / ""                            commands over the policy's slow threshold
    duration  command / histogram bucket              p50 / p95 (see :func:`duration_bucket`)
    error     command / error category
    option    command / option name                   option usage (and options never used)
    value     command / option|value
    dimension command / dimension|value|outcome
    release   app_version / outcome                   failure rate per release
    platform  kind / app_version|os|arch|python|ci|interactive
              the cross-tab, for publishing (kind: command, event, active:day, active:month;
              ci and interactive as 1 / 0)
    platform_active  field / value                    marginal shares of daily active pings
              (field: version, os, arch, python,      (install-days) by version, OS, arch,
              ci, interactive; ci as yes / no)        Python, CI, interactive
    platform_runs    field / value                    the same marginals over command runs
    event     event name / ""                         custom event counts
    property  event name / property|value
    active    day or month / ""                       DAU = day pings of a day, MAU = month
                                                      pings of a month
    struggle  command / failed or recovered           see below

The report reads the platform marginals, not the cross-tab: the cross-tab has hundreds of rows a
day, and the report must read 30 days of rollups in a few milliseconds.

Struggle needs per-session state, which no count can hold: a command *struggles* in a session on
a day when it fails (``failure`` or ``usage_error``) and then succeeds. Times are hours, so "then"
means a success in the same hour as the first failure or later. The storage keeps one small row
per (app, day, session, command) with the first failing hour and the last successful hour; it is
purged with the raw events. The ``struggle`` counts move when that state flips: ``failed`` the first
time a session-command-day fails, ``recovered`` the first time it has a success at or after its
first failure. Both flips are monotonic (a minimum only falls, a maximum only rises), so the result
does not depend on the order in which events arrive.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "BUCKETS_PER_OCTAVE",
    "FAILING",
    "METRICS",
    "PLATFORM_FIELDS",
    "Key",
    "SessionKey",
    "SessionState",
    "bucket_bounds",
    "bucket_midpoint",
    "deltas",
    "duration_bucket",
    "merge_session",
    "session_states",
    "struggle_deltas",
]

#: (day, metric, subject, key)
Key = tuple[int, str, str, str]
#: (day, session, command)
SessionKey = tuple[int, str, str]
#: (first failing hour or None, last successful hour or None), hours as Unix seconds
SessionState = tuple[int | None, int | None]

FAILING = frozenset(("failure", "usage_error"))
METRICS = (
    "outcome",
    "slow",
    "duration",
    "error",
    "option",
    "value",
    "dimension",
    "release",
    "platform",
    "platform_active",
    "platform_runs",
    "event",
    "property",
    "active",
    "struggle",
)

#: Duration histogram resolution: bucket edges at 2**(i/4) ms, so each bucket is ~19 % wide and
#: a percentile read from the histogram is within ~10 % of the true one, for any mix of days.
BUCKETS_PER_OCTAVE = 4


def duration_bucket(ms: int) -> int:
    """Bucket 0 holds 0 ms; bucket ``b >= 1`` holds ``[2**((b-1)/4), 2**(b/4))`` ms."""
    if ms < 1:
        return 0
    return 1 + int(math.log2(ms) * BUCKETS_PER_OCTAVE)


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """The ``[low, high)`` milliseconds a bucket covers."""
    if bucket <= 0:
        return (0.0, 1.0)
    return (2 ** ((bucket - 1) / BUCKETS_PER_OCTAVE), 2 ** (bucket / BUCKETS_PER_OCTAVE))


def bucket_midpoint(bucket: int) -> float:
    """The value a percentile falling in this bucket is reported as (geometric middle)."""
    if bucket <= 0:
        return 0.0
    low, high = bucket_bounds(bucket)
    return math.sqrt(low * high)


def _text(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


PLATFORM_FIELDS = ("version", "os", "arch", "python", "ci", "interactive")
_YES_NO = {True: "yes", False: "no"}
_MARGINALS = {"command": "platform_runs", "active:day": "platform_active"}


#: The text of each duration's histogram bucket, remembered for whole durations under a minute
#: (most runs; at most 60,000 entries), filled as they are met: a table built at import cost
#: every server-side process 11-19 ms.
_BUCKET_TEXT: dict[int | float, str] = {}


def _bucket_text(ms: int | float) -> str:
    text = _BUCKET_TEXT.get(ms)
    if text is None:
        text = str(duration_bucket(int(ms)))
        if type(ms) is int and 0 <= ms < 60_000:
            _BUCKET_TEXT[ms] = sys.intern(text)
    return text


def deltas(events: Iterable[Mapping[str, Any]]) -> Counter[Key]:
    """The rollup counts these (new, validated) events add; struggle is separate.

    Runs in the collector for every event, so it counts in two steps: each event's distinct
    parts first (a batch comes from one install: few platforms, few command shapes), then the
    rollup keys once per distinct part; duration keys, nearly one per run, are built per event.
    Parts and duration keys are counted by ``Counter`` over lists (a C loop that hashes each
    tuple once; ``d[k] = d.get(k, 0) + 1`` hashes it twice, in Python). 31.5k -> 28.4k
    instructions per event (callgrind, the bench's batches of one install).
    """
    groups: list[tuple[Any, ...]] = []  # (day, kind, *platform)
    shapes: list[tuple[Any, ...]] = []  # a command's shape, without its duration
    whens: list[Key] = []  # the duration keys themselves: nearly one per command run
    out: Counter[Key] = Counter()
    get = out.get
    for ev in events:
        day = int(ev["time"]) // 86400
        kind = ev["kind"]
        version = ev["app_version"]
        if kind == "command":
            cmd = ev["command"]
            values = ev.get("values")
            shapes.append(
                (
                    day,
                    cmd,
                    ev["outcome"],
                    version,
                    ev["slow"],
                    ev.get("error"),
                    tuple(ev["options"]),
                    tuple(values.items()) if values else (),
                    tuple(ev["dimensions"].items()),
                )
            )
            whens.append((day, "duration", cmd, _bucket_text(ev["duration_ms"])))
        elif kind == "event":
            name = ev["name"]
            key: Key = (day, "event", name, "")
            out[key] = get(key, 0) + 1
            for prop, value in ev["properties"].items():
                key = (day, "property", name, f"{prop}|{_text(value)}")
                out[key] = get(key, 0) + 1
            for dim, value in ev["dimensions"].items():
                key = (day, "dimension", f"event:{name}", f"{dim}|{value}|")
                out[key] = get(key, 0) + 1
        else:
            period = ev["period"]
            key = (day, "active", period, "")
            out[key] = get(key, 0) + 1
            kind = f"active:{period}"
        groups.append(
            (day, kind, version, ev["os"], ev["arch"], ev["python"], ev["ci"], ev["interactive"])
        )
    out.update(whens)  # counted by a C loop
    runs, combos = Counter(shapes), Counter(groups)
    for (day, cmd, outcome, version, slow, error, options, values, dims), n in runs.items():
        keys: list[Key] = [(day, "outcome", cmd, outcome), (day, "release", version, outcome)]
        if slow:
            keys.append((day, "slow", cmd, ""))
        if error is not None:
            keys.append((day, "error", cmd, error))
        keys.extend((day, "option", cmd, option) for option in options)
        keys.extend((day, "value", cmd, f"{option}|{value}") for option, value in values)
        keys.extend((day, "dimension", cmd, f"{dim}|{value}|{outcome}") for dim, value in dims)
        for key in keys:
            out[key] = get(key, 0) + n
    for (day, kind, version, os_, arch, python, ci, interactive), n in combos.items():
        keys = [
            (day, "platform", kind, f"{version}|{os_}|{arch}|{python}|{int(ci)}|{int(interactive)}")
        ]
        metric = _MARGINALS.get(kind)
        if metric is not None:
            keys += [
                (day, metric, "version", version),
                (day, metric, "os", os_),
                (day, metric, "arch", arch),
                (day, metric, "python", python),
                (day, metric, "ci", _YES_NO[bool(ci)]),
                (day, metric, "interactive", _YES_NO[bool(interactive)]),
            ]
        for key in keys:
            out[key] = get(key, 0) + n
    return out


def session_states(events: Iterable[Mapping[str, Any]]) -> dict[SessionKey, SessionState]:
    """Per (day, session, command): the first failing hour and the last successful hour."""
    states: dict[SessionKey, SessionState] = {}
    for ev in events:
        if ev["kind"] != "command":
            continue
        outcome = ev["outcome"]
        failing = outcome in FAILING
        if not failing and outcome != "success":
            continue
        time = int(ev["time"])
        key = (time // 86400, ev["session"], ev["command"])
        fail, ok = states.get(key, (None, None))
        if failing:
            fail = time if fail is None else min(fail, time)
        else:
            ok = time if ok is None else max(ok, time)
        states[key] = (fail, ok)
    return states


def _struggled(state: SessionState) -> bool:
    fail, ok = state
    return fail is not None and ok is not None and fail <= ok


def merge_session(old: SessionState | None, new: SessionState) -> tuple[SessionState, int, int]:
    """Merge a batch's state into the stored one: ``(merged, newly_failed, newly_recovered)``."""
    before = old or (None, None)
    fails = [t for t in (before[0], new[0]) if t is not None]
    oks = [t for t in (before[1], new[1]) if t is not None]
    merged: SessionState = (min(fails) if fails else None, max(oks) if oks else None)
    newly_failed = int(before[0] is None and merged[0] is not None)
    newly_recovered = int(not _struggled(before) and _struggled(merged))
    return merged, newly_failed, newly_recovered


def struggle_deltas(
    old: Mapping[SessionKey, SessionState], new: Mapping[SessionKey, SessionState]
) -> tuple[dict[SessionKey, SessionState], Counter[Key]]:
    """The merged states to write back, and the ``struggle`` rollup counts that moved."""
    merged: dict[SessionKey, SessionState] = {}
    out: Counter[Key] = Counter()
    for key, state in new.items():
        result, failed, recovered = merge_session(old.get(key), state)
        merged[key] = result
        day, _session, command = key
        if failed:
            out[(day, "struggle", command, "failed")] += 1
        if recovered:
            out[(day, "struggle", command, "recovered")] += 1
    return merged, out
