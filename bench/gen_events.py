"""Generate N synthetic events over 90 days straight into a collector database, fast.

    python bench/gen_events.py --db sqlite:///bench.db --events 1000000
    python bench/gen_events.py --db postgresql://postgres@127.0.0.1:5432/bench --events 10000000

Bypasses ``store()`` on purpose: events go in with bulk inserts (SQLite: large transactions with
synchronous off; PostgreSQL: COPY), and the rollups and session states are computed with the
same pure functions ``store()`` uses (:mod:`optin.analytics.rollups`), aggregated in memory
and written once. The result is the database ``store()`` would have built from these events.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synth import synth_events

from optin.analytics.rollups import (
    Key,
    SessionKey,
    SessionState,
    deltas,
    session_states,
    struggle_deltas,
)
from optin.policy import Policy, load
from optin.storage import open_storage
from optin.storage.base import prepare

_TYPES = ["bytea", "text", "int4", "int8", "text", "text", "text", "int4", "bytea", "text"]
POLICY = Path(__file__).resolve().parent / "policy.toml"
CHUNK = 50_000


class _Sink:
    """Where the rows go; one subclass per back-end."""

    def events(self, app: str, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def sessions(self, app: str, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def rollups(self, app: str, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _SQLite(_Sink):
    def __init__(self, url: str) -> None:
        import sqlite3

        from optin.storage.sqlite import path_from_url

        self.db = sqlite3.connect(path_from_url(url), isolation_level=None)
        # A bulk load: no journal while loading, WAL again at the end.
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("PRAGMA cache_size = -1000000")
        self.db.execute("PRAGMA wal_autocheckpoint = 100000")

    def events(self, app: str, rows: list[tuple[Any, ...]]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT INTO events (id, app, time, kind, subject, outcome, duration_ms, hash, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r[0], app, *r[1:]) for r in rows],
        )
        self.db.execute("COMMIT")

    def sessions(self, app: str, rows: list[tuple[Any, ...]]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?)", [(app, *r) for r in rows]
        )
        self.db.execute("COMMIT")

    def rollups(self, app: str, rows: list[tuple[Any, ...]]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT INTO rollups (app, metric, day, subject, key, n) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (app, metric, day, subject, key) DO UPDATE SET n = n + excluded.n",
            [(app, *r) for r in rows],
        )
        self.db.execute("COMMIT")

    def close(self) -> None:
        from optin.storage.sqlite import merge_ids, span_loaded_rows

        self.db.execute("BEGIN")
        merge_ids(self.db)  # the loaded ids into event_ids, as the collector's merges do
        span_loaded_rows(self.db)  # and the spans a purge finds them through
        self.db.execute("COMMIT")
        self.db.execute("ANALYZE")
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.close()


class _Postgres(_Sink):
    def __init__(self, url: str, storage: Any) -> None:
        import psycopg

        self.storage = storage
        self.conn = psycopg.connect(storage._conninfo)

    def events(self, app: str, rows: list[tuple[Any, ...]]) -> None:
        self.storage._ensure_partitions({r[1] // 86400 for r in rows})
        with (
            self.conn.cursor() as cur,
            cur.copy(
                "COPY events (id, app, day, time, kind, subject, outcome, duration_ms, hash, body) "
                "FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(_TYPES)
            for r in rows:
                copy.write_row((r[0], app, r[1] // 86400, *r[1:7], r[7].decode()))
        self.conn.commit()

    def sessions(self, app: str, rows: list[tuple[Any, ...]]) -> None:
        with (
            self.conn.cursor() as cur,
            cur.copy(
                "COPY sessions (app, day, session, command, fail_min, ok_max) FROM STDIN"
            ) as copy,
        ):
            for r in rows:
                copy.write_row((app, *r))
        self.conn.commit()

    def rollups(self, app: str, rows: list[tuple[Any, ...]]) -> None:
        with self.conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE r (LIKE rollups) ON COMMIT DROP")
            with cur.copy("COPY r (app, metric, day, subject, key, n) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row((app, *r))
            cur.execute(
                "INSERT INTO rollups SELECT * FROM r ON CONFLICT (app, metric, day, subject, key) "
                "DO UPDATE SET n = rollups.n + excluded.n"
            )
        self.conn.commit()

    def close(self) -> None:
        self.conn.autocommit = True
        self.conn.execute("ANALYZE")
        self.conn.close()


def generate(
    url: str,
    n: int,
    *,
    policy: Policy,
    days: int = 90,
    end_day: int | None = None,
    seed: int = 1,
    quiet: bool = False,
) -> dict[str, float]:
    """Write ``n`` events for ``policy.app`` into ``url``; returns timings."""
    app = policy.app
    end = end_day if end_day is not None else int(time.time()) // 86400 - 1
    storage = open_storage(url)  # creates the schema
    sink: _Sink
    if url.startswith("postgres"):
        sink = _Postgres(url, storage)
    else:
        storage.close()
        sink = _SQLite(url)
    counts: Counter[Key] = Counter()
    open_states: dict[SessionKey, SessionState] = {}
    written = 0
    started = time.perf_counter()
    chunk: list[dict[str, Any]] = []

    def flush_states(before_day: int) -> None:
        done = {k: v for k, v in open_states.items() if k[0] < before_day}
        for k in done:
            del open_states[k]
        merged, moved = struggle_deltas({}, done)
        counts.update(moved)
        sink.sessions(app, [(*k, *v) for k, v in merged.items()])

    def flush() -> None:
        nonlocal written
        prepared, _, _ = prepare(app, chunk)
        events = [p.event for p in prepared]
        sink.events(app, [p.row for p in prepared])
        counts.update(deltas(events))
        for key, state in session_states(events).items():
            old = open_states.get(key)
            open_states[key] = (
                state if old is None else struggle_deltas({key: old}, {key: state})[0][key]
            )
        flush_states(min(int(e["time"]) // 86400 for e in events))
        written += len(events)
        if not quiet:
            rate = written / (time.perf_counter() - started)
            print(f"\r{written:,} events ({rate:,.0f}/s)", end="", file=sys.stderr)
        chunk.clear()

    for event in synth_events(policy, n, days=days, end_day=end, seed=seed):
        chunk.append(event)
        if len(chunk) >= CHUNK:
            flush()
    if chunk:
        flush()
    flush_states(end + 1)
    events_done = time.perf_counter()
    sink.rollups(app, [(k[1], k[0], k[2], k[3], v) for k, v in sorted(counts.items())])
    sink.close()
    if url.startswith("postgres"):
        storage.close()
    total = time.perf_counter() - started
    if not quiet:
        print(
            f"\r{written:,} events in {total:.1f} s ({written / total:,.0f}/s), "
            f"{len(counts):,} rollup rows",
            file=sys.stderr,
        )
    return {"events": written, "seconds": total, "events_seconds": events_done - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="sqlite:///PATH or postgresql://...")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--policy", default=str(POLICY))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    generate(args.db, args.events, policy=load(args.policy), days=args.days, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
