"""The storage interface the collector and the analytics talk to, and what both back-ends share.

Exceptions::

    StorageError              anything the storage could not do (a bug or a broken database)
     ├── StorageUnavailable   locked beyond a short wait, server down: retry later (HTTP 503)
     │    └── StorageContended  lost a race with another transaction: retry now (HTTP 503)
     └── StorageFull          the disk is full (HTTP 507)

What a back-end stores (and nothing else): raw events with their content hash, the daily
rollups, a small per-session state for struggle, and per app the purge horizon. No column or
table records which events arrived together, in what order, or from where.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from optin.analytics.rollups import SessionKey, SessionState, deltas, session_states

__all__ = [
    "Batch",
    "Prepared",
    "PreparedBatch",
    "RollupRow",
    "Row",
    "Storage",
    "StorageContended",
    "StorageError",
    "StorageFull",
    "StorageUnavailable",
    "StoreResult",
    "classify",
    "kept_deltas",
    "prepare",
    "prepare_batch",
]


class StorageError(Exception):
    """The storage failed; the message says what and how to fix it."""


class StorageUnavailable(StorageError):
    """Temporarily unusable (locked, server down, pool exhausted): the client should retry."""

    retry_after = 5


class StorageContended(StorageUnavailable):
    """A transaction lost a race with another (a deadlock, an id stored meanwhile, again and
    again): retry at once; the storage itself is fine."""

    retry_after = 1


class StorageFull(StorageError):
    """No space left for the database: nothing was written."""


@dataclass(frozen=True)
class StoreResult:
    """What ``store`` did with a batch: every event is exactly one of the three."""

    accepted: int
    duplicates: int
    conflicts: int


#: One request's events for ``store_many``: (app, events).
Batch = tuple[str, Sequence[Mapping[str, Any]]]

#: (day, subject, key, n) -- ``day`` is None when summed over the days.
RollupRow = tuple[int | None, str, str, int]

_INT_FIELDS = ("time", "exit_code", "duration_ms", "positionals")


#: A prepared event as the ``events`` table stores it (besides ``app`` and PostgreSQL's
#: ``day``): id, time, kind, subject, outcome, duration_ms, hash, body. ``subject`` is the
#: command path, the custom event's name or the active period.
Row = tuple[Any, ...]


class Prepared(NamedTuple):
    """An event ready to be written: its row (binary id, content hash, canonical body) and the
    canonical event."""

    row: Row
    event: Mapping[str, Any]

    @property
    def id(self) -> bytes:
        value: bytes = self.row[0]
        return value

    @property
    def hash(self) -> bytes:
        value: bytes = self.row[6]
        return value


def _canonical(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """Integral floats become ints, so ``3600.0`` and ``3600`` are the same content."""
    ev = dict(event)
    for name in _INT_FIELDS:
        value = ev.get(name)
        if type(value) is float:
            ev[name] = int(value)
    props = ev.get("properties")
    if props and any(type(v) is float for v in props.values()):
        ev["properties"] = {k: int(v) if type(v) is float else v for k, v in props.items()}
    return ev


def _has_float(event: Mapping[str, Any]) -> bool:
    get = event.get
    props = get("properties")
    return (
        type(get("time")) is float
        or type(get("duration_ms")) is float
        or type(get("exit_code")) is float
        or type(get("positionals")) is float
        or bool(props and float in map(type, props.values()))
    )


def prepare(
    app: str, events: Sequence[Mapping[str, Any]], checked: bool = False
) -> tuple[list[Prepared], int, int]:
    """Canonicalise a batch and drop repeats inside it (the first copy of an id wins).

    Returns the distinct events and how many in-batch repeats were duplicates and conflicts.
    ``checked``: the events come from the collector's validators, which leave no integral
    float in an integer field; the search for them is skipped.
    """
    rows, kept, duplicates, conflicts = _prepare(app, events, checked)
    return [Prepared(row, ev) for row, ev in zip(rows, kept, strict=True)], duplicates, conflicts


def _prepare(
    app: str, events: Sequence[Mapping[str, Any]], checked: bool
) -> tuple[list[Row], list[Mapping[str, Any]], int, int]:
    """:func:`prepare` as two lists, rows and canonical events (the collector's hot path)."""
    seen: dict[bytes, bytes] = {}
    rows: list[Row] = []
    kept: list[Mapping[str, Any]] = []
    duplicates = conflicts = 0
    dumps, opt = orjson.dumps, orjson.OPT_SORT_KEYS
    # Copying an empty hash and feeding it is 0.3 µs cheaper than blake2b(data, digest_size=8):
    # the constructor parses its keywords on every call. Same digest.
    empty = hashlib.blake2b(digest_size=8)
    fromhex = bytes.fromhex
    prefix = app.encode() + b"\0"
    cut = len(prefix)
    for ev in events:
        if not checked and _has_float(ev):
            ev = _canonical(ev)
        # orjson returns its output in an ~8 KiB block whatever the length: the sliced copy
        # is right-sized, so a prepared 1,000-event batch holds 0.6 MB, not 7.8 MB.
        keyed = prefix + dumps(ev, option=opt)
        hasher = empty.copy()
        hasher.update(keyed)
        digest = hasher.digest()
        ident = fromhex(ev["id"])
        previous = seen.get(ident)
        if previous is not None:
            if previous == digest:
                duplicates += 1
            else:
                conflicts += 1
            continue
        seen[ident] = digest
        kind = ev["kind"]
        if kind == "command":
            row = (ident, ev["time"], kind, ev["command"], ev["outcome"], ev["duration_ms"])
        else:
            subject = ev["name"] if kind == "event" else ev["period"]
            row = (ident, ev["time"], kind, subject, None, None)
        rows.append((*row, digest, keyed[cut:]))
        kept.append(ev)
    return rows, kept, duplicates, conflicts


def classify(
    rows: list[Row], existing: Mapping[bytes, bytes], horizon: int
) -> tuple[list[Row], int, int]:
    """Split a batch's rows against what is stored (id -> content hash) and the purge horizon.

    Returns the new rows, and how many were duplicates (the same content again, or older than
    the horizon: possibly counted and purged already) and conflicts (an id with other content).
    """
    new: list[Row] = []
    duplicates = conflicts = 0
    for row in rows:
        known = existing.get(row[0])
        if known is None:
            if row[1] >= horizon:
                new.append(row)
            else:
                duplicates += 1
        elif known == row[6]:
            duplicates += 1
        else:
            conflicts += 1
    return new, duplicates, conflicts


class PreparedBatch(NamedTuple):
    """A batch with everything done that needs no database (the collector does it before the
    storage process, which then only writes).

    ``counts`` (rollup deltas) and ``states`` (session states) are those of every row: right in
    the usual case where no event is stored already; otherwise the storage recomputes them from
    the bodies of the rows it keeps.
    """

    app: str
    rows: list[Row]
    duplicates: int
    conflicts: int
    counts: list[tuple[int, str, str, str, int]]
    states: list[tuple[int, str, str, int | None, int | None]]


def prepare_batch(
    app: str, events: Sequence[Mapping[str, Any]], checked: bool = False
) -> PreparedBatch:
    """Canonical rows, in-batch repeats, rollup deltas and session states of one batch."""
    rows, fresh, duplicates, conflicts = _prepare(app, events, checked)
    return PreparedBatch(
        app,
        rows,
        duplicates,
        conflicts,
        [(*key, n) for key, n in deltas(fresh).items()],
        [(*key, *state) for key, state in session_states(fresh).items()],
    )


def kept_deltas(
    batch: PreparedBatch, new: list[Row]
) -> tuple[list[tuple[int, str, str, str, int]], dict[SessionKey, SessionState]]:
    """The rollup deltas and session states of the rows of a batch that are stored: the
    batch's own when all of them are (the usual case), else recomputed from their bodies."""
    if len(new) == len(batch.rows):
        states = {(day, session, cmd): (fail, ok) for day, session, cmd, fail, ok in batch.states}
        return list(batch.counts), states
    fresh = [loads_body(r[7]) for r in new]
    return [(*key, n) for key, n in deltas(fresh).items()], session_states(fresh)


class Storage(ABC):
    """One database: raw events, rollups and their schema. Safe to call from several threads."""

    url: str

    def store(self, app: str, events: Sequence[Mapping[str, Any]]) -> StoreResult:
        """Write validated events and their rollups in one transaction, committed on return.

        A repeated id is a duplicate; the same id with other content is a conflict (the first
        write wins). Events older than the app's purge horizon count as duplicates: their raw
        copy may have been counted and purged already, so they are never counted twice.
        """
        return self.store_many([(app, events)])[0]

    def store_many(self, batches: Sequence[Batch]) -> list[StoreResult]:
        """Store several batches, each with its own result, as if stored one after another.

        One transaction: all are committed, or it raises and none is.
        """
        return self.store_prepared([prepare_batch(app, events) for app, events in batches])

    @abstractmethod
    def store_prepared(self, batches: Sequence[PreparedBatch]) -> list[StoreResult]:
        """``store_many`` for batches prepared already (the collector prepares them before
        it waits for the storage, see :class:`PreparedBatch`)."""

    @abstractmethod
    def ping(self) -> None:
        """Raise :class:`StorageUnavailable` unless the database answers."""

    @abstractmethod
    def purge(self, app: str, before: int) -> int:
        """Delete the app's raw events (and session state) older than ``before`` (Unix seconds).

        Rollups are kept. Returns the number of raw events removed.
        """

    @abstractmethod
    def close(self) -> None:
        """Release connections; the object is unusable afterwards."""

    # --- what analytics reads -----------------------------------------------------------------

    @abstractmethod
    def apps(self) -> list[str]:
        """Every app with rollups, sorted."""

    @abstractmethod
    def rollup(
        self, app: str, metric: str, first_day: int, last_day: int, by_day: bool = False
    ) -> list[RollupRow]:
        """Summed counts of one metric over ``first_day..last_day`` (inclusive, UTC day numbers).

        Grouped by (subject, key), and by day too when ``by_day``.
        """

    #: The driver's parameter placeholder: ``?`` for sqlite3, ``%s`` for psycopg.
    _mark = "?"

    @abstractmethod
    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Run one read query and return its rows."""

    def last_day(self, app: str) -> int | None:
        """The latest day with any rollup for the app (the report's default end)."""
        # One index probe per metric that every kind of event feeds.
        m = self._mark
        rows = self._read(
            "SELECT max(d) FROM ("
            + " UNION ALL ".join(
                f"SELECT max(day) AS d FROM rollups WHERE app = {m} AND metric = '{metric}'"
                for metric in ("outcome", "event", "active")
            )
            + ") AS x",
            (app, app, app),
        )
        return rows[0][0] if rows else None

    def raw_events(self, app: str) -> list[dict[str, Any]]:
        """Every raw event still kept for the app (tests and recomputation; not for hot paths)."""
        sql = f"SELECT body FROM events WHERE app = {self._mark} ORDER BY time, id"
        return [loads_body(r[0]) for r in self._read(sql, (app,))]

    def horizon(self, app: str) -> int:
        """The app's purge horizon: events before it are gone (0 if never purged)."""
        rows = self._read(f"SELECT before FROM horizons WHERE app = {self._mark}", (app,))
        return int(rows[0][0]) if rows else 0

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def loads_body(body: bytes | str) -> dict[str, Any]:
    """Decode a stored body."""
    value: dict[str, Any] = orjson.loads(body)
    return value
