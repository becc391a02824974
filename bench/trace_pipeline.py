"""Where a request's time goes in the collector: a timeline of the worker and its storage process.

    python bench/trace_pipeline.py [--connections 8] [--requests 2000] [--size 100]

``bench_ingest.py`` says how fast the collector is and how busy each process was; this says why
neither is busy all the time. It starts ``optin serve`` (SQLite, one worker) with a
``sitecustomize`` on ``PYTHONPATH`` that wraps a few functions in both processes and records
when each ran (``time.perf_counter``: one monotonic clock for every process on Linux):

- in the worker: reading a body, parsing it, preparing the rows, waiting in ``Writer.store``;
- in the storage process: ``store_prepared`` (one transaction) and blocking reads of its stdin
  (waiting for frames).

It drives the collector with ``bench_ingest.py``'s load generator, stops it (each process writes
its records at exit), and prints, over the middle half of the run, how the two processes' time
overlaps. The wrappers cost a few percent; the rate printed is only a sanity check.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ingest as bi  # the load generator and helpers, from this directory

#: Loaded by every Python process whose PYTHONPATH holds it; records only when OPTIN_TRACE is set.
SITECUSTOMIZE = """
import atexit, os, time
if os.environ.get("OPTIN_TRACE"):
    _rec = []
    _out = os.environ["OPTIN_TRACE"] + "." + str(os.getpid())
    atexit.register(lambda: open(_out, "w").write("\\n".join(" ".join(map(str, r)) for r in _rec)))
    _pc = time.perf_counter

    def _sync(tag, func):
        def wrapped(*args):
            start = _pc()
            try:
                return func(*args)
            finally:
                _rec.append((tag, start, _pc()))
        return wrapped

    def _async(tag, func):
        async def wrapped(*args):
            start = _pc()
            try:
                return await func(*args)
            finally:
                _rec.append((tag, start, _pc()))
        return wrapped

    _read = os.read
    def _traced_read(fd, n):
        if fd != 0:  # the storage process reads its frames from stdin
            return _read(fd, n)
        start = _pc()
        try:
            return _read(fd, n)
        finally:
            _rec.append(("read", start, _pc()))
    os.read = _traced_read

    import optin.storage.sqlite as _sqlite
    _sqlite.SQLiteStorage.store_prepared = _sync("store", _sqlite.SQLiteStorage.store_prepared)
    try:
        import optin.server.app as _app, optin.server.writer as _writer
    except ImportError:  # the storage process needs none of the server
        _app = None
    if _app is not None:
        _app.read_body = _async("body", _app.read_body)
        _app.parse_batch = _sync("parse", _app.parse_batch)
        _writer.prepare_batch = _sync("prepare", _writer.prepare_batch)
        _writer.Writer.store = _async("wait", _writer.Writer.store)
"""

#: Samples per second of the timeline.
RESOLUTION = 100_000


def load(prefix: Path) -> dict[str, list[tuple[float, float]]]:
    spans: dict[str, list[tuple[float, float]]] = {}
    for path in prefix.parent.glob(prefix.name + ".*"):
        for line in path.read_text().splitlines():
            tag, start, end = line.split()
            spans.setdefault(tag, []).append((float(start), float(end)))
    return spans


class Timeline:
    """Intervals as counts per sample, over a window."""

    def __init__(self, start: float, end: float) -> None:
        self.start = start
        self.samples = int((end - start) * RESOLUTION)

    def count(self, spans: Iterable[tuple[float, float]]) -> list[int]:
        """How many of the spans cover each sample."""
        steps = [0] * (self.samples + 1)
        for a, b in spans:
            i = max(0, int((a - self.start) * RESOLUTION))
            j = min(self.samples, int((b - self.start) * RESOLUTION))
            if i < j:
                steps[i] += 1
                steps[j] -= 1
        return list(itertools.accumulate(steps[:-1]))


def share(mask: list[bool]) -> str:
    return f"{sum(mask) / len(mask):4.0%}" if mask else "  - "


def report(spans: dict[str, list[tuple[float, float]]], rate: float) -> None:
    starts = sorted(a for a, _ in spans["parse"])
    line = Timeline(starts[len(starts) // 4], starts[3 * len(starts) // 4])
    parse, prepare = line.count(spans["parse"]), line.count(spans["prepare"])
    waiting = [w - p for w, p in zip(line.count(spans["wait"]), prepare, strict=True)]
    storing, reading = line.count(spans["store"]), line.count(spans["read"])
    worker = [p + q > 0 for p, q in zip(parse, prepare, strict=True)]
    child = [s > 0 for s in storing]
    blocked = [r > 0 for r in reading]
    free = [not w for w in worker]
    blocked_working = [b and w for b, w in zip(blocked, worker, strict=True)]
    neither = [f and not c for f, c in zip(free, child, strict=True)]
    print(f"collector: {rate:,.0f} events/s (traced), window {line.samples / RESOLUTION:.2f} s")
    print(f"worker parsing or preparing:            {share(worker)}")
    print(f"storage process in a transaction:        {share(child)}")
    print(f"storage process waiting for frames:      {share(blocked)}")
    print(f"  ... while the worker parses/prepares:  {share(blocked_working)}")
    print(f"neither parsing/preparing nor storing:   {share(neither)}")
    idle = [n for n, f in zip(waiting, free, strict=True) if f]
    if idle:
        print(
            f"while the worker neither parses nor prepares, requests waiting on the storage "
            f"process: {sum(idle) / len(idle):.1f} on average; the storage process in a "
            f"transaction {share([c for c, f in zip(child, free, strict=True) if f]).strip()}"
        )
    sizes = sorted(b - a for a, b in spans["store"])
    waits = sorted(b - a for a, b in spans["wait"])
    print(
        f"transactions: {len(sizes)}, p50 {sizes[len(sizes) // 2] * 1e3:.2f} ms; "
        f"Writer.store p50 {waits[len(waits) // 2] * 1e3:.2f} ms, "
        f"p90 {waits[9 * len(waits) // 10] * 1e3:.2f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=bi.CONNECTIONS)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--size", type=int, default=100, help="events per request")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="optin-trace-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "sitecustomize.py").write_text(SITECUSTOMIZE)
        prefix = tmp / "trace"
        port = bi.free_port()
        env = {"OPTIN_TRACE": str(prefix), "PYTHONPATH": str(tmp)}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            proc = bi.start(
                [
                    *(sys.executable, "-m", "optin", "serve", "--db", f"sqlite:///{tmp}/c.db"),
                    *("--policies", str(bi.POLICY), "--port", str(port), "--rate-limit", "0"),
                ],
                port,
                tmp / "collector.log",
            )
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        try:
            bi.run_loadgen(port, args.size, max(20, args.requests // 20), 1)  # warm up
            result = bi.run_loadgen(port, args.size, args.requests, 2, args.connections)
        finally:
            bi.stop(proc)
        report(load(prefix), result["events"] / result["seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
