"""Queries over the rollups give the figures of a data set built to have known answers."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st
from tests.analytics.dataset import D0, DAYS, LAST, known_events
from tests.storage.helpers import APP, POLICY

from optin.analytics import queries as q
from optin.analytics.rollups import (
    bucket_bounds,
    duration_bucket,
    session_states,
    struggle_deltas,
)
from optin.events import validate_event
from optin.storage import open_storage


def test_known_events_are_valid() -> None:
    for event in known_events():
        validate_event(POLICY, event)


def test_figures_of_the_known_data_set(storage_url: str) -> None:
    with open_storage(storage_url) as db:
        for start in range(0, len(known_events()), 100):
            db.store(APP, known_events()[start : start + 100])
        w = q.window(db, APP, DAYS)
        assert w == q.Window(D0, LAST)
        assert q.window(db, "nobody", 30) is None

        act = q.activity(db, APP, w)
        assert act.dau == {D0 + d: 10 + d % 3 for d in range(DAYS)}
        assert act.dau_last == 10 + (DAYS - 1) % 3
        assert act.mau == {"2026-01": 25}
        assert act.wau_low == 12
        assert act.wau_high == 25  # bounded by the month's pings, not the sum (77)

        cmds = {c.command: c for c in q.commands(db, APP, w)}
        start, deploy = cmds["start"], cmds["deploy"]
        assert (start.runs, start.failures) == (20 * DAYS + 2, 2 * DAYS + 1)
        assert (deploy.runs, deploy.failures, deploy.slow) == (30 * DAYS, DAYS - 1 + 15, 30 * DAYS)
        low, high = bucket_bounds(duration_bucket(1000))
        assert start.p50_ms is not None and low <= start.p50_ms < high
        assert deploy.p95_ms is not None and abs(deploy.p95_ms - 20_000) / 20_000 < 0.2
        assert (start.struggled, start.recovered) == (1 + 2 * DAYS, 1)

        assert q.errors(db, APP, w) == [
            ("ConnectionError", "start", 2 * DAYS),
            ("ProviderNotFound", "deploy", DAYS - 1 + 15),
        ]
        basis, plat = q.platforms(db, APP, w)
        assert basis == "active:day"
        assert plat["os"] == {"linux": sum(9 + d % 3 for d in range(DAYS)), "macos": DAYS}

        used, unused = q.options(db, APP, w, POLICY)
        assert [(o.command, o.option, o.uses) for o in used] == [("start", "background", DAYS)]
        assert unused == [("canister.install", "mode"), ("canister.install", "yes")]
        assert q.dimensions(db, APP, w) == {"network": {"ic": 30 * DAYS}}

        spikes = q.spikes(db, APP, w)
        assert {(s.day, s.command) for s in spikes} == {(LAST, "deploy"), (LAST, "*")}
        top = spikes[0]
        assert (top.command, top.runs, top.failures) == ("deploy", 30, 15)


def test_percentiles_are_within_a_bucket_of_the_truth() -> None:
    rnd = random.Random(5)
    values = [int(rnd.lognormvariate(7, 1.5)) for _ in range(20_000)]
    hist: dict[int, int] = {}
    for v in values:
        hist[duration_bucket(v)] = hist.get(duration_bucket(v), 0) + 1
    values.sort()
    for quantile in (0.5, 0.95):
        exact = values[int(quantile * len(values))]
        estimate = q.percentile(hist, quantile)
        assert estimate is not None and abs(estimate - exact) / exact < 0.1
    assert q.percentile({}, 0.5) is None


@given(st.integers(0, 7 * 24 * 3600 * 1000))
def test_buckets_hold_their_values(ms: int) -> None:
    low, high = bucket_bounds(duration_bucket(ms))
    assert low <= ms < high or (ms == 0 and low == 0)
    assert low == 0 or math.isclose(high / low, 2**0.25)


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(["success", "failure", "usage_error"])),
        max_size=12,
    ),
    st.randoms(),
)
def test_struggle_does_not_depend_on_arrival_order(
    runs: list[tuple[int, str]], rnd: random.Random
) -> None:
    events = [
        {"kind": "command", "time": 3600 * h, "session": "s", "command": "c", "outcome": o}
        for h, o in runs
    ]
    _, together = struggle_deltas({}, session_states(events))
    shuffled = list(events)
    rnd.shuffle(shuffled)
    state: dict[tuple[int, str, str], tuple[int | None, int | None]] = {}
    total: dict[tuple[int, str, str, str], int] = {}
    for event in shuffled:
        merged, moved = struggle_deltas(state, session_states([event]))
        state.update(merged)
        for key, n in moved.items():
            total[key] = total.get(key, 0) + n
    assert total == dict(together)
