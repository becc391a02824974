"""Per-source rate limiting that never keeps an address.

A source is the peer address (or, with ``--trust-proxy`` only, the right-most
``X-Forwarded-For`` entry: the one our own proxy appended). It is hashed at once with BLAKE2b
keyed by a random salt that lives in memory only and is replaced every UTC day; the table of token
buckets is emptied at the same moment, so nothing links one day's key to the next or to an
address. Nothing here is written to disk or logged. Each worker process has its own table.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from hashlib import blake2b

__all__ = ["RateLimiter", "source_of"]


def source_of(
    client: tuple[str, int] | None, headers: list[tuple[bytes, bytes]], trust_proxy: bool
) -> bytes:
    """The bytes that identify a source, before hashing."""
    if trust_proxy:
        for name, value in headers:
            if name == b"x-forwarded-for":
                last = value.rsplit(b",", 1)[-1].strip()
                if last:
                    return last
    return client[0].encode() if client else b"-"


class RateLimiter:
    """Token buckets: ``burst`` requests at once, refilled at ``rate`` per second, per source."""

    #: Beyond this many sources, full (idle) buckets are dropped to bound memory.
    MAX_SOURCES = 100_000

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[bytes, tuple[float, float]] = {}
        self._day = -1
        self._salt = b""

    def _key(self, source: bytes) -> bytes:
        day = int(time.time() // 86400)
        if day != self._day:
            self._day = day
            self._salt = os.urandom(32)
            self._buckets.clear()
        return blake2b(source, key=self._salt, digest_size=16).digest()

    def acquire(self, source: bytes) -> float:
        """0 when the request may proceed, else the seconds to wait before the next one."""
        if self.rate <= 0:
            return 0.0
        key = self._key(source)
        now = self._clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate
        if len(self._buckets) >= self.MAX_SOURCES and key not in self._buckets:
            self._sweep(now)
        self._buckets[key] = (tokens - 1, now)
        return 0.0

    def retry_after(self, wait: float) -> int:
        """``Retry-After`` in whole seconds, at least 1."""
        return max(1, math.ceil(wait))

    def _sweep(self, now: float) -> None:
        rate, burst = self.rate, self.burst
        full = [k for k, (t, last) in self._buckets.items() if t + (now - last) * rate >= burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.MAX_SOURCES:  # a flood of distinct sources: start over
            self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)
