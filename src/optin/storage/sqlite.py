"""SQLite back-end: one file, WAL, one writer per process, a short busy timeout.

Every ``store`` (or ``store_many``: several batches, as the collector groups the requests that
arrive together) is one ``BEGIN IMMEDIATE`` transaction: per batch, look up which ids exist,
insert the new events with one ``executemany`` and merge the session states; then upsert the
rollup deltas of all the batches at once (aggregated in memory, so a group of 100-event batches
touches a few hundred rollup rows). Holding the write lock from the start makes the look-up and
the insert atomic, also across collector processes.

Deduplication without a unique index on the events: such an index on random ids puts every new
event on a random page, and a commit writes each page it changed to the WAL, so storing cost
about one 4 KiB page write per event, more as the index outgrew the page cache. Instead, the
ids of the events above the mark ``id_merge.upto`` (the newest, at most ``merge_every``) are
held in memory, and every ``merge_every`` events they are inserted into the id tables in one
sorted pass, which writes each page it touches once: into ``event_ids`` while it is small, else
into the small ``event_ids_young``, one slice of which then moves into ``event_ids`` (see
:func:`merge_ids`). A look-up checks memory, then both tables. The copy in memory is derived
from the file: each transaction first reads the events other processes appended since (none,
with one collector), and rebuilds it when ``id_merge.generation`` moved (another process merged
or purged) or after a rollback.

No index on the events' time: a purge finds its rows through ``event_spans``, rowid ranges
of one app's events with the oldest time among them (one row written per app and transaction,
extended until it covers ``span_rows`` rowids), and visits only the spans older than its
horizon. The index cost every event an insert into it, about 1 µs of the storage process's 7.

A lock held by someone else longer than ``busy_timeout_ms`` (default 500) raises
:class:`StorageUnavailable` so the collector answers 503 instead of queueing requests.

URL: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``; query parameters
``busy_timeout_ms``, ``synchronous`` (``normal``, the default: a committed batch survives the
collector being killed; ``full`` also survives power loss, at one fsync per batch),
``max_size_mb`` (a cap on the database file: at the cap, storing fails with
:class:`StorageFull`, HTTP 507, long before the disk itself is full), ``merge_every``
(default 100000: ids kept in memory before a merge, about 12 MB) and ``span_rows`` (default
65536: the rowids one span covers at most, so what a purge scans beyond what it deletes).
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

from optin.analytics.rollups import SessionKey, SessionState
from optin.analytics.rollups import struggle_deltas as _struggle
from optin.storage.base import (
    PreparedBatch,
    RollupRow,
    Storage,
    StorageError,
    StorageFull,
    StorageUnavailable,
    StoreResult,
    classify,
    kept_deltas,
)
from optin.storage.migrations import apply_sqlite

__all__ = ["MERGE_EVERY", "SQLiteStorage", "merge_ids", "path_from_url", "span_loaded_rows"]

_CHUNK = 500
MERGE_EVERY = 100_000
#: Where a slice of the id space starts: the first two bytes of an id, 0 to 65,535.
_CURSOR_END = 1 << 16
SPAN_ROWS = 1 << 16
_UPSERT = (
    "INSERT INTO rollups (app, metric, day, subject, key, n) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (app, metric, day, subject, key) DO UPDATE SET n = n + excluded.n"
)
_INSERT = (
    "INSERT INTO events (app, id, time, kind, subject, outcome, duration_ms, hash, body) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def path_from_url(url: str) -> str:
    """``sqlite:///a.db`` -> ``a.db``; ``sqlite:////tmp/a.db`` -> ``/tmp/a.db``."""
    if not url.startswith("sqlite:///"):
        raise StorageError(f"{url!r} is not a SQLite URL: use sqlite:///relative or sqlite:////abs")
    path = urlsplit(url).path[1:]
    if not path:
        raise StorageError(f"{url!r} names no file: use sqlite:///optin.db")
    return path


def merge_ids(db: sqlite3.Connection) -> None:
    """Insert the ids of the events above the mark into the id tables; move the mark up.

    Run inside a write transaction. Also for bulk loaders that write ``events`` directly.

    While ``event_ids`` is small next to the merge, the ids go straight in, in one sorted pass.
    Once it is larger, they go into ``event_ids_young`` and one slice of the id space, 1/k of
    it, moves from there into ``event_ids``. A merge of m ids then dirties the young table (k
    slices of about m/2 ids each) and 1/k of the big one (n ids): pages for about k*m/2 + n/k
    ids, least at k = sqrt(2n/m), where a straight merge dirties pages for n ids once n is
    past m. At 3 M ids, 100,000 per merge: 3.0 µs per id against 5.3 (``/tmp`` script).
    """
    upto, merged, cursor = db.execute("SELECT upto, merged, cursor FROM id_merge").fetchone()
    (top,) = db.execute("SELECT coalesce(max(rowid), 0) FROM events").fetchone()
    if top <= upto:
        return  # nothing above the mark
    slices = round(math.sqrt(2 * merged / (top - upto)))
    fresh = "SELECT id, hash FROM events WHERE rowid > ? ORDER BY id"
    if slices <= 1:
        added = db.execute(f"INSERT INTO event_ids {fresh}", (upto,)).rowcount
        # Ids left young from when event_ids was larger (a purge shrank it) go in too.
        added += _move_young(db, 0, _CURSOR_END)
        cursor = 0
    else:
        db.execute(f"INSERT INTO event_ids_young {fresh}", (upto,))
        end = min(cursor + math.ceil(_CURSOR_END / slices), _CURSOR_END)
        added = _move_young(db, cursor, end)
        cursor = end % _CURSOR_END
    db.execute(
        "UPDATE id_merge SET upto = ?, merged = merged + ?, cursor = ?, "
        "generation = generation + 1",
        (top, added, cursor),
    )


def _move_young(db: sqlite3.Connection, low: int, high: int) -> int:
    """Move the young ids whose first two bytes are in ``low..high-1`` into ``event_ids``."""
    where, args = "id >= ?", [low.to_bytes(2, "big")]
    if high < _CURSOR_END:
        where += " AND id < ?"  # a blob's prefix sorts before every longer blob starting so
        args.append(high.to_bytes(2, "big"))
    moved: int = db.execute(
        f"INSERT INTO event_ids SELECT id, hash FROM event_ids_young WHERE {where}", args
    ).rowcount
    db.execute(f"DELETE FROM event_ids_young WHERE {where}", args)
    return moved


def span_loaded_rows(db: sqlite3.Connection) -> None:
    """Cover the rows above every span with spans of 65,536 rowids at most (per app).

    For bulk loaders that write ``events`` directly, so that purges find what they loaded.
    """
    db.execute(
        "INSERT INTO event_spans SELECT app, min(rowid), max(rowid), min(time) FROM events "
        "WHERE rowid > (SELECT coalesce(max(high), 0) FROM event_spans) "
        f"GROUP BY app, rowid / {SPAN_ROWS}"
    )


class SQLiteStorage(Storage):
    """Storage in one SQLite file (see the module docstring)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = path_from_url(url)
        params = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
        self.busy_timeout = int(params.get("busy_timeout_ms", "500")) / 1000
        synchronous = params.get("synchronous", "normal").upper()
        if synchronous not in ("NORMAL", "FULL", "OFF"):
            raise StorageError(f"synchronous={synchronous.lower()}: use normal or full")
        self.merge_every = int(params.get("merge_every", MERGE_EVERY))
        if self.merge_every < 1:
            raise StorageError("merge_every must be at least 1")
        self.span_rows = int(params.get("span_rows", SPAN_ROWS))
        if self.span_rows < 1:
            raise StorageError("span_rows must be at least 1")
        #: id -> content hash of the events above id_merge.upto, as of ``_generation``.
        self._recent: dict[bytes, bytes] = {}
        self._generation: int | None = None  # None: rebuild before use
        self._seen = 0  # the highest rowid in _recent (or the mark)
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        with self._errors("opening"):
            self._db = self._connect()
            self._db.execute(f"PRAGMA synchronous = {synchronous}")
            # Checkpoint every ~40 MB of WAL instead of 4 MB: hot pages (the id index, today's
            # rollups) are written back once per checkpoint, and fsyncs are 10x rarer.
            self._db.execute("PRAGMA wal_autocheckpoint = 10000")
            self._db.execute("PRAGMA journal_size_limit = 67108864")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal" and self.path != ":memory:":
                raise StorageError(f"{self.path}: cannot switch to WAL mode (got {mode})")
            apply_sqlite(self._db)
            if "max_size_mb" in params:
                page = self._db.execute("PRAGMA page_size").fetchone()[0]
                pages = int(float(params["max_size_mb"]) * (1 << 20)) // page
                self._db.execute(f"PRAGMA max_page_count = {max(1, pages)}")
            self._reader = self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        # 8 MiB of pages: measured as fast as 32 MiB for ingest (hot pages are few: the newest
        # events, today's rollups), and the collector must stay under 150 MB with its child.
        db.execute("PRAGMA cache_size = -8192")
        return db

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise StorageUnavailable(
                    f"{self.path} is locked by another process (waited {self.busy_timeout:g} s "
                    f"while {doing}); retry shortly"
                ) from exc
            if code == sqlite3.SQLITE_FULL:
                raise StorageFull(f"{self.path}: the disk is full ({doing}): free space") from exc
            if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR):
                raise StorageUnavailable(f"{self.path}: {exc} ({doing})") from exc
            raise StorageError(f"{self.path}: {exc} ({doing})") from exc

    # --- writing -------------------------------------------------------------------------------

    def store_prepared(self, batches: Sequence[PreparedBatch]) -> list[StoreResult]:
        """``store_many`` for batches prepared already (by the collector, see PreparedBatch).

        One transaction for the lot: one commit, and the rollup rows the batches share are
        upserted once (groups of 8 batches stored 33-59 % more events per second here).
        """
        if not any(batch.rows for batch in batches):
            return [StoreResult(0, b.duplicates, b.conflicts) for b in batches]
        with self._write_lock, self._errors("storing events"):
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                self._catch_up()
                counts: dict[tuple[str, int, str, str, str], int] = {}
                spans: dict[str, list[int]] = {}
                results = [
                    self._write(batch, counts, spans)
                    if batch.rows
                    else StoreResult(0, batch.duplicates, batch.conflicts)
                    for batch in batches
                ]
                for app, (low, high, oldest) in spans.items():
                    self._span(app, low, high, oldest)
                db.executemany(
                    _UPSERT,
                    [
                        (app, metric, day, subject, key, n)
                        for (app, day, metric, subject, key), n in counts.items()
                    ],
                )
                if len(self._recent) >= self.merge_every:
                    self._merge()
                db.execute("COMMIT")
            except BaseException:
                self._generation = None  # what memory holds may not have been committed
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return results

    def _catch_up(self) -> None:
        """Bring the ids in memory up to date with the file (inside the write transaction)."""
        db = self._db
        upto, generation = db.execute("SELECT upto, generation FROM id_merge").fetchone()
        if generation != self._generation:
            self._recent.clear()
            self._generation, self._seen = generation, upto
        # Another process's events since our last transaction (none when we are the only one).
        for rowid, ident, digest in db.execute(
            "SELECT rowid, id, hash FROM events WHERE rowid > ?", (self._seen,)
        ):
            self._recent[ident] = digest
            self._seen = rowid

    def _merge(self) -> None:
        """Move the ids in memory into the id tables (:func:`merge_ids`)."""
        merge_ids(self._db)
        self._recent.clear()
        self._generation = None

    def _write(
        self,
        batch: PreparedBatch,
        counts: dict[tuple[str, int, str, str, str], int],
        spans: dict[str, list[int]],
    ) -> StoreResult:
        """Insert one batch's new rows and session states; add its rollup deltas to counts and
        its rowids and oldest time to the app's span in ``spans``."""
        db = self._db
        app = batch.app
        row = db.execute("SELECT before FROM horizons WHERE app = ?", (app,)).fetchone()
        horizon = row[0] if row else 0
        rows = batch.rows
        new, duplicates, conflicts = classify(rows, self._existing([r[0] for r in rows]), horizon)
        duplicates += batch.duplicates
        conflicts += batch.conflicts
        batch_counts, states = kept_deltas(batch, new)
        if new:
            db.executemany(_INSERT, [(app, *r) for r in new])
            recent = self._recent
            for r in new:
                recent[r[0]] = r[6]
            top = self._seen = db.execute("SELECT max(rowid) FROM events").fetchone()[0]
            # One executemany under the write lock: its rowids follow each other.
            oldest = min([r[1] for r in new])
            span = spans.get(app)
            if span is None:
                spans[app] = [top - len(new) + 1, top, oldest]
            else:
                span[1], span[2] = top, min(span[2], oldest)
        if states:
            merged, moved = _struggle(self._sessions(app, states), states)
            batch_counts.extend((*key, n) for key, n in moved.items())
            db.executemany(
                "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                [(app, *key, *state) for key, state in merged.items()],
            )
        get = counts.get
        for day, metric, subject, key, n in batch_counts:
            k = (app, day, metric, subject, key)
            counts[k] = get(k, 0) + n
        return StoreResult(len(new), duplicates, conflicts)

    def _span(self, app: str, low: int, high: int, oldest: int) -> None:
        """Record that rowids low..high hold events of the app no older than ``oldest``."""
        db = self._db
        last = db.execute(
            "SELECT low FROM event_spans WHERE app = ? ORDER BY low DESC LIMIT 1", (app,)
        ).fetchone()
        if last is not None and last[0] <= low and high - last[0] < self.span_rows:
            low = last[0]
        db.execute(
            "INSERT INTO event_spans VALUES (?, ?, ?, ?) ON CONFLICT (app, low) "
            "DO UPDATE SET high = max(high, excluded.high), oldest = min(oldest, excluded.oldest)",
            (app, low, high, oldest),
        )

    def _existing(self, ids: list[bytes]) -> dict[bytes, bytes]:
        recent = self._recent
        found = {i: recent[i] for i in ids if i in recent}
        if found:
            ids = [i for i in ids if i not in found]
        step = _CHUNK // 2  # each id is bound twice: at most 500 variables (SQLite < 3.32: 999)
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            marks = ",".join("?" * len(chunk))
            found.update(
                self._db.execute(
                    f"SELECT id, hash FROM event_ids WHERE id IN ({marks}) UNION ALL "
                    f"SELECT id, hash FROM event_ids_young WHERE id IN ({marks})",
                    chunk + chunk,
                )
            )
        return found

    def _sessions(
        self, app: str, keys: Mapping[SessionKey, SessionState]
    ) -> dict[SessionKey, SessionState]:
        found: dict[SessionKey, SessionState] = {}
        flat = list(keys)
        for start in range(0, len(flat), _CHUNK // 3):
            chunk = flat[start : start + _CHUNK // 3]
            values = ",".join(["(?, ?, ?)"] * len(chunk))
            args: list[Any] = []
            for key in chunk:
                args.extend(key)
            args.append(app)
            # A join, not "(day, session, command) IN (VALUES ...)": SQLite would scan the app.
            for day, session, command, fail, ok in self._db.execute(
                f"WITH k(day, session, command) AS (VALUES {values}) "
                "SELECT s.day, s.session, s.command, s.fail_min, s.ok_max FROM k "
                "JOIN sessions AS s ON s.app = ? AND s.day = k.day "
                "AND s.session = k.session AND s.command = k.command",
                args,
            ):
                found[(day, session, command)] = (fail, ok)
        return found

    def purge(self, app: str, before: int) -> int:
        with self._write_lock, self._errors("purging"):
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                merge_ids(db)  # every id in the id tables, so they go with their events
                removed = dropped = 0  # events, and ids out of event_ids
                old = "FROM events WHERE rowid BETWEEN ? AND ? AND app = ? AND time < ?"
                for low, high in db.execute(
                    "SELECT low, high FROM event_spans WHERE app = ? AND oldest < ?",
                    (app, before),
                ).fetchall():
                    where = (low, high, app, before)
                    ids = f"WHERE id IN (SELECT id {old})"
                    dropped += db.execute(f"DELETE FROM event_ids {ids}", where).rowcount
                    db.execute(f"DELETE FROM event_ids_young {ids}", where)
                    removed += db.execute(f"DELETE {old}", where).rowcount
                    (oldest,) = db.execute(
                        "SELECT min(time) FROM events WHERE rowid BETWEEN ? AND ? AND app = ?",
                        (low, high, app),
                    ).fetchone()
                    if oldest is None:
                        db.execute("DELETE FROM event_spans WHERE app = ? AND low = ?", (app, low))
                    else:
                        db.execute(
                            "UPDATE event_spans SET oldest = ? WHERE app = ? AND low = ?",
                            (oldest, app, low),
                        )
                # New rowids follow the highest left, which may be below the mark now.
                # And the other processes must rebuild their memory (merge_ids may have had
                # nothing to merge, so it moved nothing).
                db.execute(
                    "UPDATE id_merge SET upto = (SELECT coalesce(max(rowid), 0) FROM events), "
                    "merged = merged - ?, generation = generation + 1",
                    (dropped,),
                )
                db.execute("DELETE FROM sessions WHERE app = ? AND day < ?", (app, before // 86400))
                db.execute(
                    "INSERT INTO horizons VALUES (?, ?) ON CONFLICT (app) "
                    "DO UPDATE SET before = max(before, excluded.before)",
                    (app, before),
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            finally:
                self._generation = None
        return int(removed)

    def ping(self) -> None:
        with self._read_lock, self._errors("checking the database"):
            self._reader.execute("SELECT 1 FROM optin_migrations LIMIT 1").fetchall()

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            self._db.close()
            self._reader.close()

    # --- reading -------------------------------------------------------------------------------

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._read_lock, self._errors("reading"):
            return self._reader.execute(sql, args).fetchall()

    def apps(self) -> list[str]:
        # A skip-scan over the primary key: one probe per app, not a scan of every rollup.
        apps: list[str] = []
        row = self._read("SELECT min(app) FROM rollups")
        while row and row[0][0] is not None:
            apps.append(row[0][0])
            row = self._read("SELECT min(app) FROM rollups WHERE app > ?", (apps[-1],))
        return apps

    def rollup(
        self, app: str, metric: str, first_day: int, last_day: int, by_day: bool = False
    ) -> list[RollupRow]:
        if by_day:
            sql = (
                "SELECT day, subject, key, sum(n) FROM rollups WHERE app = ? AND metric = ? "
                "AND day BETWEEN ? AND ? GROUP BY day, subject, key"
            )
        else:
            sql = (
                "SELECT NULL, subject, key, sum(n) FROM rollups WHERE app = ? AND metric = ? "
                "AND day BETWEEN ? AND ? GROUP BY subject, key"
            )
        return [tuple(r) for r in self._read(sql, (app, metric, first_day, last_day))]
