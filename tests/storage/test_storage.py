"""The storage contract, on SQLite and on a real PostgreSQL server (``storage_url``)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from tests.storage.helpers import APP, POLICY, T0, active, command, recompute, snapshot

from optin.events import validate_event
from optin.storage import (
    StorageError,
    StorageFull,
    StorageUnavailable,
    StoreResult,
    open_storage,
)
from optin.storage.base import prepare_batch
from optin.storage.sqlite import SQLiteStorage


def test_helper_events_are_valid() -> None:
    for event in (command(1), active(2), command(3, outcome="failure", error="ConnectionError")):
        validate_event(POLICY, event)


def test_store_counts_and_dedup_across_calls(storage_url: str) -> None:
    batch = [command(1), command(2, hour=1), active(3)]
    with open_storage(storage_url) as db:
        assert db.store(APP, batch) == StoreResult(3, 0, 0)
        assert db.store(APP, batch) == StoreResult(0, 3, 0)
        assert db.store(APP, [*batch, command(4)]) == StoreResult(1, 3, 0)
        assert len(db.raw_events(APP)) == 4
        assert db.rollup(APP, "outcome", 0, 10**6) == [(None, "start", "success", 3)]
        assert db.store(APP, []) == StoreResult(0, 0, 0)


def test_store_many_is_each_batch_in_turn(storage_url: str) -> None:
    c1, c2, c3 = (
        command(1),
        command(2, hour=1),
        command(3, outcome="failure", error="ConnectionError"),
    )
    clash = command(2, hour=1, duration_ms=77)  # c2's id, other content
    with open_storage(storage_url) as db:
        results = db.store_many(
            [(APP, [c1, c2]), (APP, [c2, c3, clash]), ("other-app", [command(4)]), (APP, [])]
        )
        assert results == [
            StoreResult(2, 0, 0),
            StoreResult(1, 1, 1),
            StoreResult(1, 0, 0),
            StoreResult(0, 0, 0),
        ]
        assert db.raw_events(APP) == sorted([c1, c2, c3], key=lambda e: (e["time"], e["id"]))
        assert snapshot(db) == recompute([c1, c2, c3])
        assert len(db.raw_events("other-app")) == 1


def test_a_group_flips_struggle_as_its_batches_would_in_turn(storage_url: str) -> None:
    """One session's failure and success arrive in different batches of one group (merged into
    one session row per transaction on PostgreSQL): each flip is counted once."""
    session = "b" * 16
    failed = {"outcome": "failure", "error": "ConnectionError"}
    earlier = command(1, hour=1, session=session)  # stored before: a success, no failure yet
    fail = command(2, hour=2, session=session, **failed)
    ok = command(3, hour=3, session=session)
    again = command(4, hour=4, session=session, **failed)
    other = command(5, hour=4, session="c" * 16, **failed)
    with open_storage(storage_url) as db:
        db.store(APP, [earlier])
        results = db.store_many(
            [(APP, [fail]), (APP, [ok, other]), (APP, [again]), (APP, [fail, ok])]
        )
        assert results == [
            StoreResult(1, 0, 0),
            StoreResult(2, 0, 0),
            StoreResult(1, 0, 0),
            StoreResult(0, 2, 0),
        ]
        assert snapshot(db) == recompute([earlier, fail, ok, again, other])
        struggle = db.rollup(APP, "struggle", 0, 10**6)
        assert sorted(struggle) == [(None, "start", "failed", 2), (None, "start", "recovered", 1)]


def test_sqlite_store_many_commits_all_or_nothing(tmp_path: Path) -> None:
    # A bug upstream, say: the second batch's deltas are malformed, which fails after both
    # batches' events are inserted, inside the transaction.
    broken = prepare_batch(APP, [command(9)])._replace(counts=[("not a rollup key",)])
    with SQLiteStorage(f"sqlite:///{tmp_path / 'o.db'}") as db:
        with pytest.raises(ValueError):
            db.store_prepared([prepare_batch(APP, [command(1)]), broken])
        assert db.raw_events(APP) == []
        assert snapshot(db) == recompute([])
        assert db.store_many([(APP, [command(1)])]) == [StoreResult(1, 0, 0)]


def test_dedup_across_reopen(storage_url: str) -> None:
    with open_storage(storage_url) as db:
        db.store(APP, [command(1), active(2)])
    with open_storage(storage_url) as db:
        assert db.store(APP, [command(1), active(2), command(3)]) == StoreResult(1, 2, 0)
        assert snapshot(db) == recompute([command(1), active(2), command(3)])


def test_repeats_inside_one_batch(storage_url: str) -> None:
    with open_storage(storage_url) as db:
        result = db.store(APP, [command(1), command(1), command(1, outcome="failure")])
        assert result == StoreResult(1, 1, 1)


def test_conflict_first_write_wins(storage_url: str) -> None:
    first = command(1, duration_ms=10)
    second = command(1, duration_ms=99_999, outcome="failure")
    moved = command(1, hour=30)  # the same id at another time (another partition month too)
    with open_storage(storage_url) as db:
        db.store(APP, [first])
        assert db.store(APP, [second, moved]) == StoreResult(0, 0, 2)
        assert db.raw_events(APP) == [first]
        assert snapshot(db) == recompute([first])


def test_integral_floats_are_the_same_content(storage_url: str) -> None:
    event = command(1)
    floaty = {**event, "time": float(event["time"]), "duration_ms": 1200.0}
    with open_storage(storage_url) as db:
        db.store(APP, [event])
        assert db.store(APP, [floaty]) == StoreResult(0, 1, 0)


def test_same_id_in_two_apps_is_a_conflict(storage_url: str) -> None:
    with open_storage(storage_url) as db:
        db.store(APP, [command(1)])
        assert db.store("other-app", [command(1)]) == StoreResult(0, 0, 1)


def test_purge_removes_exactly_what_is_past_retention(storage_url: str) -> None:
    # Days 0..99 after T0 (crossing several month partitions), one event every 6 hours.
    events = [command(i, hour=6 * i) for i in range(400)]
    with open_storage(storage_url) as db:
        db.store(APP, events)
        db.store("other-app", [command(10_000 + i, hour=6 * i) for i in range(10)])
        before_rollups = snapshot(db)
        cutoff = T0 + 40 * 86400 + 7 * 3600  # mid-day, mid-month: the partial edge is exact
        removed = db.purge(APP, cutoff)
        kept = db.raw_events(APP)
        assert removed == sum(1 for e in events if e["time"] < cutoff)
        assert kept == [e for e in events if e["time"] >= cutoff]
        assert snapshot(db) == before_rollups, "rollups are kept for ever"
        assert len(db.raw_events("other-app")) == 10, "other apps are untouched"
        assert db.horizon(APP) == cutoff
        # Re-sent events from before the horizon never count twice.
        assert db.store(APP, events[:5]) == StoreResult(0, 5, 0)
        assert db.purge(APP, cutoff) == 0
        assert db.purge(APP, T0) == 0
        assert db.horizon(APP) == cutoff, "the horizon never moves back"


def test_purge_everything_then_store_again(storage_url: str) -> None:
    with open_storage(storage_url) as db:
        db.store(APP, [command(1), command(2, hour=24 * 40)])
        assert db.purge(APP, T0 + 24 * 60 * 3600) == 2
        assert db.raw_events(APP) == []
        assert db.store(APP, [command(3, hour=24 * 61)]) == StoreResult(1, 0, 0)
        assert len(db.raw_events(APP)) == 1


def test_struggle_is_counted_once_whatever_the_order(storage_url: str) -> None:
    fail = command(1, hour=2, outcome="failure", error="ConnectionError")
    ok = command(2, hour=3)
    fail_again = command(3, hour=5, outcome="usage_error")
    other_session = command(4, hour=2, outcome="failure", session="b" * 16)
    with open_storage(storage_url) as db:
        db.store(APP, [ok])
        db.store(APP, [fail_again])
        db.store(APP, [fail, other_session])
        db.store(APP, [fail])
        counts = {k: n for _, _, k, n in db.rollup(APP, "struggle", 0, 10**6)}
        assert counts == {"failed": 2, "recovered": 1}
        assert snapshot(db) == recompute([ok, fail_again, fail, other_session])


def test_apps_last_day_and_ping(storage_url: str) -> None:
    with open_storage(storage_url) as db:
        db.ping()
        assert db.apps() == []
        assert db.last_day(APP) is None
        db.store("zeta-app", [command(1)])
        db.store(APP, [command(2, hour=49)])
        assert db.apps() == [APP, "zeta-app"]
        assert db.last_day(APP) == T0 // 86400 + 2


def test_no_column_records_origin_or_arrival(storage_url: str) -> None:
    with open_storage(storage_url):
        pass
    if storage_url.startswith("sqlite"):
        conn = sqlite3.connect(storage_url.removeprefix("sqlite:///"))
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        columns = {c[1] for t in tables for c in conn.execute(f"PRAGMA table_info({t})")}
        conn.close()
    else:
        import psycopg

        with psycopg.connect(storage_url) as conn:
            columns = {
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public'"
                )
            }
    forbidden = {"ip", "addr", "address", "agent", "user_agent", "batch", "batch_id", "received"}
    assert not columns & forbidden
    assert not any(c == "ip" or "agent" in c or "batch" in c or "arriv" in c for c in columns)


def test_migrations_are_idempotent(storage_url: str) -> None:
    for _ in range(3):
        with open_storage(storage_url) as db:
            db.store(APP, [command(1)])
    if storage_url.startswith("sqlite"):
        conn = sqlite3.connect(storage_url.removeprefix("sqlite:///"))
        names = [r[0] for r in conn.execute("SELECT name FROM optin_migrations")]
        conn.close()
    else:
        import psycopg

        with psycopg.connect(storage_url) as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM optin_migrations")]
    assert len(names) == len(set(names)) >= 1


def test_bad_urls() -> None:
    with pytest.raises(StorageError, match="unsupported"):
        open_storage("mysql://x")
    with pytest.raises(StorageError, match="names no file"):
        open_storage("sqlite:///")


def test_sqlite_locked_is_unavailable_quickly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optin.db'}?busy_timeout_ms=200"
    with open_storage(url) as db:
        db.store(APP, [command(1)])
        other = sqlite3.connect(tmp_path / "optin.db", isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            start = time.monotonic()
            with pytest.raises(StorageUnavailable, match="locked"):
                db.store(APP, [command(2)])
            assert time.monotonic() - start < 2
            with pytest.raises(StorageUnavailable):
                db.purge(APP, T0)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert db.store(APP, [command(2)]) == StoreResult(1, 0, 0)


def test_sqlite_disk_full_is_storage_full(tmp_path: Path) -> None:
    with open_storage(f"sqlite:///{tmp_path / 'optin.db'}") as db:
        pages = db._db.execute("PRAGMA page_count").fetchone()[0]  # type: ignore[attr-defined]
        db._db.execute(f"PRAGMA max_page_count = {pages + 2}")  # type: ignore[attr-defined]
        with pytest.raises(StorageFull, match="disk is full"):
            db.store(APP, [command(i, hour=i) for i in range(2000)])
        assert db.raw_events(APP) == [], "nothing of the failed batch is kept"
