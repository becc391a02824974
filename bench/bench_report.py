"""``optin report`` (rollups only) against the same figures computed from the raw events.

    python bench/bench_report.py --events 1000000            # generate, then measure
    python bench/bench_report.py --sqlite PATH.db --pg URL   # measure existing data sets

For each back-end: N events over 90 days (bench/gen_events.py), then

- *report*: :func:`optin.analytics.report.build` + ``render`` for the last 30 days, in process
  (the median of 7 runs; the first, cold run is printed too). Also the wall time of
  ``python -m optin report`` as a subprocess, which adds the interpreter start-up.
- *raw*: the same figures by GROUP BY over the raw events of the same 30 days: DAU per day, MAU,
  runs and failures per command and day (failure rate and spikes), exact duration percentiles
  per command, platform shares, error categories, option usage.

The budget: the report under 50 ms over 10 million events.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gen_events import generate
from bench.pgserver import throwaway_postgres

from optin.analytics.report import build, render
from optin.policy import load
from optin.storage import open_storage

POLICY_FILE = Path(__file__).resolve().parent / "policy.toml"
POLICY = load(POLICY_FILE)
APP = POLICY.app
DAYS = 30

_SQLITE = {
    "dau": "SELECT time / 86400, count(*) FROM events WHERE app = :app AND time >= :t0 "
    "AND time < :t1 AND kind = 'active' AND subject = 'day' GROUP BY 1",
    "mau": "SELECT strftime('%Y-%m', time, 'unixepoch'), count(*) FROM events WHERE app = :app "
    "AND time >= :m0 AND time < :t1 AND kind = 'active' AND subject = 'month' GROUP BY 1",
    "commands": "SELECT time / 86400, subject, outcome, count(*) FROM events WHERE app = :app "
    "AND time >= :b0 AND time < :t1 AND kind = 'command' GROUP BY 1, 2, 3",
    "durations": "SELECT subject, duration_ms, count(*) FROM events WHERE app = :app "
    "AND time >= :t0 AND time < :t1 AND kind = 'command' GROUP BY 1, 2",
    "platforms": "SELECT json_extract(body, '$.app_version'), json_extract(body, '$.os'), "
    "json_extract(body, '$.arch'), json_extract(body, '$.python'), json_extract(body, '$.ci'), "
    "count(*) FROM events WHERE app = :app AND time >= :t0 AND time < :t1 AND kind = 'active' "
    "AND subject = 'day' GROUP BY 1, 2, 3, 4, 5",
    "errors": "SELECT subject, json_extract(body, '$.error'), count(*) FROM events "
    "WHERE app = :app AND time >= :t0 AND time < :t1 AND kind = 'command' "
    "AND outcome IN ('failure', 'usage_error') GROUP BY 1, 2",
    "options": "SELECT subject, j.value, count(*) FROM events, json_each(events.body, "
    "'$.options') AS j WHERE app = :app AND time >= :t0 AND time < :t1 AND kind = 'command' "
    "GROUP BY 1, 2",
}

_POSTGRES = {
    "dau": "SELECT day, count(*) FROM events WHERE app = %(app)s AND day >= %(d0)s "
    "AND day <= %(d1)s AND kind = 'active' AND subject = 'day' GROUP BY 1",
    "mau": "SELECT to_char(to_timestamp(time), 'YYYY-MM'), count(*) FROM events "
    "WHERE app = %(app)s AND day >= %(md0)s AND day <= %(d1)s AND kind = 'active' "
    "AND subject = 'month' GROUP BY 1",
    "commands": "SELECT day, subject, outcome, count(*) FROM events WHERE app = %(app)s "
    "AND day >= %(bd0)s AND day <= %(d1)s AND kind = 'command' GROUP BY 1, 2, 3",
    "durations": "SELECT subject, duration_ms, count(*) FROM events WHERE app = %(app)s "
    "AND day >= %(d0)s AND day <= %(d1)s AND kind = 'command' GROUP BY 1, 2",
    "platforms": "SELECT b->>'app_version', b->>'os', b->>'arch', b->>'python', b->>'ci', "
    "count(*) FROM (SELECT body::jsonb AS b FROM events WHERE app = %(app)s AND day >= %(d0)s "
    "AND day <= %(d1)s AND kind = 'active' AND subject = 'day') AS e GROUP BY 1, 2, 3, 4, 5",
    "errors": "SELECT subject, body::jsonb->>'error', count(*) FROM events WHERE app = %(app)s "
    "AND day >= %(d0)s AND day <= %(d1)s AND kind = 'command' "
    "AND outcome IN ('failure', 'usage_error') GROUP BY 1, 2",
    "options": "SELECT subject, o, count(*) FROM events, "
    "jsonb_array_elements_text(body::jsonb->'options') AS o WHERE app = %(app)s "
    "AND day >= %(d0)s AND day <= %(d1)s AND kind = 'command' GROUP BY 1, 2",
}


def _timed(fn: Callable[[], Any], runs: int = 7) -> tuple[float, float]:
    """(first run, median of the rest) in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:])


def _params(last_day: int) -> dict[str, int | str]:
    import datetime as dt

    d0 = last_day - DAYS + 1
    month = dt.date(1970, 1, 1) + dt.timedelta(days=d0)
    md0 = (month.replace(day=1) - dt.date(1970, 1, 1)).days
    return {
        "app": APP,
        "d0": d0,
        "d1": last_day,
        "bd0": d0 - 14,
        "md0": md0,
        "t0": d0 * 86400,
        "t1": (last_day + 1) * 86400,
        "b0": (d0 - 14) * 86400,
        "m0": md0 * 86400,
    }


def raw_figures(url: str, last_day: int) -> Callable[[], Any]:
    params = _params(last_day)
    if url.startswith("sqlite"):
        import sqlite3

        from optin.storage.sqlite import path_from_url

        db = sqlite3.connect(path_from_url(url))
        # The collector keeps no index on time (purges use event_spans); the baseline gets
        # one, so the raw figures are as fast as an index makes them.
        db.execute("CREATE INDEX IF NOT EXISTS bench_app_time ON events (app, time)")
        return lambda: [db.execute(sql, params).fetchall() for sql in _SQLITE.values()]
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    return lambda: [conn.execute(sql, params).fetchall() for sql in _POSTGRES.values()]  # type: ignore[arg-type]


def measure(name: str, url: str) -> None:
    with open_storage(url) as db:
        last = db.last_day(APP)
        assert last is not None, f"no data for {APP} in {url}"
        cold, report = _timed(lambda: render(build(db, APP, DAYS, POLICY) or {}))
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "optin",
            "report",
            "--db",
            url,
            "--app",
            APP,
            "--policies",
            str(POLICY_FILE),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    cli = time.perf_counter() - start
    assert "Command" in done.stdout
    raw_cold, raw = _timed(raw_figures(url, last), runs=3)
    print(
        f"{name:<11} report {report * 1000:7.1f} ms (cold {cold * 1000:.1f} ms; "
        f"`optin report` process {cli * 1000:.0f} ms)   raw GROUP BY {raw * 1000:8.1f} ms "
        f"(cold {raw_cold * 1000:.0f} ms)   raw/report {raw / report:6.0f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--sqlite", help="an existing SQLite database generated for bench-cli")
    parser.add_argument("--pg", help="an existing PostgreSQL database generated for bench-cli")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--dir", default="/tmp", help="where to put generated databases")
    args = parser.parse_args()
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(dir=args.dir))
        if args.only != "postgres":
            url = f"sqlite:///{args.sqlite}" if args.sqlite else f"sqlite:///{tmp}/report.db"
            if not args.sqlite:
                generate(url, args.events, policy=POLICY)
            measure("SQLite", url)
        if args.only != "sqlite":
            url = args.pg or stack.enter_context(throwaway_postgres(args.dir))
            if not args.pg:
                generate(url, args.events, policy=POLICY)
            measure("PostgreSQL", url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
