"""SQLite's deduplication: recent ids in memory, older ones in ``event_ids_young`` and
``event_ids`` (merged in bulk).

What must hold whatever the merge schedule: an id is found whether it is in memory, young or
merged, two collector processes on one file see each other's events, a purge or a rollback
leaves no stale id in memory, and a database made before ``event_ids`` existed keeps its events
and ids.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import pytest
from tests.storage.helpers import APP, T0, active, command, recompute, snapshot, stray_ids

from optin.storage import StorageFull, StoreResult, open_storage
from optin.storage.base import prepare
from optin.storage.migrations import sqlite_0001_initial


def _marks(path: Path) -> tuple[int, int, int, int]:
    """(merge mark, highest rowid, ids merged, events) as the file holds them."""
    db = sqlite3.connect(path)
    try:
        (upto,) = db.execute("SELECT upto FROM id_merge").fetchone()
        top, events = db.execute("SELECT coalesce(max(rowid), 0), count(*) FROM events").fetchone()
        big, young, _ = _tables(path)
        return upto, top, big + young, events
    finally:
        db.close()


def test_ids_are_found_in_memory_and_after_a_merge(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with open_storage(f"sqlite:///{path}?merge_every=5") as db:
        assert db.store(APP, [command(i) for i in range(3)]) == StoreResult(3, 0, 0)
        assert _marks(path) == (0, 3, 0, 3), "3 < 5: not merged yet"
        # In memory: repeats and a conflict are found without event_ids.
        clash = command(2, duration_ms=5)
        assert db.store(APP, [command(0), command(1), clash]) == StoreResult(0, 2, 1)
        assert db.store(APP, [command(i) for i in range(3, 6)]) == StoreResult(3, 0, 0)
        assert _marks(path) == (6, 6, 6, 6), "6 >= 5: merged in the same transaction"
        # Merged: the same answers come from event_ids.
        assert db.store(APP, [command(0), command(5), clash, command(6)]) == StoreResult(1, 2, 1)
        assert snapshot(db) == recompute([command(i) for i in range(7)])
    with open_storage(f"sqlite:///{path}") as db:  # a restart: half merged, half not
        assert db.store(APP, [command(i) for i in range(8)]) == StoreResult(1, 7, 0)


def _spread(n: int, **extra: object) -> dict[str, object]:
    """A command whose id starts anywhere in the id space (``command``'s all start 0000)."""
    ident = hashlib.blake2b(str(n).encode(), digest_size=16).hexdigest()
    return command(n, id=ident, hour=n % 48, **extra)


def _tables(path: Path) -> tuple[int, int, int]:
    """(ids in event_ids, ids in event_ids_young, where the next slice starts)."""
    db = sqlite3.connect(path)
    try:
        big, young, cursor = db.execute(
            "SELECT (SELECT count(*) FROM event_ids), (SELECT count(*) FROM event_ids_young), "
            "cursor FROM id_merge"
        ).fetchone()
        return big, young, cursor
    finally:
        db.close()


def test_merges_go_through_the_young_table_one_slice_at_a_time(tmp_path: Path) -> None:
    """Small merges into a larger event_ids land in event_ids_young; each moves one slice of the
    id space on; every id is found wherever it is, and a purge takes it from either table."""
    path = tmp_path / "o.db"
    url = f"sqlite:///{path}?merge_every=10"
    seen = []
    with open_storage(url) as db:
        db.store(APP, [_spread(i) for i in range(200)])  # merged straight: event_ids was empty
        assert _tables(path) == (200, 0, 0)
        for start in range(200, 400, 10):  # 20 merges of 10 into 200+: sqrt(2n/m) slices
            assert db.store(APP, [_spread(i) for i in range(start, start + 10)]).accepted == 10
            seen.append(_tables(path))
            assert stray_ids(url) == ([], [])
        assert all(young for _, young, _ in seen), "merges of 10 into 200+ ids go young"
        assert len({cursor for *_, cursor in seen}) > 3, "the slice moves on at every merge"
        big, young, _ = seen[-1]
        assert big + young == 400 and big > 200, "slices moved ids on into event_ids"
        # Every id is found (memory is empty: each store just merged), repeats and conflicts.
        assert db.store(APP, [_spread(i) for i in range(400)]) == StoreResult(0, 400, 0)
        clashes = [_spread(i, duration_ms=7) for i in range(0, 400, 7)]
        assert db.store(APP, clashes) == StoreResult(0, 0, len(clashes))
        kept = [_spread(i) for i in range(400) if i % 48 >= 24]
        assert db.purge(APP, T0 + 24 * 3600) == 400 - len(kept)  # hours 0..23 of each 48
        assert stray_ids(url) == ([], [])
        assert sum(_tables(path)[:2]) == len(kept)
        assert db.store(APP, [_spread(i) for i in range(400)]) == StoreResult(0, 400, 0)
        assert db.raw_events(APP) == sorted(kept, key=lambda e: (e["time"], e["id"]))
    with open_storage(url) as db:  # a restart finds them too
        assert db.store(APP, kept) == StoreResult(0, len(kept), 0)


def test_two_collectors_on_one_file_see_each_others_events(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}?merge_every=4"
    with open_storage(url) as a, open_storage(url) as b:
        assert a.store(APP, [command(1), command(2)]) == StoreResult(2, 0, 0)
        assert b.store(APP, [command(1), command(2), command(3)]) == StoreResult(1, 2, 0)
        # b reaches 4 unmerged ids and merges; a's memory is stale and must be rebuilt.
        assert b.store(APP, [command(4)]) == StoreResult(1, 0, 0)
        assert a.store(APP, [command(i) for i in range(1, 6)]) == StoreResult(1, 4, 0)
        assert b.store(APP, [command(5), command(6, hour=48)]) == StoreResult(1, 1, 0)
        # a purges what b stored too: b must forget the purged ids. An id purged is unknown:
        # before the horizon it is a duplicate whatever its content, after it a new event.
        assert a.purge(APP, T0 + 24 * 3600) == 5
        moved = command(2, hour=50)
        assert b.store(APP, [command(1, duration_ms=9), moved]) == StoreResult(1, 1, 0)
        assert b.store(APP, [command(6, hour=48), command(7, hour=48)]) == StoreResult(1, 1, 0)
        assert a.store(APP, [command(7, hour=48), command(8, hour=49)]) == StoreResult(1, 1, 0)
        kept = [command(6, hour=48), command(7, hour=48), command(8, hour=49), moved]
        assert a.raw_events(APP) == kept
        assert snapshot(a) == recompute([command(i) for i in range(1, 6)] + kept)
        # a purges the newest rows: the next ones reuse their rowids, and b must see them.
        assert a.purge(APP, T0 + 60 * 3600) == 4
        assert a.store(APP, [command(9, hour=70), command(10, hour=70)]) == StoreResult(2, 0, 0)
        assert b.store(APP, [command(9, hour=70), command(10, hour=70)]) == StoreResult(0, 2, 0)


def test_a_purge_with_nothing_to_merge_still_tells_the_other_process(tmp_path: Path) -> None:
    """A purge that lowers the mark must make the other process rebuild its memory even when
    there was nothing to merge first, or it skips the rowids the purge frees (reused next)."""
    url = f"sqlite:///{tmp_path / 'o.db'}?merge_every=4"
    with open_storage(url) as a, open_storage(url) as b:
        # The 4th id merges: nothing is above the mark. b has seen up to rowid 4.
        early = [command(1, hour=48), command(2, hour=48), command(3), command(4)]
        assert a.store(APP, early) == StoreResult(4, 0, 0)
        assert b.store(APP, [command(1, hour=48)]) == StoreResult(0, 1, 0)
        assert a.purge(APP, T0 + 3600) == 2  # rowids 3 and 4: the mark goes down to 2
        assert a.store(APP, [command(5, hour=50)]) == StoreResult(1, 0, 0)  # rowid 3 again
        assert b.store(APP, [command(5, hour=50)]) == StoreResult(0, 1, 0), "a retry via b"
        for n in range(6, 12):  # merges still work: no id was stored twice
            assert b.store(APP, [command(n, hour=50)]) == StoreResult(1, 0, 0)
        assert stray_ids(url) == ([], [])


def test_a_look_up_binds_few_variables(tmp_path: Path) -> None:
    """SQLite before 3.32 allows 999 bound variables; a look-up of 600 ids must fit."""
    url = f"sqlite:///{tmp_path / 'o.db'}?merge_every=5"
    with open_storage(url) as db:
        db.store(APP, [_spread(i) for i in range(10)])  # merged: the look-up goes to the tables
        db._db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # type: ignore[attr-defined]
        fresh = [_spread(i) for i in range(10, 610)]
        assert db.store(APP, fresh) == StoreResult(600, 0, 0)


def test_a_purge_of_the_newest_rows_does_not_hide_new_ones(tmp_path: Path) -> None:
    """After a purge deletes the highest rowids, new events get rowids below the old mark."""
    path = tmp_path / "o.db"
    with open_storage(f"sqlite:///{path}?merge_every=100") as db:
        db.store(APP, [command(1, hour=48), command(2), command(3)])  # rowids 1, 2, 3
        assert db.purge(APP, T0 + 3600) == 2  # removes rowids 2 and 3, merges 1
        assert _marks(path)[:2] == (1, 1)
        db.store(APP, [command(4, hour=48)])  # rowid 2 again
        assert db.store(APP, [command(4, hour=48)]) == StoreResult(0, 1, 0)
    with open_storage(f"sqlite:///{path}") as db:
        assert db.store(APP, [command(4, hour=48), command(1, hour=48)]) == StoreResult(0, 2, 0)


def test_a_rolled_back_store_leaves_no_id_in_memory(tmp_path: Path) -> None:
    with open_storage(f"sqlite:///{tmp_path / 'o.db'}?merge_every=10000") as db:
        db.store(APP, [command(1)])
        raw = db._db  # type: ignore[attr-defined]
        pages = raw.execute("PRAGMA page_count").fetchone()[0]
        raw.execute(f"PRAGMA max_page_count = {pages + 2}")
        # The first batch fits and is inserted (its ids go to memory); the second fills the
        # file, and the transaction is rolled back.
        big = [command(i, hour=i % 24) for i in range(100, 2100)]
        with pytest.raises(StorageFull):
            db.store_many([(APP, [command(2), active(3)]), (APP, big)])
        raw.execute("PRAGMA max_page_count = 1073741823")
        assert db.raw_events(APP) == [command(1)]
        assert db.store(APP, [command(1), command(2), active(3)]) == StoreResult(2, 1, 0)


def test_a_database_from_before_event_ids_keeps_its_events_and_ids(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = [command(1), command(2, hour=1), active(3)]
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    db.execute("CREATE TABLE optin_migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    sqlite_0001_initial(db)
    db.execute("INSERT INTO optin_migrations VALUES ('sqlite_0001_initial', ?)", (time.time(),))
    db.executemany(
        "INSERT INTO events (app, id, time, kind, subject, outcome, duration_ms, hash, body) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(APP, *p.row) for p in prepare(APP, old)[0]],
    )
    db.execute("COMMIT")
    db.close()
    with open_storage(f"sqlite:///{path}") as storage:
        assert storage.raw_events(APP) == sorted(old, key=lambda e: (e["time"], e["id"]))
        clash = command(2, hour=1, outcome="failure")
        assert storage.store(APP, [*old, clash, command(4)]) == StoreResult(1, 3, 1)
    assert _marks(path) == (3, 4, 3, 4)
    assert stray_ids(f"sqlite:///{path}") == ([], []), "0004 counts the ids already merged"
    db = sqlite3.connect(path)
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    db.close()
    assert "events_app_time" not in indexes, "migration 0003 drops it: purges use spans"
    assert not any(name.startswith("sqlite_autoindex_events") for name in indexes)
    with open_storage(f"sqlite:///{path}") as storage:  # the spans made by the migration
        assert storage.purge(APP, T0 + 3600) == 3  # everything at hour 0
        assert storage.raw_events(APP) == [command(2, hour=1)]
