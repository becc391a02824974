"""Ingest throughput of the collector against a bare parse-and-insert endpoint and raw SQLite.

    python bench/bench_ingest.py [--sizes 1,10,100,1000] [--events N] [--rounds R] [--mixed]
                                 [--postgres]

Everything runs on loopback, in this run, on this machine:

- ``collector``: ``optin serve`` (one worker, SQLite), so validation, deduplication, rollups,
  rate limiting (off here: one source) and the durable commit are all in;
- ``bare``: ``bench/bare_endpoint.py`` on the same uvicorn settings: orjson parse + one INSERT
  transaction per request, nothing else (the ceiling);
- ``raw``: the same rows inserted straight into SQLite in this process (no HTTP), without and
  with a unique index on the event id, and ``store()``: the collector's storage call alone,
  8 batches per transaction as the collector groups them (deduplication + rollups + commit;
  ``coll/store`` shows how close the collector gets to it; the collector no longer keeps a
  unique index, so ``raw+uniq`` is what deduplicating with one would cost at least);
- ``no-store``: ``bench/null_collector.py``, the collector with a storage that stores nothing:
  the cost of HTTP, decoding, validation and preparing the rows alone.
- ``busy``: CPU time over wall time of the collector's worker and of its storage process while
  the collector was measured: which of the two limits it.

This VM's speed moves by tens of percent within minutes: ``--rounds R`` runs the collector and
the bare endpoint R times each, alternated, and shows the median rates and the median of each
round's own ratio (the collector's database grows from round to round, as in service).

Each batch is what a client sends: one installation's spool (one platform, one session id per
day, times over the last 24 hours); ``--mixed`` draws platform and session per event instead,
the worst case for the rollups and the session state. The load generator is a separate
process: a fixed number of requests over 8 keep-alive connections (raw asyncio sockets), bodies
prepared before the clock starts; it stops by itself.
Budgets (issue 4): batch 100 >= 100,000 events/s and >= 60 % of bare; collector peak RSS < 150 MB.
With ``--postgres`` it also starts a throwaway PostgreSQL server and measures ``optin serve
--workers 2`` on it at batch 100 (over 8 connections, then 32), beside COPY (one transaction
per 100 rows) and executemany of the same rows; ``--sizes ""`` skips SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "tests" / "data" / "policy.toml"
APP, VERSION = "sample-cli", 2
CONNECTIONS = 8
#: Draw every field per event (the worst case for rollups and session state) instead of one
#: installation per batch; set by --mixed, passed on to the load generator's process.
MIXED = os.environ.get("OPTIN_BENCH_MIXED") == "1"


# --- events -----------------------------------------------------------------------------------


def make_events(n: int, rng: random.Random) -> list[dict[str, Any]]:
    hour = int(time.time()) // 3600 * 3600
    commands = [
        ("canister.install", ["mode"], {"mode": "upgrade"}),
        ("canister.install", ["mode", "yes"], {"mode": "install"}),
        ("start", ["background"], None),
        ("deploy", [], None),
    ]
    out = []
    for _ in range(n):
        if rng.random() < 0.1:
            out.append(
                {
                    "id": os.urandom(16).hex(),
                    "kind": "active",
                    "time": hour - 3600 * rng.randrange(24),
                    "app_version": rng.choice(["1.2.3", "1.3.0"]),
                    "os": rng.choice(["linux", "macos", "windows"]),
                    "arch": rng.choice(["x86_64", "arm64"]),
                    "python": "3.12",
                    "ci": False,
                    "interactive": True,
                    "period": "day",
                }
            )
            continue
        command, options, values = rng.choice(commands)
        ok = rng.random() < 0.9
        ev: dict[str, Any] = {
            "id": os.urandom(16).hex(),
            "kind": "command",
            "time": hour - 3600 * rng.randrange(24),
            "app_version": rng.choice(["1.2.3", "1.3.0"]),
            "os": rng.choice(["linux", "macos", "windows"]),
            "arch": rng.choice(["x86_64", "arm64"]),
            "python": rng.choice(["3.11", "3.12"]),
            "ci": rng.random() < 0.2,
            "interactive": True,
            "session": os.urandom(8).hex(),
            "command": command,
            "options": options,
            "dimensions": {"network": rng.choice(["ic", "local-project"])},
            "outcome": "success" if ok else "failure",
            "exit_code": 0 if ok else 1,
            "duration_ms": rng.randrange(5, 20_000),
            "slow": False,
        }
        if values:
            ev["values"] = values
        if not ok:
            ev["error"] = rng.choice(["ConnectionError", "ProviderNotFound", "other"])
        out.append(ev)
    return out


_PLATFORM = ("app_version", "os", "arch", "python", "ci", "interactive")


def one_install(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Make a batch what a client really sends: one installation's spool.

    One platform for the whole batch and one session id per UTC day (the client rotates it
    daily); times, commands, outcomes and durations stay as drawn.
    """
    platform = {k: events[0][k] for k in _PLATFORM}
    sessions: dict[int, str] = {}
    for ev in events:
        ev.update(platform)
        if "session" in ev:
            ev["session"] = sessions.setdefault(ev["time"] // 86400, os.urandom(8).hex())
    return events


def bodies(size: int, requests: int, seed: int) -> list[bytes]:
    """Request bodies: one installation per batch, or every field drawn per event (--mixed)."""
    rng = random.Random(seed)
    shape = make_events if MIXED else lambda n, r: one_install(make_events(n, r))
    return [
        orjson.dumps({"app": APP, "policy_version": VERSION, "events": shape(size, rng)})
        for _ in range(requests)
    ]


# --- the load generator (a separate process) --------------------------------------------------


async def _connection(port: int, queue: list[bytes], statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while queue:
            body = queue.pop()
            writer.write(
                b"POST /v1/events HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 "):
                raise RuntimeError(f"unexpected response head: {head[:200]!r}")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def loadgen(
    port: int, size: int, requests: int, seed: int, connections: int = CONNECTIONS
) -> dict[str, Any]:
    queue = bodies(size, requests, seed)
    statuses: dict[int, int] = {}

    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(_connection(port, queue, statuses) for _ in range(connections)))
        return time.perf_counter() - start

    seconds = asyncio.run(main())
    return {"events": size * requests, "seconds": seconds, "statuses": statuses}


def run_loadgen(
    port: int, size: int, requests: int, seed: int, connections: int = CONNECTIONS
) -> dict[str, Any]:
    argv = [str(port), str(size), str(requests), str(seed), str(connections)]
    out = subprocess.run(
        [sys.executable, __file__, "--loadgen", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if out.returncode:
        raise SystemExit(f"load generator failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# --- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(argv: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{argv[:4]} exited:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{argv[:4]} did not start")


def peak_rss_mb(pid: int) -> list[float]:
    """Peak resident memory (MB) of a process, then of each of its children (storage process)."""
    peaks = [
        int(line.split()[1]) / 1024
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    ]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        peaks += peak_rss_mb(int(child))
    return peaks


def cpu_seconds(pid: int) -> list[float]:
    """CPU time (user + system, s) of a process, then of each of its children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = [(int(fields[11]) + int(fields[12])) / ticks]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        seconds += cpu_seconds(int(child))
    return seconds


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(25)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- raw inserts ------------------------------------------------------------------------------


def raw_sqlite(size: int, requests: int, seed: int, path: Path, unique: bool) -> float:
    sys.path.insert(0, str(ROOT / "bench"))
    from bare_endpoint import INSERT, connect, rows

    db = connect(str(path))
    batches = [rows(orjson.loads(b)) for b in bodies(size, requests, seed)]
    if unique:
        # As the collector keeps it: 16-byte ids, a 32 MB page cache.
        db.execute("PRAGMA cache_size = -32768")
        db.execute("CREATE UNIQUE INDEX IF NOT EXISTS events_id ON events (id)")
        batches = [[(bytes.fromhex(r[0]), *r[1:]) for r in batch] for batch in batches]
    start = time.perf_counter()
    for batch in batches:
        db.execute("BEGIN")
        db.executemany(INSERT, batch)
        db.execute("COMMIT")
    seconds = time.perf_counter() - start
    db.close()
    return size * requests / seconds


def raw_store(url: str, size: int, requests: int, seed: int) -> float:
    from optin.storage import open_storage

    batches = [(APP, orjson.loads(b)["events"]) for b in bodies(size, requests, seed)]
    with open_storage(url) as storage:
        start = time.perf_counter()
        # As the collector groups them: up to one request per connection per transaction.
        for i in range(0, len(batches), CONNECTIONS):
            storage.store_many(batches[i : i + CONNECTIONS])
        seconds = time.perf_counter() - start
    return size * requests / seconds


# --- PostgreSQL -------------------------------------------------------------------------------


def postgres(tmp: Path, events: int) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import psycopg

    from pgserver import throwaway_postgres  # fsync on: a real server's numbers

    with throwaway_postgres() as admin_url:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE collector")
            conn.execute("CREATE DATABASE rawdb")
        url = admin_url.rsplit("/", 1)[0] + "/collector"
        raw_url = admin_url.rsplit("/", 1)[0] + "/rawdb"
        size, requests = 100, max(1, events // 100)
        port = free_port()
        argv = [sys.executable, "-m", "optin", "serve", "--db", url, "--policies", str(POLICY)]
        argv += ["--port", str(port), "--rate-limit", "0", "--workers", "2"]
        proc = start(argv, port, tmp / "pg-collector.log")
        try:
            time.sleep(1.0)  # both workers up
            run_loadgen(port, size, max(20, requests // 20), seed=6)
            # 8 connections as for SQLite, and 32: each worker's storage process writes one
            # transaction at a time, so more requests in flight make larger groups.
            results = {
                connections: run_loadgen(port, size, requests, 7 + connections, connections)
                for connections in (CONNECTIONS, 32)
            }
        finally:
            stop(proc)
        batches = [orjson.loads(b) for b in bodies(size, requests, seed=8)]
        with psycopg.connect(raw_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE raw (id text, app text, time bigint, body jsonb)")
            start_t = time.perf_counter()
            for batch in batches:
                with (
                    conn.transaction(),
                    conn.cursor() as cur,
                    cur.copy("COPY raw (id, app, time, body) FROM STDIN") as copy,
                ):
                    for e in batch["events"]:
                        copy.write_row((e["id"], APP, e["time"], orjson.dumps(e).decode()))
            copy_rate = size * requests / (time.perf_counter() - start_t)
            start_t = time.perf_counter()
            for batch in batches[: max(1, len(batches) // 5)]:
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO raw (id, app, time, body) VALUES (%s, %s, %s, %s)",
                        [
                            (e["id"], APP, e["time"], orjson.dumps(e).decode())
                            for e in batch["events"]
                        ],
                    )
            many_rate = size * max(1, len(batches) // 5) / (time.perf_counter() - start_t)
        for connections, result in results.items():
            rate = result["events"] / result["seconds"]
            print(
                f"postgres, 2 workers, batch 100, {connections} connections: {rate:>9,.0f} "
                f"events/s (statuses {result['statuses']}); raw COPY {copy_rate:,.0f} rows/s "
                f"({rate / copy_rate:.0%})"
            )
        print(f"postgres raw executemany: {many_rate:,.0f} rows/s")


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,10,100,1000")
    parser.add_argument("--events", type=int, default=100_000, help="events per size (about)")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="collector and bare runs per size, alternated; medians are shown (default 1)",
    )
    parser.add_argument(
        "--mixed",
        action="store_true",
        help="draw platform and session per event, not per batch (worst case for rollups)",
    )
    parser.add_argument("--loadgen", nargs=5, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        print(json.dumps(loadgen(*args.loadgen)))
        return 0

    if args.mixed:
        global MIXED
        MIXED = True
        os.environ["OPTIN_BENCH_MIXED"] = "1"
    sizes = [int(s) for s in args.sizes.split(",") if s]
    with tempfile.TemporaryDirectory(prefix="optin-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if sizes:
            sqlite_sizes(tmp, sizes, args.events, args.rounds)
        if args.postgres:
            postgres(tmp, args.events)
    return 0


def sqlite_sizes(tmp: Path, sizes: list[int], events: int, rounds: int) -> None:
    c_port, b_port = free_port(), free_port()
    c_url = f"sqlite:///{tmp / 'collector.db'}"
    collector = start(
        [
            *(sys.executable, "-m", "optin", "serve", "--db", c_url),
            *("--policies", str(POLICY), "--port", str(c_port), "--rate-limit", "0"),
        ],
        c_port,
        tmp / "collector.log",
    )
    bare = start(
        [
            sys.executable,
            str(ROOT / "bench" / "bare_endpoint.py"),
            str(b_port),
            str(tmp / "b.db"),
        ],
        b_port,
        tmp / "bare.log",
    )
    n_port = free_port()
    null = start(
        [sys.executable, str(ROOT / "bench" / "null_collector.py"), str(n_port)],
        n_port,
        tmp / "null.log",
    )
    rows = []
    try:
        for i, size in enumerate(sizes):
            requests = max(200, events // size) if size > 1 else events // 10
            # warm-up, then collector and bare on fresh ids, in turn
            run_loadgen(c_port, size, max(20, requests // 20), seed=1000 + i)
            run_loadgen(b_port, size, max(20, requests // 20), seed=2000 + i)
            c_runs, b_runs = [], []
            for r in range(rounds):  # alternated: both see the same phase of the VM
                before = cpu_seconds(collector.pid)
                c = run_loadgen(c_port, size, requests, seed=i + 10_000 * r)
                after = cpu_seconds(collector.pid)
                c["cpu"] = [b - a for a, b in zip(before, after, strict=True)]
                c_runs.append(c)
                b_runs.append(run_loadgen(b_port, size, requests, seed=100 + i + 10_000 * r))
            n = run_loadgen(n_port, size, requests, seed=200 + i)
            rows.append((size, requests, c_runs, b_runs, n))
        rss = peak_rss_mb(collector.pid)
    finally:
        stop(collector)
        stop(bare)
        stop(null)

    print(f"ingest over loopback, 1 worker, SQLite, {CONNECTIONS} connections, events/s:")
    print(
        f"{'batch':>6} {'requests':>9} {'collector':>10} {'bare':>10} {'ratio':>6} "
        f"{'raw':>10} {'raw+uniq':>10} {'store()':>10} {'coll/store':>10} {'no-store':>10} "
        f"{'busy':>9}"
    )
    for size, requests, c_runs, b_runs, n in rows:
        n_rate = n["events"] / n["seconds"]
        c_rates = [c["events"] / c["seconds"] for c in c_runs]
        b_rates = [b["events"] / b["seconds"] for b in b_runs]
        c_rate, b_rate = statistics.median(c_rates), statistics.median(b_rates)
        # The median of each round's own ratio: steadier than a ratio of medians.
        ratio = statistics.median(c / b for c, b in zip(c_rates, b_rates, strict=True))
        seconds = sum(c["seconds"] for c in c_runs)
        busy = "/".join(
            f"{sum(part) / seconds:.0%}" for part in zip(*(c["cpu"] for c in c_runs), strict=True)
        )
        statuses: dict[str, int] = {}
        for c in c_runs:
            for k, v in c["statuses"].items():
                statuses[k] = statuses.get(k, 0) + v
        raw = raw_sqlite(size, requests, 300 + size, tmp / f"raw-{size}.db", unique=False)
        uniq = raw_sqlite(size, requests, 400 + size, tmp / f"uniq-{size}.db", unique=True)
        store = raw_store(f"sqlite:///{tmp / f'store-{size}.db'}", size, requests, 500 + size)
        bad = {k: v for k, v in statuses.items() if k != "200"}
        print(
            f"{size:>6} {requests:>9} {c_rate:>10,.0f} {b_rate:>10,.0f} "
            f"{ratio:>6.0%} {raw:>10,.0f} {uniq:>10,.0f} {store:>10,.0f} "
            f"{c_rate / store:>10.0%} {n_rate:>10,.0f} {busy:>9}"
            + (f"  non-200: {bad}" if bad else "")
        )
        if len(c_rates) > 1:
            print(
                f"{'':>6} rounds: collector {', '.join(f'{r:,.0f}' for r in c_rates)}; "
                f"bare {', '.join(f'{r:,.0f}' for r in b_rates)}"
            )
    print(
        f"collector peak RSS: {sum(rss):.0f} MB "
        f"({' + '.join(f'{mb:.0f}' for mb in rss)}: worker + storage process)"
    )


if __name__ == "__main__":
    sys.exit(main())
