"""PostgreSQL back-end: psycopg 3, a connection pool, raw events partitioned by month.

Several collector processes may write at once. ``store_prepared`` is one transaction in three
round trips (pipeline mode), each statement over arrays (``unnest``), so a group of batches
costs the same number of round trips whatever its size:

1. BEGIN; read the apps' purge horizons and which of the group's ids exist (``event_ids``).
   Each batch is then classified as if stored after the ones before it;
2. insert the new ids into ``event_ids`` and the new events, each with a plain ``INSERT``, and
   upsert the session states, returning which ones flipped (struggle), computed from the old
   row inside ``ON CONFLICT DO UPDATE`` so two processes never count the same flip;
3. upsert the rollup deltas of the whole group (aggregated in memory), then COMMIT.

An id another process stored since step 1 makes the insert fail with a unique violation (it
waits for that transaction to end first); the whole transaction is then tried again, and step 1
finds the id (after 5 such tries, :class:`StorageContended`). ``ON CONFLICT DO NOTHING RETURNING
id`` would avoid the retry but cost every insert 2 µs of the server's time (pg_stat_statements,
100-row inserts: 8.6 µs per event with it and the old B-tree on ``(app, day)``, 5.6 µs without
either and with a BRIN index on ``time``).

Arrays are sent in binary (``%b``): psycopg quotes text arrays with a Python regex per element,
which costs 30 ms per 100-event batch; binary arrays cost about 2 µs per event. The group's ids,
each app's events and session states, then every rollup, are written in key order, so the usual
waits (two groups sharing rollup rows, a retry racing itself) cannot form a cycle. Some still can
(a purge beside a store); PostgreSQL then aborts one transaction as a deadlock:
:class:`StorageContended`, a 503 the client retries at once.

Partitions are created on demand under an advisory lock; ``purge`` drops whole months that are
past retention (when no other app has rows in them) and deletes only in the partial month at the
edge, found through a BRIN index on ``time`` (a month about to be dropped is read once, to check
that no other app has rows in it: there is no index by app). The primary key of a partitioned
table must contain the partition key, so it is ``(id, day)``: a retry has the same hour and hits
it. Finding an id among the events would probe every partition (11.3 µs of server time per
event with four partitions of 300,000 events, 1.4 with one; ``bench/bench_pg_partitions.py``),
so every stored id is also in ``event_ids`` (id, day, hash), one unpartitioned table whose
primary key makes an id unique across days and processes. There its look-up cost 3.9 µs and
its insert 5.3: 27.1k -> 28.7k-30.3k events/s with four partitions, 44.5k -> 41.0k-42.1k with one. A
purge that drops a month deletes that month's ids; one that deletes rows deletes their ids.

URL: ``postgresql://user:password@host:port/dbname`` plus optional ``pool_size`` (default 4;
the collector's storage process uses one connection at a time, its worker one for pings) and
``pool_timeout`` seconds (default 3: how long a call waits for a connection before
:class:`StorageUnavailable`). Pipeline mode needs libpq 14 or later (``psycopg[binary]`` brings
its own). Connections are not checked on every checkout (that is one more round trip per
batch): after a server restart the first use of each stale connection fails with
:class:`StorageUnavailable` (503, the client retries) and the pool replaces it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool, PoolTimeout

from optin.analytics.rollups import SessionKey, SessionState, merge_session
from optin.storage.base import (
    PreparedBatch,
    RollupRow,
    Row,
    Storage,
    StorageContended,
    StorageError,
    StorageFull,
    StorageUnavailable,
    StoreResult,
    classify,
    kept_deltas,
)
from optin.storage.migrations import apply_postgres

__all__ = ["PostgresStorage", "month_of"]

#: Advisory lock key for partition changes (creation and drops).
_PARTITION_LOCK = 0x6F7074696E02
_EPOCH = dt.date(1970, 1, 1)
#: Transactions tried before giving up when other collectors keep storing the same ids.
_ATTEMPTS = 5
_first = itemgetter(0)

_INSERT = """
INSERT INTO events (id, app, day, time, kind, subject, outcome, duration_ms, hash, body)
SELECT u.id, %s, u.time / 86400, u.time, u.kind, u.subject, u.outcome, u.duration_ms, u.hash,
       u.body
FROM unnest(%b::bytea[], %b::bigint[], %b::text[], %b::text[], %b::text[], %b::int[],
            %b::bytea[], %b::text[])
     AS u(id, time, kind, subject, outcome, duration_ms, hash, body)
"""

_IDS = """
INSERT INTO event_ids (id, day, hash)
SELECT u.id, u.time / 86400, u.hash FROM unnest(%b::bytea[], %b::bigint[], %b::bytea[])
     AS u(id, time, hash)
"""

_SESSIONS = """
INSERT INTO sessions AS s (app, day, session, command, fail_min, ok_max, newly_failed,
                           newly_recovered)
SELECT %s, u.d, u.se, u.c, u.f, u.o, (u.f IS NOT NULL)::int,
       COALESCE(u.f <= u.o, false)::int
FROM unnest(%b::int[], %b::text[], %b::text[], %b::bigint[], %b::bigint[]) AS u(d, se, c, f, o)
ON CONFLICT (app, day, session, command) DO UPDATE SET
    fail_min = LEAST(s.fail_min, excluded.fail_min),
    ok_max = GREATEST(s.ok_max, excluded.ok_max),
    newly_failed = (s.fail_min IS NULL AND excluded.fail_min IS NOT NULL)::int,
    newly_recovered = (NOT COALESCE(s.fail_min <= s.ok_max, false)
                       AND COALESCE(LEAST(s.fail_min, excluded.fail_min)
                                    <= GREATEST(s.ok_max, excluded.ok_max), false))::int
RETURNING day, command, newly_failed, newly_recovered
"""

_ROLLUPS = """
INSERT INTO rollups (app, metric, day, subject, key, n)
SELECT u.app, u.metric, u.day, u.subject, u.key, u.n
FROM unnest(%b::text[], %b::text[], %b::int[], %b::text[], %b::text[], %b::bigint[])
     AS u(app, metric, day, subject, key, n)
ON CONFLICT (app, metric, day, subject, key) DO UPDATE SET n = rollups.n + excluded.n
"""


def month_of(day: int) -> tuple[str, int, int]:
    """The partition holding a UTC day number: ``(name, first_day, end_day)`` (end exclusive)."""
    date = _EPOCH + dt.timedelta(days=day)
    first = dt.date(date.year, date.month, 1)
    nxt = dt.date(date.year + (date.month == 12), date.month % 12 + 1, 1)
    return (
        f"events_p{date.year:04d}{date.month:02d}",
        (first - _EPOCH).days,
        (nxt - _EPOCH).days,
    )


def _month_days(name: str) -> tuple[int, int]:
    """A partition's first day and the day after its month, from its name (events_pYYYYMM)."""
    _, first, end = month_of((dt.date(int(name[8:12]), int(name[12:14]), 1) - _EPOCH).days)
    return first, end


def _columns(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """Rows as one list per column, the arrays an ``unnest`` takes."""
    return [list(column) for column in zip(*rows, strict=True)]


class PostgresStorage(Storage):
    """Storage in a PostgreSQL database (see the module docstring)."""

    _mark = "%s"

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url)
        params = dict(parse_qsl(parts.query))
        pool_size = int(params.pop("pool_size", "4"))
        self.pool_timeout = float(params.pop("pool_timeout", "3"))
        params.setdefault("connect_timeout", "3")
        self._conninfo = urlunsplit(parts._replace(query=urlencode(params)))
        self._where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
        self._partitions: set[str] = set()
        self._partition_lock = threading.Lock()
        with self._errors("connecting"):
            with psycopg.connect(self._conninfo, autocommit=True) as conn:
                apply_postgres(conn)
            if not psycopg.Pipeline.is_supported():
                raise StorageError(
                    "PostgreSQL storage needs libpq 14 or later (pipeline mode); install "
                    "psycopg[binary], which brings its own"
                )
            # Autocommit: a store sends its own BEGIN and COMMIT inside the pipeline (psycopg's
            # implicit BEGIN, or conn.transaction(), would each wait for the server).
            self._pool = ConnectionPool(
                self._conninfo,
                kwargs={"autocommit": True},
                min_size=1,
                max_size=pool_size,
                open=False,
                timeout=self.pool_timeout,
                name="optin",
            )
            try:
                self._pool.open(wait=True, timeout=self.pool_timeout)
            except BaseException:
                self._pool.close()
                raise

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except PoolTimeout as exc:
            raise StorageUnavailable(
                f"PostgreSQL at {self._where}: no connection within {self.pool_timeout:g} s "
                f"while {doing}; is the server up?"
            ) from exc
        except psycopg.errors.DiskFull as exc:
            raise StorageFull(f"PostgreSQL at {self._where}: disk full while {doing}") from exc
        except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected) as exc:
            raise StorageContended(
                f"PostgreSQL at {self._where} aborted a transaction that raced another while "
                f"{doing}: {type(exc).__name__}"
            ) from exc
        except (psycopg.OperationalError, psycopg.errors.LockNotAvailable) as exc:
            raise StorageUnavailable(
                f"PostgreSQL at {self._where} is unavailable while {doing}: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
            ) from exc
        except psycopg.Error as exc:
            raise StorageError(f"PostgreSQL at {self._where}: {exc} (while {doing})") from exc

    # --- writing -------------------------------------------------------------------------------

    def _ensure_partitions(self, days: set[int]) -> None:
        months = {month_of(d) for d in days}
        missing = [m for m in months if m[0] not in self._partitions]
        if not missing:
            return
        with self._partition_lock, self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
            for name, first, end in sorted(missing):
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF events "
                    f"FOR VALUES FROM ({first}) TO ({end})"
                )
        self._partitions.update(m[0] for m in missing)

    def store_prepared(self, batches: Sequence[PreparedBatch]) -> list[StoreResult]:
        """One transaction (:meth:`_store`), tried again when another collector stored some of
        the same ids meanwhile."""
        if not any(batch.rows for batch in batches):
            return [StoreResult(0, b.duplicates, b.conflicts) for b in batches]
        days = {row[1] // 86400 for batch in batches for row in batch.rows}
        with self._errors("storing events"):
            self._ensure_partitions(days)
            relearnt = False
            for _ in range(_ATTEMPTS):
                try:
                    return self._store(batches)
                except psycopg.errors.UniqueViolation as exc:
                    # Another process stored one of these ids since our look-up: look again.
                    if exc.diag.constraint_name != "event_ids_pkey":
                        # An event whose id is missing from event_ids (stored by a collector
                        # older than postgres_0003, or the second copy of an id kept twice
                        # before it): put its id back, then look again.
                        self._restore_ids(batches)
                    continue
                except psycopg.errors.CheckViolation:
                    if relearnt:
                        raise
                    # A partition we knew was dropped by a purge in another process: learn
                    # again (once), and try again.
                    relearnt = True
                    self._partitions.clear()
                    self._ensure_partitions(days)
        raise StorageContended(
            f"PostgreSQL at {self._where}: other collectors kept storing the same events "
            f"({_ATTEMPTS} attempts)"
        )

    def _restore_ids(self, batches: Sequence[PreparedBatch]) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO event_ids SELECT DISTINCT ON (id) id, day, hash FROM events "
                "WHERE id = ANY(%b) ORDER BY id, time ON CONFLICT DO NOTHING",
                ([row[0] for batch in batches for row in batch.rows],),
            )

    def _store(self, batches: Sequence[PreparedBatch]) -> list[StoreResult]:
        """One transaction in three round trips (pipeline mode): look up, write, count."""
        with self._pool.connection() as conn:
            try:
                with conn.pipeline():
                    results = self._transaction(conn, batches)
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()  # outside the pipeline, which the error ended
                raise
        return results

    def _transaction(self, conn: Any, batches: Sequence[PreparedBatch]) -> list[StoreResult]:
        conn.execute("BEGIN")
        # 1. The apps' purge horizons and which ids are stored already, in one statement (one
        # snapshot: a purge committing between two reads could hide an id it deleted while
        # showing the horizon from before it, and the event would be stored again).
        apps = sorted({batch.app for batch in batches})
        found = conn.execute(
            "SELECT NULL::text, id, hash, NULL::bigint FROM event_ids WHERE id = ANY(%b) "
            "UNION ALL SELECT app, NULL, NULL, before FROM horizons WHERE app = ANY(%s)",
            ([row[0] for batch in batches for row in batch.rows], apps),
        ).fetchall()
        before: dict[str, int] = {app: t for app, _, _, t in found if app is not None}
        existing = {bytes(i): bytes(h) for app, i, h, _ in found if app is None}
        # Each batch as if stored after the ones before it: a later copy is a repeat.
        results: list[StoreResult] = []
        rows: dict[str, list[Row]] = {app: [] for app in apps}
        states: dict[str, dict[SessionKey, SessionState]] = {app: {} for app in apps}
        counts: Counter[tuple[str, int, str, str, str]] = Counter()
        for batch in batches:
            app = batch.app
            new, duplicates, conflicts = classify(batch.rows, existing, before.get(app, 0))
            existing.update((row[0], row[6]) for row in new)
            batch_counts, batch_states = kept_deltas(batch, new)
            rows[app] += new
            merged = states[app]
            for session, state in batch_states.items():
                old = merged.get(session)
                merged[session] = state if old is None else merge_session(old, state)[0]
            for day, metric, subject, key, n in batch_counts:
                counts[(app, day, metric, subject, key)] += n
            results.append(
                StoreResult(len(new), duplicates + batch.duplicates, conflicts + batch.conflicts)
            )
        # 2. The new ids, then the new events (plain INSERTs: an id stored by another process
        # since the look-up raises UniqueViolation, and the whole transaction is tried again),
        # and the session states, which say which flipped (struggle). The ids of every app go
        # first, in id order, so two groups wait on each other's ids in one order.
        fresh = sorted((row for app in apps for row in rows[app]), key=_first)
        if fresh:
            conn.execute(_IDS, _columns((r[0], r[1], r[6]) for r in fresh))
        flips = []
        for app in apps:
            if rows[app]:
                rows[app].sort(key=_first)
                *columns, bodies = _columns(rows[app])
                conn.execute(_INSERT, (app, *columns, [b.decode() for b in bodies]))
            if states[app]:
                ordered = _columns((*key, *state) for key, state in sorted(states[app].items()))
                flips.append((app, conn.execute(_SESSIONS, (app, *ordered))))
        for app, cur in flips:
            for day, command, failed, recovered in cur.fetchall():
                if failed:
                    counts[(app, day, "struggle", command, "failed")] += 1
                if recovered:
                    counts[(app, day, "struggle", command, "recovered")] += 1
        # 3. Every rollup delta at once, in key order (concurrent transactions lock them in
        # the same order: no deadlock), then COMMIT.
        if counts:
            # In the primary key's order: (app, metric, day, subject, key).
            keyed = sorted((a, m, d, sub, key, n) for (a, d, m, sub, key), n in counts.items())
            conn.execute(_ROLLUPS, _columns(keyed))
        conn.execute("COMMIT")
        return results

    def purge(self, app: str, before: int) -> int:
        cutoff = before // 86400
        removed = 0
        with (
            self._errors("purging"),
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor() as cur,
        ):
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
            cur.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'events'::regclass ORDER BY 1"
            )
            names = [name for (name,) in cur.fetchall()]
            if any(_month_days(name)[1] * 86400 <= before for name in names):
                # A month may be dropped: first let the stores in flight commit, and hold new
                # ones, so that what is counted, and whose ids are deleted, is all there is.
                cur.execute("LOCK TABLE events IN EXCLUSIVE MODE")
            cur.execute(
                "INSERT INTO horizons VALUES (%s, %s) ON CONFLICT (app) "
                "DO UPDATE SET before = GREATEST(horizons.before, excluded.before)",
                (app, before),
            )
            cur.execute("DELETE FROM sessions WHERE app = %s AND day < %s", (app, cutoff))
            for name in names:
                first, end = _month_days(name)
                if first * 86400 >= before:
                    continue
                if end * 86400 <= before:
                    cur.execute(
                        f"SELECT EXISTS (SELECT 1 FROM {name} WHERE app < %s OR app > %s)",
                        (app, app),
                    )
                    row = cur.fetchone()
                    if row is not None and not row[0]:
                        cur.execute(f"SELECT count(*) FROM {name}")
                        count = cur.fetchone()
                        removed += count[0] if count else 0
                        # Only this app has rows in these days: every id of them is in here.
                        cur.execute(
                            "DELETE FROM event_ids WHERE day >= %s AND day < %s", (first, end)
                        )
                        cur.execute(f"DROP TABLE {name}")
                        self._partitions.discard(name)
                        continue
                cur.execute(
                    f"WITH gone AS (DELETE FROM {name} WHERE app = %s AND time < %s "
                    "RETURNING id, day), ids AS (DELETE FROM event_ids AS i USING gone AS g "
                    "WHERE i.id = g.id AND i.day = g.day) SELECT count(*) FROM gone",
                    (app, before),
                )
                count = cur.fetchone()
                removed += count[0] if count else 0
        return removed

    def ping(self) -> None:
        with self._errors("checking the database"), self._pool.connection() as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        self._pool.close()

    # --- reading -------------------------------------------------------------------------------

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._errors("reading"), self._pool.connection() as conn:
            return conn.execute(sql, args).fetchall()

    def apps(self) -> list[str]:
        # A loose index scan: one probe per app instead of reading every rollup.
        rows = self._read(
            "WITH RECURSIVE a(app) AS (SELECT min(app) FROM rollups UNION ALL "
            "SELECT (SELECT min(app) FROM rollups WHERE app > a.app) FROM a "
            "WHERE a.app IS NOT NULL) SELECT app FROM a WHERE app IS NOT NULL"
        )
        return [r[0] for r in rows]

    def rollup(
        self, app: str, metric: str, first_day: int, last_day: int, by_day: bool = False
    ) -> list[RollupRow]:
        if by_day:
            sql = (
                "SELECT day, subject, key, sum(n)::bigint FROM rollups WHERE app = %s "
                "AND metric = %s AND day BETWEEN %s AND %s GROUP BY day, subject, key"
            )
        else:
            sql = (
                "SELECT NULL::int, subject, key, sum(n)::bigint FROM rollups WHERE app = %s "
                "AND metric = %s AND day BETWEEN %s AND %s GROUP BY subject, key"
            )
        return [tuple(r) for r in self._read(sql, (app, metric, first_day, last_day))]
