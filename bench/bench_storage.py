"""store() against raw inserts of the same rows into the same database, SQLite and PostgreSQL.

    python bench/bench_storage.py [--events 100000] [--batch 100] [--pg URL]

For each back-end, on a fresh database each time:

- *raw*: the same rows ``store()`` would write to the events table, inserted in batches of
  ``--batch`` straight into the same schema (SQLite: ``executemany`` in one transaction per
  batch, same pragmas; PostgreSQL: one ``COPY`` per batch) -- no dedup look-up, no rollups;
- *store()*: ``Storage.store`` with the same batches: canonical JSON, content hash, dedup
  look-up, insert, session states and rollup upserts, one transaction per batch.

Prints events/s and the ratio store()/raw. Without ``--pg`` a throwaway PostgreSQL server is
started (fsync on). Events come grouped the way clients upload them (one install's recent
events together), from :mod:`bench.synth`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pgserver import throwaway_postgres
from bench.synth import synth_events

from optin.policy import load
from optin.storage import open_storage
from optin.storage.base import prepare

_TYPES = ["bytea", "text", "int4", "int8", "text", "text", "text", "int4", "bytea", "text"]
POLICY = load(Path(__file__).resolve().parent / "policy.toml")
APP = POLICY.app


def _rows(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [p.row for p in prepare(APP, events)[0]]


def raw_sqlite(url: str, events: list[dict[str, Any]], batch: int) -> float:
    import sqlite3

    from optin.storage.sqlite import path_from_url

    open_storage(url).close()
    db = sqlite3.connect(path_from_url(url), isolation_level=None)
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA wal_autocheckpoint = 10000")
    db.execute("PRAGMA cache_size = -32768")
    rows = [(r[0], APP, *r[1:]) for r in _rows(events)]
    start = time.perf_counter()
    for i in range(0, len(rows), batch):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO events (id, app, time, kind, subject, outcome, duration_ms, hash, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows[i : i + batch],
        )
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return len(rows) / elapsed


def raw_postgres(url: str, events: list[dict[str, Any]], batch: int) -> float:
    import psycopg

    storage = open_storage(url)
    rows = _rows(events)
    storage._ensure_partitions({r[1] // 86400 for r in rows})  # type: ignore[attr-defined]
    storage.close()
    with psycopg.connect(url) as conn:
        start = time.perf_counter()
        for i in range(0, len(rows), batch):
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY events (id, app, day, time, kind, subject, outcome, duration_ms, hash, "
                    "body) FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(_TYPES)
                for r in rows[i : i + batch]:
                    copy.write_row((r[0], APP, r[1] // 86400, *r[1:7], r[7].decode()))
            conn.commit()
        elapsed = time.perf_counter() - start
    return len(rows) / elapsed


def with_store(url: str, events: list[dict[str, Any]], batch: int, threads: int = 1) -> float:
    from concurrent.futures import ThreadPoolExecutor

    batches = [events[i : i + batch] for i in range(0, len(events), batch)]
    sep = "&" if "?" in url else "?"
    with open_storage(url + (f"{sep}pool_size={threads}" if threads > 1 else "")) as db:
        start = time.perf_counter()
        if threads == 1:
            accepted = sum(db.store(APP, b).accepted for b in batches)
        else:
            with ThreadPoolExecutor(threads) as pool:
                accepted = sum(r.accepted for r in pool.map(lambda b: db.store(APP, b), batches))
        elapsed = time.perf_counter() - start
    assert accepted == len(events), (accepted, len(events))
    return len(events) / elapsed


def _new_pg_database(server_url: str) -> str:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, nargs="+", default=[100])
    parser.add_argument("--pg", help="a PostgreSQL server URL (default: start a throwaway one)")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--threads", type=int, default=4, help="also store() from N threads on PostgreSQL"
    )
    args = parser.parse_args()
    events = list(synth_events(POLICY, args.events, days=3, end_day=int(time.time()) // 86400))
    print(f"{len(events):,} events, grouped as clients upload them")
    with ExitStack() as stack, tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        pg = args.pg
        if args.only != "sqlite" and not pg:
            pg = stack.enter_context(throwaway_postgres())
        for batch in args.batch:
            if args.only != "postgres":
                raw = raw_sqlite(f"sqlite:///{tmp}/raw-{batch}.db", events, batch)
                stored = with_store(f"sqlite:///{tmp}/store-{batch}.db", events, batch)
                print(
                    f"SQLite      batch {batch:>5}: raw insert {raw:>9,.0f} ev/s   "
                    f"store() {stored:>9,.0f} ev/s   ratio {stored / raw:.2f}"
                )
            if args.only != "sqlite":
                assert pg
                raw = raw_postgres(_new_pg_database(pg), events, batch)
                stored = with_store(_new_pg_database(pg), events, batch)
                print(
                    f"PostgreSQL  batch {batch:>5}: raw COPY   {raw:>9,.0f} ev/s   "
                    f"store() {stored:>9,.0f} ev/s   ratio {stored / raw:.2f}"
                )
                if args.threads > 1:
                    many = with_store(_new_pg_database(pg), events, batch, args.threads)
                    print(
                        f"PostgreSQL  batch {batch:>5}: store() from {args.threads} threads "
                        f"{many:>9,.0f} ev/s   ratio to one-connection raw COPY {many / raw:.2f}"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
