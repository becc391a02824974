"""The collector's door to storage: where the blocking storage calls run, and what they answer.

``store`` returns once the batch is committed: a client is answered only once its batch is durable.

By default the calls run in a storage process (:mod:`optin.storage.process`), a child of each
worker, for SQLite and PostgreSQL alike, so storing uses the second core while the loop parses
and validates the next requests. A thread would not: measured with ``bench/bench_ingest.py``
(batch 100), SQLite stored 19.5k events/s on the loop against 11.3k with one writer thread,
because the thread needs the GIL back after every database call and waits for the loop to let
go (``sys.setswitchinterval`` did not help). The storage process against the loop, in
alternated runs (grouped transactions in both): 28.5k and 24.8k against 16.7k and 18.1k.
PostgreSQL, two workers, batch 100, the same storage code: 29.4k-41.2k events/s on four threads
per worker against 49.4k-52.5k with the storage process (8 connections; with 32, 45.4k-48.4k
against 52.7k-64.8k): each thread waits for the GIL after every round trip. ``inline=True``
keeps the calls on the loop (tests, and the null storage of the bench). A storage process
writes one transaction at a time (SQLite writes serialise anyway; on PostgreSQL, what arrives
meanwhile makes the next group larger). After a :class:`StorageUnavailable` (a lock held beyond
the busy timeout, a server down) the writer answers 503 at once for ``cooldown`` seconds instead
of waiting again for every request; not after a :class:`StorageContended` (a transaction that
lost a race with another). When ``max_pending`` batches already wait, more are refused with 503
+ ``Retry-After`` at once instead of queueing without bound.

Requests that reach the writer in the same turn of the loop (with several connections busy,
the requests parsed while the previous commit ran) are stored together by ``store_prepared``:
one transaction, one commit (one fsync), each request answered with its own counts once it is
durable.

The storage (for pings, and for the calls themselves when ``inline``) is opened lazily and
reopened after a failure to open, so a collector started while its database is down answers
503 and recovers by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from optin.server.child import StorageProcess
from optin.server.errors import HTTPError
from optin.server.metrics import Metrics
from optin.storage import (
    Storage,
    StorageContended,
    StorageError,
    StorageFull,
    StorageUnavailable,
    StoreResult,
    open_storage,
)
from optin.storage.base import PreparedBatch, prepare_batch

__all__ = ["Writer"]

log = logging.getLogger("optin.server")
T = TypeVar("T")


_Group = list[tuple[PreparedBatch, "asyncio.Future[StoreResult]"]]


def _answer(group: _Group, done: asyncio.Future[list[StoreResult]]) -> None:
    """Each request of a group gets its own result, or the error the whole group met."""
    exc = asyncio.CancelledError() if done.cancelled() else done.exception()
    if exc is not None:
        for _, waiter in group:
            if not waiter.done():
                waiter.set_exception(exc)
        return
    for (_, waiter), result in zip(group, done.result(), strict=True):
        if not waiter.done():
            waiter.set_result(result)


class Writer:
    def __init__(
        self,
        url: str,
        metrics: Metrics,
        *,
        inline: bool = False,
        max_pending: int = 128,
        cooldown: float = 1.0,
        opener: Callable[[str], Storage] = open_storage,
    ) -> None:
        self.url = url
        self.metrics = metrics
        self.max_pending = max_pending
        # A storage process, or (inline) the calls on the loop.
        self.child = None if inline else StorageProcess(url)
        self.inline = inline
        self.cooldown = cooldown
        self._unavailable_until = 0.0
        # One thread, for pings (the storage process does the writes).
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="optin-writer")
        self._opener = opener
        self._storage: Storage | None = None
        self._open_lock = threading.Lock()
        self._pending = 0
        self._group: _Group = []
        self._tasks: set[asyncio.Future[list[StoreResult]]] = set()

    def _open(self) -> Storage:
        storage = self._storage
        if storage is None:
            with self._open_lock:
                if self._storage is None:
                    self._storage = self._opener(self.url)
                storage = self._storage
        return storage

    def _ping(self) -> None:
        self._open().ping()

    @contextlib.contextmanager
    def _answers(self) -> Iterator[None]:
        """Storage failures as the HTTP errors a client is given (never the cause itself)."""
        if time.monotonic() < self._unavailable_until:
            self.metrics.storage_errors["unavailable"] += 1
            raise HTTPError(
                "unavailable", "the storage is unavailable or busy; retry later", retry_after=5
            )
        try:
            yield
        except StorageUnavailable as exc:
            self.metrics.storage_errors["unavailable"] += 1
            if not isinstance(exc, StorageContended):  # a lost race says nothing of the next
                self._unavailable_until = time.monotonic() + self.cooldown
            raise HTTPError(
                "unavailable",
                "the storage is unavailable or busy; retry later",
                retry_after=max(1, int(getattr(exc, "retry_after", 5))),
            ) from None
        except StorageFull:
            self.metrics.storage_errors["full"] += 1
            raise HTTPError(
                "insufficient_storage", "the collector's disk is full; retry much later"
            ) from None
        except (StorageError, OSError, RuntimeError) as exc:
            # A broken database or a bug: never the client's fault, and never echoed to it.
            self.metrics.storage_errors["error"] += 1
            log.error("storage error: %s", type(exc).__name__)
            raise HTTPError(
                "unavailable", "the storage failed; retry later", retry_after=30
            ) from None

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        with self._answers():
            if self.inline:
                return func(*args)
            return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)

    async def store(self, app: str, events: Sequence[Mapping[str, Any]]) -> StoreResult:
        if self._pending >= self.max_pending:
            self.metrics.storage_errors["busy"] += 1
            raise HTTPError("unavailable", "the collector is busy; retry shortly", retry_after=1)
        self._pending += 1
        try:
            # Group the requests that reach this point in the same turn of the loop: they are
            # stored in one transaction, each answered with its own result.
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[StoreResult] = loop.create_future()
            # Everything that needs no database is done here (and a bug in it fails this
            # request alone): for SQLite, on this process's core, not the storage process's.
            batch = prepare_batch(app, events, True)
            self._group.append((batch, waiter))
            if len(self._group) == 1:
                loop.call_soon(self._store_group)
            return await waiter
        finally:
            self._pending -= 1

    def _store_group(self) -> None:
        group, self._group = self._group, []
        batches = [batch for batch, _ in group]
        # Held here until done: the loop keeps only weak references to tasks.
        self._tasks.add(task := asyncio.ensure_future(self._store_many(batches)))
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda done: _answer(group, done))

    async def _store_many(self, batches: list[PreparedBatch]) -> list[StoreResult]:
        if self.child is not None:
            with self._answers():
                return await self.child.store_many(batches)
        return await self._run(lambda: self._open().store_prepared(batches))

    async def ping(self) -> None:
        await self._run(self._ping)

    async def aclose(self) -> None:
        """Wait for in-flight writes (the storage process's too), then close the storage."""
        if self.child is not None:
            await self.child.close()
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Wait for in-flight writes, then close the storage."""
        if self.child is not None:
            self.child.kill()  # only when no loop is left to close it with aclose
        self._pool.shutdown(wait=True)
        if self._storage is not None:
            self._storage.close()
            self._storage = None
