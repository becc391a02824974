"""SQLite's purge without an index on time: ``event_spans`` lead it to the rows to delete.

What must hold: every event lies in a span of its app whose ``oldest`` is not after its time (or
a purge would miss it), and a purge deletes exactly the app's events before its horizon, also
when spans hold other apps' rows, stragglers much older than their neighbours, or rowids reused
after the newest rows were purged.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.storage.helpers import APP, T0, active, command, uncovered

from optin.storage import open_storage
from optin.storage.base import prepare
from optin.storage.sqlite import SQLiteStorage, span_loaded_rows

OTHER = "other-app"


def spans(path: Path) -> list[tuple[str, int, int, int]]:
    db = sqlite3.connect(path)
    try:
        sql = "SELECT app, low, high, oldest FROM event_spans ORDER BY app, low"
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_one_span_per_app_grows_until_span_rows(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with open_storage(f"sqlite:///{path}?span_rows=5") as db:
        db.store(APP, [command(1, hour=5), command(2, hour=3)])  # rowids 1-2
        db.store(APP, [command(3, hour=9)])  # 3: the same span
        db.store_many([(OTHER, [command(4, hour=1)]), (APP, [command(5, hour=7)])])  # 4, 5
        db.store(APP, [command(6, hour=8)])  # 6: 1..6 would be over 5 rowids
    assert sorted(spans(path)) == sorted(
        [(APP, 1, 5, T0 + 3 * 3600), (APP, 6, 6, T0 + 8 * 3600), (OTHER, 4, 4, T0 + 3600)]
    )
    assert uncovered(path) == []


def test_purge_deletes_exactly_the_apps_old_events_and_narrows_spans(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with open_storage(f"sqlite:///{path}?span_rows=4") as db:
        assert isinstance(db, SQLiteStorage)
        # A straggler (hour 1) among newer events, and another app's rows in between.
        db.store(APP, [command(1, hour=30), command(2, hour=1), active(3, hour=31)])
        db.store(OTHER, [command(4, hour=0), command(5, hour=40)])
        db.store(APP, [command(6, hour=2), command(7, hour=50)])
        db.store(APP, [command(8, hour=60)])
        assert db.purge(APP, T0 + 10 * 3600) == 2  # ids 2 and 6
        assert uncovered(path) == []
        assert [e["id"] for e in db.raw_events(APP)] == [f"{n:032x}" for n in (1, 3, 7, 8)]
        assert len(db.raw_events(OTHER)) == 2, "another app's rows in a span are not touched"
        # The spans' oldest times moved up to what is left: a later purge before them visits none.
        assert all(oldest >= T0 + 30 * 3600 for app, _, _, oldest in spans(path) if app == APP)
        assert db.purge(APP, T0 + 30 * 3600) == 0
        assert db.purge(APP, T0 + 61 * 3600) == 4
        assert [s for s in spans(path) if s[0] == APP] == [], "empty spans are removed"
        assert db.purge(OTHER, T0 + 3600) == 1
        assert uncovered(path) == []


def test_rowids_reused_after_purging_the_newest_rows_are_covered(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with open_storage(f"sqlite:///{path}?span_rows=100") as db:
        db.store(APP, [command(1, hour=48), command(2, hour=1), command(3, hour=2)])
        assert db.purge(APP, T0 + 10 * 3600) == 2  # rowids 2 and 3 go; 2 is reused next
        db.store(APP, [command(4, hour=20), command(5, hour=21)])  # rowids 2 and 3 again
        assert uncovered(path) == []
        assert db.purge(APP, T0 + 30 * 3600) == 2
        assert [e["id"] for e in db.raw_events(APP)] == [f"{1:032x}"]


def test_rows_loaded_in_bulk_are_covered_and_purged(tmp_path: Path) -> None:
    """``span_loaded_rows``, as ``bench/gen_events.py`` calls it after writing events directly."""
    path = tmp_path / "o.db"
    with open_storage(f"sqlite:///{path}") as db:
        db.store(APP, [command(1, hour=40)])  # a span already there: only rows above it
    loaded = [command(n, hour=n % 30) for n in range(2, 40)]
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("BEGIN")
    raw.executemany(
        "INSERT INTO events (app, id, time, kind, subject, outcome, duration_ms, hash, body) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(APP, *p.row) for p in prepare(APP, loaded)[0]],
    )
    raw.execute("COMMIT")
    assert uncovered(path), "loaded rows are outside every span until they are covered"
    span_loaded_rows(raw)
    raw.close()
    assert uncovered(path) == []
    with open_storage(f"sqlite:///{path}") as db:
        assert db.purge(APP, T0 + 10 * 3600) == sum(ev["time"] < T0 + 10 * 3600 for ev in loaded)
