"""Counters and a latency histogram, rendered as Prometheus text at ``GET /metrics``.

Plain ints updated on the event loop (no locks needed). Each worker process counts for itself:
with ``--workers N`` a scrape sees one worker; sum over them in Prometheus by scraping each, or
run one worker per container. No label ever holds an address, an app version or an event value:
reasons are reduced to the field they concern (bounded by the policy).
"""

from __future__ import annotations

import bisect
from collections import Counter

__all__ = ["LATENCY_BUCKETS", "Metrics"]

#: Seconds: upper bounds of the ``POST /v1/events`` latency histogram.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self) -> None:
        self.accepted = 0
        self.duplicates = 0
        self.conflicts = 0
        self.rate_limited = 0
        self.rejected: Counter[str] = Counter()  # by reason label
        self.responses: Counter[int] = Counter()  # POST /v1/events by status
        self.storage_errors: Counter[str] = Counter()  # unavailable / full / error / busy
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._latency_count = 0

    def observe(self, status: int, seconds: float) -> None:
        """One ``POST /v1/events`` answered."""
        self.responses[status] += 1
        self._buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._latency_sum += seconds
        self._latency_count += 1

    def render(self) -> bytes:
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, int]]) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(f"{name}{labels} {value}" for labels, value in samples)

        metric("optin_events_accepted_total", "counter", "Events stored.", [("", self.accepted)])
        metric(
            "optin_events_duplicate_total",
            "counter",
            "Events already stored with the same content (retries).",
            [("", self.duplicates)],
        )
        metric(
            "optin_events_conflict_total",
            "counter",
            "Events whose id was already stored with different content (first write wins).",
            [("", self.conflicts)],
        )
        metric(
            "optin_events_rejected_total",
            "counter",
            "Events refused, by the field or rule they broke.",
            [(f'{{reason="{_escape(r)}"}}', n) for r, n in sorted(self.rejected.items())],
        )
        metric(
            "optin_rate_limited_total",
            "counter",
            "Requests refused with 429.",
            [("", self.rate_limited)],
        )
        metric(
            "optin_storage_errors_total",
            "counter",
            "Batches not stored because of the storage, by kind.",
            [(f'{{kind="{k}"}}', n) for k, n in sorted(self.storage_errors.items())],
        )
        metric(
            "optin_ingest_responses_total",
            "counter",
            "POST /v1/events responses by status.",
            [(f'{{status="{s}"}}', n) for s, n in sorted(self.responses.items())],
        )
        lines.append("# HELP optin_ingest_seconds Time to answer POST /v1/events.")
        lines.append("# TYPE optin_ingest_seconds histogram")
        cumulative = 0
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self._buckets, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'optin_ingest_seconds_bucket{{le="{le}"}} {cumulative}')
        lines.append(f"optin_ingest_seconds_sum {self._latency_sum:.6f}")
        lines.append(f"optin_ingest_seconds_count {self._latency_count}")
        return ("\n".join(lines) + "\n").encode()
