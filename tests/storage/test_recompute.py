"""Rollups equal a recomputation from the raw events, after any mix of batches, repeats, purges."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.storage.helpers import POLICY, T0, recompute, snapshot, stray_ids, uncovered
from tests.strategies import valid_events

from optin.storage import Storage, StoreResult, open_storage
from optin.storage.base import prepare
from optin.storage.sqlite import SQLiteStorage

_SESSIONS = ["0" * 16, "1" * 16]
_HOURS = 24 * 40  # forty days: crosses a month, so PostgreSQL sees several partitions


@st.composite
def _event(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event squeezed into few sessions and days, so struggle and purges interact."""
    event: dict[str, Any] = draw(valid_events(POLICY))
    event["time"] = T0 + draw(st.integers(0, _HOURS)) * 3600
    if "session" in event:
        event["session"] = draw(st.sampled_from(_SESSIONS))
    if event["kind"] == "command":
        event["command"] = draw(st.sampled_from(["start", "deploy"]))
        event["options"] = [o for o in event["options"] if o in POLICY.commands["start"].options]
        event.pop("values", None)
        if event["command"] != "deploy":
            event.pop("positionals", None)
    return event


_steps = st.lists(
    st.one_of(
        st.tuples(st.just("store"), st.lists(st.integers(0, 29), max_size=12)),
        st.tuples(st.just("purge"), st.integers(0, _HOURS + 24)),
    ),
    min_size=1,
    max_size=8,
)


def _id(app: str, n: int) -> str:
    return hashlib.blake2b(f"{app}/{n}".encode(), digest_size=16).hexdigest()


def check(db: Storage, app: str, pool: list[dict[str, Any]], steps: list[Any]) -> None:
    """Run the steps, mirroring them in a model; compare results, raw rows and rollups."""
    # Pool entries 20..29 reuse the ids of 0..9: a repeat when the content is equal, else a
    # conflict.
    events = [{**ev, "id": _id(app, i % 20)} for i, ev in enumerate(pool)]
    live: dict[str, bytes] = {}  # id -> content hash of the raw copy still kept
    kept: dict[str, dict[str, Any]] = {}
    accepted: list[dict[str, Any]] = []
    horizon = 0
    for action, arg in steps:
        if action == "purge":
            before = T0 + arg * 3600
            removed = db.purge(app, before)
            gone = [i for i, ev in kept.items() if ev["time"] < before]
            assert removed == len(gone)
            for i in gone:
                del kept[i], live[i]
            horizon = max(horizon, before)
            continue
        batch = [events[i] for i in arg]
        want = [0, 0, 0]
        for p in prepare(app, batch)[0]:
            ident = p.id.hex()
            if ident in live:
                want[1 if live[ident] == p.hash else 2] += 1
            elif p.event["time"] < horizon:
                want[1] += 1
            else:
                want[0] += 1
                live[ident] = p.hash
                kept[ident] = dict(p.event)
                accepted.append(dict(p.event))
        _, dup, con = prepare(app, batch)
        want[1] += dup
        want[2] += con
        assert db.store(app, batch) == StoreResult(*want)
    assert snapshot(db, app) == recompute(accepted)
    key = lambda ev: (ev["time"], ev["id"])  # noqa: E731
    assert sorted(db.raw_events(app), key=key) == sorted(kept.values(), key=key)
    if isinstance(db, SQLiteStorage):
        assert uncovered(Path(db.path)) == [], "an event outside every span would never be purged"
    assert stray_ids(db.url) == ([], []), "the id tables must hold exactly the stored ids"


def _property(storage_url: str, prefix: str, examples: int) -> None:
    """Random pools and steps, each example on a fresh app of one database."""
    apps = (f"{prefix}-{n}" for n in itertools.count())
    with open_storage(storage_url) as db:

        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            database=None,
        )
        @given(pool=st.lists(_event(), min_size=30, max_size=30), steps=_steps)
        def run(pool: list[dict[str, Any]], steps: list[Any]) -> None:
            check(db, next(apps), pool, steps)

        run()


def test_rollups_equal_recomputation(storage_url: str) -> None:
    _property(storage_url, "app", 25 if storage_url.startswith("sqlite") else 15)


@pytest.mark.slow
def test_rollups_equal_recomputation_long(storage_url: str) -> None:
    """The same property with many more examples (CI runs it with -m slow)."""
    _property(storage_url, "long", 300)


def test_rollups_equal_recomputation_with_a_merge_every_few_events(tmp_path: Path) -> None:
    """SQLite's ids in memory and in ``event_ids`` give the same answers as one index."""
    _property(f"sqlite:///{tmp_path / 'optin.db'}?merge_every=3", "merge", 25)


def test_rollups_and_purges_with_spans_of_a_few_rows(tmp_path: Path) -> None:
    """Many small spans, each shared by the examples' apps: purges still delete exactly."""
    _property(f"sqlite:///{tmp_path / 'optin.db'}?span_rows=3", "spans", 25)
