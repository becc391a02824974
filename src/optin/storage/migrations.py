"""Versioned schema migrations: named functions, applied in order, recorded in a table.

Each back-end has its own list (SQLite and PostgreSQL differ in types and partitioning). A
migration runs once: its name goes into ``optin_migrations`` in the same transaction as its
changes. Adding a migration means appending a function; never edit or reorder applied ones.

Concurrency: on SQLite the whole run holds the write lock (``BEGIN IMMEDIATE``); on PostgreSQL
it holds a session advisory lock, so collector processes starting together against one database
apply each migration exactly once and the others wait, then find nothing to do.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

__all__ = ["PG_LOCK_KEY", "POSTGRES", "SQLITE", "apply_postgres", "apply_sqlite"]

#: The advisory lock key migrations take on PostgreSQL ("optin" + 1).
PG_LOCK_KEY = 0x6F7074696E01

_TABLE = "CREATE TABLE IF NOT EXISTS optin_migrations (name TEXT PRIMARY KEY, applied_at REAL)"

# --- SQLite -------------------------------------------------------------------------------------


def sqlite_0001_initial(db: sqlite3.Connection) -> None:
    """Raw events (rowid order is append-only, the id index catches repeats), rollups, state."""
    for statement in _SQLITE_0001:
        db.execute(statement)


_SQLITE_0001 = [
    s.strip()
    for s in """
        CREATE TABLE events (
            id BLOB NOT NULL UNIQUE,
            app TEXT NOT NULL,
            time INTEGER NOT NULL,
            kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            outcome TEXT,
            duration_ms INTEGER,
            hash BLOB NOT NULL,
            body BLOB NOT NULL
        );
        CREATE INDEX events_app_time ON events (app, time);
        CREATE TABLE rollups (
            app TEXT NOT NULL,
            metric TEXT NOT NULL,
            day INTEGER NOT NULL,
            subject TEXT NOT NULL,
            key TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (app, metric, day, subject, key)
        ) WITHOUT ROWID;
        CREATE TABLE sessions (
            app TEXT NOT NULL,
            day INTEGER NOT NULL,
            session TEXT NOT NULL,
            command TEXT NOT NULL,
            fail_min INTEGER,
            ok_max INTEGER,
            PRIMARY KEY (app, day, session, command)
        ) WITHOUT ROWID;
        CREATE TABLE horizons (app TEXT PRIMARY KEY, before INTEGER NOT NULL)
        """.split(";")  # noqa: SIM905 -- the schema reads better as SQL
]


def sqlite_0002_event_ids(db: sqlite3.Connection) -> None:
    """Deduplicate with ``event_ids``, filled in bulk, instead of a unique index on ``events``.

    A unique index on random ids puts every new event on a random index page, so each commit
    writes about one 4 KiB page to the WAL per event. ``event_ids`` is filled in one sorted pass
    from the events above ``id_merge.upto`` every so often; the ids above it are looked up in
    memory (see :mod:`optin.storage.sqlite`). ``generation`` changes with every merge and purge,
    so a process whose copy in memory is stale rebuilds it. Rowids are kept, so is the order.
    """
    db.execute(
        """
        CREATE TABLE events_0002 (
            id BLOB NOT NULL,
            app TEXT NOT NULL,
            time INTEGER NOT NULL,
            kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            outcome TEXT,
            duration_ms INTEGER,
            hash BLOB NOT NULL,
            body BLOB NOT NULL
        )
        """
    )
    columns = "id, app, time, kind, subject, outcome, duration_ms, hash, body"
    db.execute(f"INSERT INTO events_0002 (rowid, {columns}) SELECT rowid, {columns} FROM events")
    db.execute("DROP TABLE events")
    db.execute("ALTER TABLE events_0002 RENAME TO events")
    db.execute("CREATE INDEX events_app_time ON events (app, time)")
    db.execute("CREATE TABLE event_ids (id BLOB PRIMARY KEY, hash BLOB NOT NULL) WITHOUT ROWID")
    db.execute("INSERT INTO event_ids SELECT id, hash FROM events ORDER BY id")
    db.execute("CREATE TABLE id_merge (upto INTEGER NOT NULL, generation INTEGER NOT NULL)")
    db.execute("INSERT INTO id_merge SELECT coalesce(max(rowid), 0), 0 FROM events")


def sqlite_0003_event_spans(db: sqlite3.Connection) -> None:
    """Find the events to purge through ``event_spans`` instead of an index on ``(app, time)``.

    Every new event cost that index an insert (about 1 µs of the storage process's 7, and its
    pages in every commit). A span is a rowid range holding some of an app's events and the
    oldest time among them: a purge visits only the spans older than its horizon. Each span
    written here covers at most 65,536 rowids, as the collector writes them.
    """
    db.execute(
        """
        CREATE TABLE event_spans (
            app TEXT NOT NULL,
            low INTEGER NOT NULL,
            high INTEGER NOT NULL,
            oldest INTEGER NOT NULL,
            PRIMARY KEY (app, low)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX event_spans_oldest ON event_spans (app, oldest)")
    db.execute(
        "INSERT INTO event_spans SELECT app, min(rowid), max(rowid), min(time) FROM events "
        "GROUP BY app, rowid >> 16"
    )
    db.execute("DROP INDEX events_app_time")


def sqlite_0004_young_ids(db: sqlite3.Connection) -> None:
    """Merges land in a small ``event_ids_young`` and move into ``event_ids`` a slice at a time.

    Merging 100,000 random ids straight into ``event_ids`` dirties nearly every leaf page once
    the table holds millions (9.1 µs per event at 10 M events, against 1.7 at 300,000). The
    young table stays small, and each merge moves one slice of the id space out of it, so a
    merge writes the young table's pages and a slice of the big one's (see
    :func:`optin.storage.sqlite.merge_ids`). ``merged`` counts the ids in ``event_ids`` (the
    slices are sized from it); ``cursor`` is where the next slice starts (the first two bytes
    of an id, 0 to 65,535).
    """
    db.execute(
        "CREATE TABLE event_ids_young (id BLOB PRIMARY KEY, hash BLOB NOT NULL) WITHOUT ROWID"
    )
    db.execute("ALTER TABLE id_merge ADD COLUMN merged INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE id_merge ADD COLUMN cursor INTEGER NOT NULL DEFAULT 0")
    db.execute("UPDATE id_merge SET merged = (SELECT count(*) FROM event_ids)")


SQLITE: list[Callable[[sqlite3.Connection], None]] = [
    sqlite_0001_initial,
    sqlite_0002_event_ids,
    sqlite_0003_event_spans,
    sqlite_0004_young_ids,
]


def apply_sqlite(db: sqlite3.Connection) -> list[str]:
    """Apply pending migrations; returns the names applied (empty when up to date)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(_TABLE)
        done = {row[0] for row in db.execute("SELECT name FROM optin_migrations")}
        applied = []
        for migration in SQLITE:
            if migration.__name__ in done:
                continue
            migration(db)
            db.execute(
                "INSERT INTO optin_migrations VALUES (?, ?)", (migration.__name__, time.time())
            )
            applied.append(migration.__name__)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return applied


# --- PostgreSQL ---------------------------------------------------------------------------------


def postgres_0001_initial(cur: Any) -> None:
    """Raw events partitioned by month of ``day`` (expiry drops partitions), rollups, state.

    A primary key on a partitioned table must contain the partition key, hence ``(id, day)``:
    a retry has the same hour, so it lands on the same key. An id reused with another time is
    found by the look-up ``store`` does before inserting.
    """
    cur.execute(
        """
        CREATE TABLE events (
            id bytea NOT NULL,
            app text NOT NULL,
            day integer NOT NULL,
            time bigint NOT NULL,
            kind text NOT NULL,
            subject text NOT NULL,
            outcome text,
            duration_ms integer,
            hash bytea NOT NULL,
            body text NOT NULL,
            PRIMARY KEY (id, day)
        ) PARTITION BY RANGE (day)
        """
    )
    cur.execute("CREATE INDEX events_app_day ON events (app, day)")
    cur.execute(
        """
        CREATE TABLE rollups (
            app text NOT NULL,
            metric text NOT NULL,
            day integer NOT NULL,
            subject text NOT NULL,
            key text NOT NULL,
            n bigint NOT NULL,
            PRIMARY KEY (app, metric, day, subject, key)
        )
        """
    )
    cur.execute(
        """
        CREATE TABLE sessions (
            app text NOT NULL,
            day integer NOT NULL,
            session text NOT NULL,
            command text NOT NULL,
            fail_min bigint,
            ok_max bigint,
            newly_failed smallint NOT NULL DEFAULT 0,
            newly_recovered smallint NOT NULL DEFAULT 0,
            PRIMARY KEY (app, day, session, command)
        )
        """
    )
    cur.execute("CREATE TABLE horizons (app text PRIMARY KEY, before bigint NOT NULL)")


def postgres_0002_brin_time(cur: Any) -> None:
    """A BRIN index on the events' time instead of the B-tree on ``(app, day)``.

    Only a purge reads events by time (the months at its edge), and events arrive about in time
    order, so a BRIN index (a few pages per partition) finds them. The B-tree cost every insert
    about 1 µs of the server's time, and the ``ON CONFLICT`` the inserts no longer use 2 µs
    more (pg_stat_statements, 100-row inserts).
    """
    cur.execute("DROP INDEX IF EXISTS events_app_day")
    cur.execute("CREATE INDEX events_time ON events USING brin (time)")


def postgres_0003_event_ids(cur: Any) -> None:
    """Every stored id in one table, ``event_ids``, with its day and content hash.

    The events' primary key must hold the partition key, ``(id, day)``, so looking an id up
    probed every monthly partition: with four (90 days), 11.3 µs of server time per event
    against 1.4 with one (``bench/bench_pg_partitions.py``); one unpartitioned index took 3.9
    with the same 1.2 M ids, and makes an id unique across days and processes. ``day`` lets a
    purge that drops a month drop its ids too (BRIN: ids arrive in about time order).
    """
    cur.execute(
        "CREATE TABLE event_ids (id bytea PRIMARY KEY, day integer NOT NULL, hash bytea NOT NULL)"
    )
    # Conflicting copies stored before (same id, other day): the oldest stands for the id (a
    # store that meets another copy puts it back). Written in day order, for the BRIN index.
    cur.execute(
        "INSERT INTO event_ids SELECT * FROM (SELECT DISTINCT ON (id) id, day, hash FROM events "
        "ORDER BY id, time) AS first ORDER BY day"
    )
    cur.execute("CREATE INDEX event_ids_day ON event_ids USING brin (day)")


POSTGRES: list[Callable[[Any], None]] = [
    postgres_0001_initial,
    postgres_0002_brin_time,
    postgres_0003_event_ids,
]


def apply_postgres(conn: Any) -> list[str]:
    """Apply pending migrations under the advisory lock; ``conn`` is a psycopg connection."""
    applied: list[str] = []
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (PG_LOCK_KEY,))
    try:
        conn.execute(_TABLE.replace("REAL", "double precision"))
        done = {row[0] for row in conn.execute("SELECT name FROM optin_migrations")}
        for migration in POSTGRES:
            if migration.__name__ in done:
                continue
            with conn.transaction(), conn.cursor() as cur:
                migration(cur)
                cur.execute(
                    "INSERT INTO optin_migrations VALUES (%s, %s)",
                    (migration.__name__, time.time()),
                )
            applied.append(migration.__name__)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (PG_LOCK_KEY,))
    return applied
