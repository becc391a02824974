"""PostgreSQL ``store_prepared`` on a fresh database against one that holds older months.

    python bench/bench_pg_partitions.py [--months 1,4] [--per-month 300000] [--groups 250]

A collector keeping 90 days has four monthly partitions. Looking a group's ids up among the
events probed every one of them (the primary key must contain the partition key, ``day``):
11.3 µs of server time per event with four, 1.4 with one. Since ``postgres_0003`` the look-up
reads ``event_ids``, one unpartitioned table. For each ``--months`` value this fills a
throwaway server (fsync on) with ``--per-month`` events in each older month, then times
``--groups`` groups of 3 prepared batches of 100 new events (as the storage process stores
them), and prints events/s beside the server's execution time per event of the look-up, the
events' insert, the ids' insert, the rollup upsert and every statement together
(pg_stat_statements; planning not included).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_ingest
from bench.pgserver import throwaway_postgres

from optin.storage.base import prepare_batch
from optin.storage.postgres import PostgresStorage

STATEMENTS = {
    "look-up": "SELECT %event_ids WHERE id%",
    "insert": "INSERT INTO events %",
    "ids": "INSERT INTO event_ids %",
    "rollups": "INSERT INTO rollups %",
    "all": "%",
}


def older(events: list[dict[str, Any]], months_back: int) -> list[dict[str, Any]]:
    """The same events with new ids, ``months_back`` months (of 31 days) earlier."""
    shift = months_back * 31 * 86400
    return [{**e, "id": uuid.uuid4().hex, "time": e["time"] - shift} for e in events]


def run(months: int, per_month: int, groups: int) -> None:
    batches = [orjson.loads(b)["events"] for b in bench_ingest.bodies(100, 3 * groups + 150, 5)]
    app = bench_ingest.APP
    fill = [
        prepare_batch(app, older(batches[k % 150], m), True)
        for m in range(1, months)
        for k in range(per_month // 100)
    ]
    new = [prepare_batch(app, events, True) for events in batches[150:]]
    with throwaway_postgres(options="-c shared_preload_libraries=pg_stat_statements") as admin:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE partitions")
        url = admin.rsplit("/", 1)[0] + "/partitions"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        with PostgresStorage(url + "?pool_size=1") as storage:
            for i in range(0, len(fill), 8):
                storage.store_prepared(fill[i : i + 8])
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
                conn.execute("SELECT pg_stat_statements_reset()")
            start = time.perf_counter()
            for i in range(0, len(new), 3):
                storage.store_prepared(new[i : i + 3])
            seconds = time.perf_counter() - start
        events = 100 * len(new)
        with psycopg.connect(url, autocommit=True) as conn:
            parts = conn.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"
            ).fetchone()
            costs = {
                name: conn.execute(
                    "SELECT coalesce(sum(total_exec_time), 0) FROM pg_stat_statements "
                    "WHERE query LIKE %s",
                    (pattern,),
                ).fetchone()
                for name, pattern in STATEMENTS.items()
            }
    print(
        f"{parts[0] if parts else '?'} partitions ({per_month:,} events in each older one): "
        f"{events / seconds:>8,.0f} events/s; server µs per event: "
        + ", ".join(f"{name} {row[0] * 1000 / events:.1f}" for name, row in costs.items() if row)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--months", default="1,4", help="months of data, the newest included")
    parser.add_argument("--per-month", type=int, default=300_000)
    parser.add_argument("--groups", type=int, default=250)
    args = parser.parse_args()
    for months in (int(m) for m in args.months.split(",")):
        run(months, args.per_month, args.groups)
    return 0


if __name__ == "__main__":
    sys.exit(main())
