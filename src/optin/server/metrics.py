"""Counters and a latency histogram, rendered as Prometheus text at ``GET /metrics``.

Plain ints updated on the event loop (no locks needed). With ``--workers N`` the workers share
one port, so a scrape reaches any one of them; each worker therefore writes a snapshot of its
counts to a directory ``optin serve`` creates (every second and at shutdown, by atomic rename),
and a scrape adds the other workers' snapshots to the live counts of the one that answers. The
totals are at most a second behind and never go down: a restarted worker writes a new file and
the old one still counts. No label ever holds an address, an app version or an event value:
reasons are reduced to the field they concern (bounded by the policy).
"""

from __future__ import annotations

import bisect
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["LATENCY_BUCKETS", "Metrics"]

#: Seconds: upper bounds of the ``POST /v1/events`` latency histogram.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """This process's counts; with ``shared_dir``, also the other workers' latest snapshots."""

    def __init__(self, shared_dir: str | Path | None = None) -> None:
        self.shared_dir = Path(shared_dir) if shared_dir else None
        self.accepted = 0
        self.duplicates = 0
        self.conflicts = 0
        self.rate_limited = 0
        self.rejected: Counter[str] = Counter()  # by reason label
        self.responses: Counter[int] = Counter()  # POST /v1/events by status
        self.storage_errors: Counter[str] = Counter()  # unavailable / full / error / busy
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0

    def observe(self, status: int, seconds: float) -> None:
        """One ``POST /v1/events`` answered."""
        self.responses[status] += 1
        self._buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._latency_sum += seconds

    def snapshot(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "rate_limited": self.rate_limited,
            "rejected": dict(self.rejected),
            "responses": {str(k): v for k, v in self.responses.items()},
            "storage_errors": dict(self.storage_errors),
            "buckets": list(self._buckets),
            "latency_sum": self._latency_sum,
        }

    def publish(self) -> None:
        """Write this worker's snapshot for the others' scrapes (no-op without a shared dir)."""
        if self.shared_dir is None:
            return
        final = self.shared_dir / f"{os.getpid()}.json"
        temp = final.with_suffix(".tmp")
        temp.write_text(json.dumps(self.snapshot()))
        os.replace(temp, final)

    def totals(self) -> dict[str, Any]:
        """This worker's live counts plus every other worker's latest snapshot."""
        total = self.snapshot()
        if self.shared_dir is None:
            return total
        mine = f"{os.getpid()}.json"
        for path in sorted(self.shared_dir.glob("*.json")):
            if path.name == mine:
                continue
            try:
                other = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # a worker that died while writing its first snapshot
            for name in ("accepted", "duplicates", "conflicts", "rate_limited", "latency_sum"):
                total[name] += other[name]
            for name in ("rejected", "responses", "storage_errors"):
                merged = Counter(total[name])
                merged.update(other[name])
                total[name] = dict(merged)
            total["buckets"] = [
                a + b for a, b in zip(total["buckets"], other["buckets"], strict=True)
            ]
        return total

    def render(self) -> bytes:
        t = self.totals()
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, int]]) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(f"{name}{labels} {value}" for labels, value in samples)

        metric("optin_events_accepted_total", "counter", "Events stored.", [("", t["accepted"])])
        metric(
            "optin_events_duplicate_total",
            "counter",
            "Events already stored with the same content (retries).",
            [("", t["duplicates"])],
        )
        metric(
            "optin_events_conflict_total",
            "counter",
            "Events whose id was already stored with different content (first write wins).",
            [("", t["conflicts"])],
        )
        metric(
            "optin_events_rejected_total",
            "counter",
            "Events refused, by the field or rule they broke.",
            [(f'{{reason="{_escape(r)}"}}', n) for r, n in sorted(t["rejected"].items())],
        )
        metric(
            "optin_rate_limited_total",
            "counter",
            "Requests refused with 429.",
            [("", t["rate_limited"])],
        )
        metric(
            "optin_storage_errors_total",
            "counter",
            "Batches not stored because of the storage, by kind.",
            [(f'{{kind="{k}"}}', n) for k, n in sorted(t["storage_errors"].items())],
        )
        metric(
            "optin_ingest_responses_total",
            "counter",
            "POST /v1/events responses by status.",
            [
                (f'{{status="{s}"}}', n)
                for s, n in sorted(t["responses"].items(), key=lambda i: int(i[0]))
            ],
        )
        lines.append("# HELP optin_ingest_seconds Time to answer POST /v1/events.")
        lines.append("# TYPE optin_ingest_seconds histogram")
        cumulative = 0
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), t["buckets"], strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'optin_ingest_seconds_bucket{{le="{le}"}} {cumulative}')
        lines.append(f"optin_ingest_seconds_sum {t['latency_sum']:.6f}")
        lines.append(f"optin_ingest_seconds_count {sum(t['buckets'])}")
        return ("\n".join(lines) + "\n").encode()
