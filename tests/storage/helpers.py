"""Helpers for the storage tests: a policy, deterministic events, and a rollup snapshot."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from optin.analytics.rollups import METRICS, Key, deltas, session_states, struggle_deltas
from optin.policy import load
from optin.storage import Storage
from optin.storage.sqlite import path_from_url

POLICY = load(Path(__file__).parent.parent / "data" / "policy.toml")
APP = POLICY.app
#: 2026-01-05 00:00 UTC, a Monday.
T0 = 1_767_571_200


def command(
    n: int,
    *,
    hour: int = 0,
    session: str = "a" * 16,
    outcome: str = "success",
    path: str = "start",
    duration_ms: int = 1200,
    **extra: Any,
) -> dict[str, Any]:
    """A valid command event with a predictable id (``n``) at ``T0 + hour`` hours."""
    event: dict[str, Any] = {
        "id": f"{n:032x}",
        "kind": "command",
        "time": T0 + hour * 3600,
        "app_version": "1.0.0",
        "os": "linux",
        "arch": "x86_64",
        "python": "3.12",
        "ci": False,
        "interactive": True,
        "session": session,
        "command": path,
        "options": [],
        "dimensions": {},
        "outcome": outcome,
        "exit_code": 0 if outcome == "success" else 1,
        "duration_ms": duration_ms,
        "slow": False,
    }
    event.update(extra)
    return event


def active(n: int, *, hour: int = 0, period: str = "day", **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"{n:032x}",
        "kind": "active",
        "time": T0 + hour * 3600,
        "app_version": "1.0.0",
        "os": "linux",
        "arch": "x86_64",
        "python": "3.12",
        "ci": False,
        "interactive": True,
        "period": period,
    }
    event.update(extra)
    return event


def snapshot(db: Storage, app: str = APP) -> Counter[Key]:
    """Every rollup count of the app, keyed like :func:`optin.analytics.rollups.deltas`."""
    out: Counter[Key] = Counter()
    for metric in METRICS:
        for day, subject, key, n in db.rollup(app, metric, 0, 10**6, by_day=True):
            assert day is not None
            out[(day, metric, subject, key)] += n
    return out


def recompute(events: list[dict[str, Any]]) -> Counter[Key]:
    """Rollups computed from scratch from every event ever accepted."""
    out = deltas(events)
    _, moved = struggle_deltas({}, session_states(events))
    out.update(moved)
    return out


def uncovered(path: Path) -> list[tuple[str, int]]:
    """(app, rowid) of every event that no span of its app covers with an early enough time."""
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT app, rowid FROM events AS e WHERE NOT EXISTS (SELECT 1 FROM event_spans AS s "
            "WHERE s.app = e.app AND e.rowid BETWEEN s.low AND s.high AND s.oldest <= e.time)"
        ).fetchall()
    finally:
        db.close()


def stray_ids(url: str) -> tuple[list[bytes], list[bytes]]:
    """Ids in the id tables with no such event (same hash; on PostgreSQL same day too), and ids
    of events missing there or kept twice. Both empty when the tables agree.

    On SQLite only the events at or below the merge mark have their ids in the tables (the
    newer ones are in the storage's memory), and ``id_merge.merged`` must count ``event_ids``.
    """
    if url.startswith("sqlite:"):
        return _sqlite_stray_ids(path_from_url(url.split("?")[0]))
    import psycopg

    with psycopg.connect(url) as conn:
        orphans = conn.execute(
            "SELECT i.id FROM event_ids AS i WHERE NOT EXISTS (SELECT 1 FROM events AS e "
            "WHERE e.id = i.id AND e.day = i.day AND e.hash = i.hash)"
        ).fetchall()
        missing = conn.execute(
            "SELECT e.id FROM events AS e WHERE NOT EXISTS "
            "(SELECT 1 FROM event_ids AS i WHERE i.id = e.id) "
            "UNION ALL SELECT id FROM events GROUP BY id HAVING count(*) > 1"
        ).fetchall()
    return [bytes(r[0]) for r in orphans], [bytes(r[0]) for r in missing]


def _sqlite_stray_ids(path: str) -> tuple[list[bytes], list[bytes]]:
    ids = "SELECT id, hash FROM event_ids UNION ALL SELECT id, hash FROM event_ids_young"
    db = sqlite3.connect(path)
    try:
        orphans = db.execute(
            f"SELECT i.id FROM ({ids}) AS i WHERE NOT EXISTS "
            "(SELECT 1 FROM events AS e WHERE e.id = i.id AND e.hash = i.hash)"
        ).fetchall()
        missing = db.execute(
            f"SELECT e.id FROM events AS e WHERE e.rowid <= (SELECT upto FROM id_merge) "
            f"AND NOT EXISTS (SELECT 1 FROM ({ids}) AS i WHERE i.id = e.id) "
            f"UNION ALL SELECT id FROM ({ids}) GROUP BY id HAVING count(*) > 1 "
            "UNION ALL SELECT id FROM events GROUP BY id HAVING count(*) > 1"
        ).fetchall()
        (merged, counted) = db.execute(
            "SELECT merged, (SELECT count(*) FROM event_ids) FROM id_merge"
        ).fetchone()
    finally:
        db.close()
    assert merged == counted, f"id_merge.merged is {merged}, event_ids holds {counted}"
    return [r[0] for r in orphans], [r[0] for r in missing]
