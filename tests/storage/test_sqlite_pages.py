"""SQLite page size: 16 KiB for a new file; an existing file keeps its own and still works."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.storage.helpers import APP, command, recompute, snapshot

from optin.storage import StoreResult
from optin.storage.sqlite import CHECKPOINT_BYTES, PAGE_SIZE, SQLiteStorage


def _pages(db: SQLiteStorage) -> tuple[int, int]:
    size = db._db.execute("PRAGMA page_size").fetchone()[0]
    checkpoint = db._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    return size, checkpoint


def test_a_new_file_gets_large_pages(tmp_path: Path) -> None:
    with SQLiteStorage(f"sqlite:///{tmp_path / 'new.db'}") as db:
        assert _pages(db) == (PAGE_SIZE, CHECKPOINT_BYTES // PAGE_SIZE)
        assert db.store(APP, [command(1)]) == StoreResult(1, 0, 0)


def test_an_existing_file_keeps_its_pages(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # made by an older collector: 4 KiB pages
        conn.execute("PRAGMA page_size = 4096")
        conn.execute("PRAGMA journal_mode = WAL")
    with SQLiteStorage(f"sqlite:///{path}") as db:
        assert _pages(db) == (4096, CHECKPOINT_BYTES // 4096)
        events = [command(i, hour=i) for i in range(50)]
        assert db.store(APP, events) == StoreResult(50, 0, 0)
    with SQLiteStorage(f"sqlite:///{path}") as db:
        assert _pages(db)[0] == 4096
        assert snapshot(db) == recompute(events)
