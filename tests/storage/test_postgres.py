"""PostgreSQL only: concurrent start-up, concurrent writers, a server that goes away."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import pq
from tests.conftest import PgServer
from tests.storage.helpers import APP, T0, command, recompute, snapshot, stray_ids

from optin.storage import StorageContended, StorageUnavailable, StoreResult, open_storage
from optin.storage.base import prepare_batch
from optin.storage.migrations import POSTGRES
from optin.storage.postgres import PostgresStorage, month_of

_OPEN = """
import sys
from optin.storage import open_storage
with open_storage(sys.argv[1]) as db:
    db.store("sample-cli", [])
print("ok")
"""


def test_migrations_safe_with_processes_starting_at_once(pg_url: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN, pg_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
        assert out.strip() == b"ok"
    with psycopg.connect(pg_url) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM optin_migrations ORDER BY 1")]
    assert names == sorted(m.__name__ for m in POSTGRES)


def test_concurrent_writers_count_each_event_once(pg_url: str) -> None:
    """Four threads (pool connections) send overlapping batches, as retries would."""
    events = [
        command(i, hour=i % 40, session=f"{i % 7:016x}", outcome=("success", "failure")[i % 3 == 0])
        for i in range(400)
    ]
    batches = [events[start : start + 60] for start in range(0, 400, 20)]
    with open_storage(pg_url + "?pool_size=4") as db, ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda b: db.store(APP, b), batches * 2))
        assert sum(r.accepted for r in results) == 400
        assert sum(r.conflicts for r in results) == 0
        assert sum(r.accepted + r.duplicates for r in results) == sum(map(len, batches * 2))
        assert snapshot(db) == recompute(events)


def test_server_down_is_unavailable_then_recovers(pg_server: PgServer, pg_url: str) -> None:
    with open_storage(pg_url + "?pool_timeout=1") as db:
        assert db.store(APP, [command(1)]) == StoreResult(1, 0, 0)
        pg_server.stop()
        try:
            start = time.monotonic()
            with pytest.raises(StorageUnavailable):
                db.store(APP, [command(2)])
            with pytest.raises(StorageUnavailable):
                db.ping()
            assert time.monotonic() - start < 10
        finally:
            pg_server.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                assert db.store(APP, [command(2)]) == StoreResult(1, 0, 0)
                break
            except StorageUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    with pytest.raises(StorageUnavailable):
        open_storage(f"postgresql://postgres@127.0.0.1:{_closed_port()}/x")


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_purge_drops_whole_month_partitions(pg_url: str) -> None:
    events = [command(i, hour=24 * i) for i in range(100)]  # 2026-01-05 .. 2026-04-14
    with open_storage(pg_url) as db:
        db.store(APP, events)
        parts = _partitions(pg_url)
        assert parts == ["events_p202601", "events_p202602", "events_p202603", "events_p202604"]
        cutoff = events[60]["time"]  # 2026-03-06: January and February go entirely
        assert db.purge(APP, cutoff) == 60
        assert _partitions(pg_url) == ["events_p202603", "events_p202604"]
        assert stray_ids(pg_url) == ([], [])  # their ids went with them, the rest stay
        assert db.store(APP, [command(1000, hour=24 * 61)]) == StoreResult(1, 0, 0)
        # A kept id with another day: a conflict, found in event_ids.
        assert db.store(APP, [command(61, hour=24 * 62)]) == StoreResult(0, 0, 1)
        assert stray_ids(pg_url) == ([], [])


def _partitions(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'events'::regclass ORDER BY 1"
            )
        ]


def _insert_elsewhere(
    conn: psycopg.Connection[Any], event: dict[str, Any], ids: bool = True
) -> None:
    """Another collector's transaction storing ``event`` (its raw row and, with ``ids``, its
    id), not committed."""
    row = prepare_batch(APP, [event]).rows[0]
    ident, when, *middle, body = row
    if ids:
        conn.execute("INSERT INTO event_ids VALUES (%s, %s, %s)", (ident, when // 86400, row[6]))
    conn.execute(
        "INSERT INTO events (id, app, day, time, kind, subject, outcome, duration_ms, hash, body)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (ident, APP, when // 86400, when, *middle, body.decode()),
    )


@pytest.mark.parametrize("theirs", ["same", "other", "other-day"])
def test_an_id_another_collector_stores_meanwhile_is_counted_once(pg_url: str, theirs: str) -> None:
    """Its copy is not committed when we look our ids up; our insert waits on it, fails once it
    commits, and the transaction is tried again: a duplicate (or a conflict), never an error."""
    mine = command(1)
    with open_storage(pg_url) as db:
        db.store(APP, [command(0)])  # the month's partition exists
        with psycopg.connect(pg_url) as other, ThreadPoolExecutor(1) as pool:
            copy = {
                "same": mine,
                "other": {**mine, "duration_ms": 7},
                "other-day": {**mine, "time": mine["time"] + 2 * 86400},  # another partition too
            }[theirs]
            _insert_elsewhere(other, copy)
            storing = pool.submit(db.store, APP, [mine, command(2)])
            time.sleep(0.5)
            assert not storing.done(), "our insert waits for their transaction"
            other.commit()
            result = storing.result(timeout=15)
        assert result == (StoreResult(1, 1, 0) if theirs == "same" else StoreResult(1, 0, 1))
        stored = [e["id"] for e in db.raw_events(APP)]
        assert sorted(stored) == [command(i)["id"] for i in range(3)]
        # Only what this store accepted was counted (their side wrote no rollups).
        assert snapshot(db) == recompute([command(0), command(2)])


def _made_before_0002(url: str, events: list[dict[str, Any]]) -> None:
    """A database as postgres_0001 left it, holding ``events`` (no event_ids then)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE optin_migrations (name TEXT PRIMARY KEY, applied_at double precision)"
        )
        with conn.transaction(), conn.cursor() as cur:
            POSTGRES[0](cur)
            cur.execute("INSERT INTO optin_migrations VALUES (%s, 0)", (POSTGRES[0].__name__,))
            for name, first, end in sorted({month_of(e["time"] // 86400) for e in events}):
                cur.execute(
                    f"CREATE TABLE {name} PARTITION OF events FOR VALUES FROM ({first}) TO ({end})"
                )
        for event in events:
            _insert_elsewhere(conn, event, ids=False)


def test_migration_replaces_the_app_day_index_with_brin(pg_url: str) -> None:
    """A database made before postgres_0002 and 0003 keeps its events, their ids are looked up
    in event_ids, and it purges as before."""
    _made_before_0002(pg_url, [command(0), command(1, hour=48)])
    with open_storage(pg_url) as db:
        assert stray_ids(pg_url) == ([], [])  # postgres_0003 filled event_ids
        assert db.store(APP, [command(0), command(2, hour=72)]) == StoreResult(1, 1, 0)
        assert db.purge(APP, T0 + 48 * 3600) == 1
        assert [e["id"] for e in db.raw_events(APP)] == [command(1)["id"], command(2)["id"]]
        assert stray_ids(pg_url) == ([], [])  # the purged event's id went with it
    with psycopg.connect(pg_url) as conn:
        indexes = dict(
            conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events'"
            ).fetchall()
        )
    assert "events_app_day" not in indexes
    assert 'USING brin ("time")' in indexes["events_time"]


def test_a_group_is_three_round_trips(pg_url: str, tmp_path: Path) -> None:
    """BEGIN with the look-up, the inserts, the rollups with COMMIT: three waits for the
    server, whatever the number of batches (a libpq trace of the pool's one connection)."""
    group = [(APP, [command(i)]) for i in range(4)] + [("other-app", [command(9)])]
    trace = tmp_path / "trace"
    with open_storage(pg_url + "?pool_size=1") as db:
        db.store(APP, [command(100)])  # the month's partition exists
        assert isinstance(db, PostgresStorage)
        with trace.open("w") as out:
            with db._pool.connection() as conn:
                conn.pgconn.trace(out.fileno())
                conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            assert db.store_many(group) == [StoreResult(1, 0, 0)] * 5
            with db._pool.connection() as conn:
                conn.pgconn.untrace()
    sent = [line.split("\t") for line in trace.read_text().splitlines() if line[:2] == "F\t"]
    # The client asks for results (Flush) twice, then ends the transaction with one Sync (and
    # a Flush after it when the results are not in yet): three waits for the server.
    asked = [m[2] for m in sent if m[2] in ("Flush", "Sync")]
    assert asked[:3] == ["Flush", "Flush", "Sync"] and asked[3:] in ([], ["Flush"]), asked
    assert sent[0][3] == ' "" "BEGIN" 0' and [m[3] for m in sent if "COMMIT" in m[-1]] == [
        ' "" "COMMIT" 0'
    ]
    assert trace.read_text().count("INSERT INTO events (") == 2  # one per app


def test_a_partition_dropped_by_another_collector_is_made_again(pg_url: str) -> None:
    with open_storage(pg_url) as mine, open_storage(pg_url) as theirs:
        assert mine.store(APP, [command(1)]) == StoreResult(1, 0, 0)  # knows January's
        assert theirs.purge(APP, T0 + 40 * 86400) == 1  # January goes, with its partition
        assert _partitions(pg_url) == []
        # Another app's January event: our insert meets the missing partition, learns, retries.
        assert mine.store("other-app", [command(2)]) == StoreResult(1, 0, 0)
        assert _partitions(pg_url) == ["events_p202601"]
        assert [e["id"] for e in mine.raw_events("other-app")] == [command(2)["id"]]


class _AlwaysRaced(PostgresStorage):
    """Every transaction meets an id stored meanwhile (as under a storm of racing retries)."""

    tries = 0

    def _transaction(self, conn: Any, batches: Any) -> Any:
        _AlwaysRaced.tries += 1
        raise psycopg.errors.UniqueViolation("duplicate key value violates unique constraint")


def test_a_race_lost_every_time_is_contended_not_an_error(pg_url: str) -> None:
    with _AlwaysRaced(pg_url) as db:
        with pytest.raises(StorageContended, match="kept storing the same events"):
            db.store(APP, [command(1)])
        assert _AlwaysRaced.tries == 5
        db.ping()  # the connection went back to the pool clean
        assert db.raw_events(APP) == []


def test_an_id_kept_twice_before_event_ids_is_put_back_when_met(pg_url: str) -> None:
    """Two copies of one id on other days (possible before postgres_0003): purging the one
    event_ids stood for leaves the other without an id; a retry of it puts the id back."""
    first, second = command(7), command(7, hour=24 * 60)  # January and March
    _made_before_0002(pg_url, [first, second])
    with open_storage(pg_url) as db:
        assert db.purge(APP, T0 + 40 * 86400) == 1  # January goes, and the id with it
        assert stray_ids(pg_url) == ([], [bytes.fromhex(second["id"])])
        assert db.store(APP, [second, command(8, hour=24 * 60)]) == StoreResult(1, 1, 0)
        assert stray_ids(pg_url) == ([], [])


def test_a_purge_that_drops_a_month_waits_for_the_stores_in_flight(pg_url: str) -> None:
    """Else a store committing into the month as it is dropped would leave its id behind."""
    with open_storage(pg_url) as db:
        db.store(APP, [command(1)])  # January's partition
        with psycopg.connect(pg_url) as other, ThreadPoolExecutor(1) as pool:
            _insert_elsewhere(other, command(2))  # a store in flight, not committed
            purging = pool.submit(db.purge, APP, T0 + 40 * 86400)
            time.sleep(0.5)
            assert not purging.done(), "the purge waits for the store"
            other.commit()
            assert purging.result(timeout=15) == 2  # it counts the late event too
        assert _partitions(pg_url) == []
        assert stray_ids(pg_url) == ([], [])
