"""The writer: requests that arrive together share one transaction, in a storage process (the
default) or on the loop; a storage process that dies is replaced."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import uvloop
from tests.server.helpers import APP, event

from optin.server.errors import HTTPError
from optin.server.metrics import Metrics
from optin.server.writer import Writer
from optin.storage import StorageContended, StorageUnavailable, StoreResult, open_storage
from optin.storage.base import PreparedBatch, prepare_batch
from optin.storage.process import encode_frame
from optin.storage.sqlite import SQLiteStorage


class Recording(SQLiteStorage):
    """A real SQLite storage that remembers how many batches each transaction held."""

    groups: ClassVar[list[int]] = []

    def store_prepared(self, batches: Sequence[PreparedBatch]) -> Any:
        Recording.groups.append(len(batches))
        return super().store_prepared(batches)


def _together(writer: Writer, first: dict[str, Any]) -> list[StoreResult]:
    async def main() -> list[StoreResult]:
        try:
            together = [writer.store(APP, [first])]
            together += [writer.store(APP, [event()]) for _ in range(6)]
            results = list(await asyncio.gather(*together, writer.store(APP, [first])))
            results.append(await writer.store(APP, [event(), event()]))  # a later turn
            return results
        finally:
            await writer.aclose()

    return asyncio.run(main())


EXPECTED = [StoreResult(1, 0, 0)] * 7 + [StoreResult(0, 1, 0), StoreResult(2, 0, 0)]


def test_on_the_loop_concurrent_requests_share_one_transaction(tmp_path: Path) -> None:
    Recording.groups = []
    writer = Writer(f"sqlite:///{tmp_path / 'o.db'}", Metrics(), inline=True, opener=Recording)
    assert _together(writer, event()) == EXPECTED
    assert Recording.groups == [8, 1]


def test_in_the_storage_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    writer = Writer(url, Metrics())
    assert writer.child is not None
    first = event()
    assert _together(writer, first) == EXPECTED
    with open_storage(url) as storage:
        assert sum(e["id"] == first["id"] for e in storage.raw_events(APP)) == 1
        assert len(storage.raw_events(APP)) == 9


def test_a_locked_database_fails_the_whole_group_with_503(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    writer = Writer(f"sqlite:///{path}?busy_timeout_ms=50", Metrics(), cooldown=0)

    async def main() -> tuple[list[Any], list[Any]]:
        try:
            await writer.store(APP, [event()])  # the storage process has the database open
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            tries = [writer.store(APP, [event()]) for _ in range(4)]
            failed = await asyncio.gather(*tries, return_exceptions=True)
            holder.execute("ROLLBACK")
            holder.close()
            tries = [writer.store(APP, [event()]) for _ in range(4)]
            return list(failed), list(await asyncio.gather(*tries))
        finally:
            await writer.aclose()

    failed, stored = asyncio.run(main())
    assert all(isinstance(e, HTTPError) and e.status == 503 for e in failed), failed
    assert stored == [StoreResult(1, 0, 0)] * 4
    assert writer.metrics.storage_errors["unavailable"] == 1


class FailsOnce(SQLiteStorage):
    """A real SQLite storage whose first store raises ``FailsOnce.error``."""

    error: ClassVar[type[Exception]] = StorageUnavailable
    calls: ClassVar[int] = 0

    def store_prepared(self, batches: Sequence[PreparedBatch]) -> Any:
        FailsOnce.calls += 1
        if FailsOnce.calls == 1:
            raise FailsOnce.error("as a test")
        return super().store_prepared(batches)


@pytest.mark.parametrize(
    ("error", "then"), [(StorageUnavailable, 503), (StorageContended, 200)], ids=["down", "race"]
)
def test_a_lost_race_is_retried_at_once_a_storage_down_after_a_pause(
    tmp_path: Path, error: type[Exception], then: int
) -> None:
    FailsOnce.error, FailsOnce.calls = error, 0
    writer = Writer(f"sqlite:///{tmp_path / 'o.db'}", Metrics(), inline=True, opener=FailsOnce)

    async def main() -> list[Any]:
        try:
            return [
                await asyncio.gather(writer.store(APP, [event()]), return_exceptions=True)
                for _ in range(2)
            ]
        finally:
            await writer.aclose()

    first, second = (r[0] for r in asyncio.run(main()))
    assert isinstance(first, HTTPError) and first.status == 503
    status = second.status if isinstance(second, HTTPError) else 200
    assert status == then
    assert FailsOnce.calls == (2 if then == 200 else 1)  # during the pause, not even tried


def test_a_killed_storage_process_is_503_then_replaced(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    url = f"sqlite:///{path}?busy_timeout_ms=10000"
    writer = Writer(url, Metrics(), cooldown=0)

    async def main() -> tuple[Any, StoreResult, StoreResult]:
        try:
            await writer.store(APP, [event()])
            assert writer.child is not None and writer.child._child is not None
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # the next store waits in the storage process
            in_flight = asyncio.ensure_future(writer.store(APP, [event()]))
            await asyncio.sleep(0.5)
            os.kill(writer.child._child.proc.pid, signal.SIGKILL)
            lost = (await asyncio.gather(in_flight, return_exceptions=True))[0]
            holder.execute("ROLLBACK")
            holder.close()
            after = await writer.store(APP, [event()])  # on a new storage process
            # A dead child found before anything is sent to it: a new one answers at once.
            os.kill(writer.child._child.proc.pid, signal.SIGKILL)
            await writer.child._child.proc.wait()
            await asyncio.sleep(0.1)
            return lost, after, await writer.store(APP, [event()])
        finally:
            await writer.aclose()

    lost, after, again = asyncio.run(main())
    assert isinstance(lost, HTTPError) and lost.status == 503, lost
    assert after == again == StoreResult(1, 0, 0)
    with open_storage(url) as storage:
        assert len(storage.raw_events(APP)) == 3


@pytest.mark.skipif(not hasattr(fcntl, "F_GETPIPE_SZ"), reason="pipe sizes are Linux's")
@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_a_frame_of_1000_events_fits_the_pipe_to_the_storage_process(
    tmp_path: Path, run: Callable[[Any], Any]
) -> None:
    """With a 64 KiB pipe the rest of a frame waited for the event loop, and the storage
    process for it (60 % of its time at batch 1000)."""
    writer = Writer(f"sqlite:///{tmp_path / 'o.db'}", Metrics())
    events = [event() for _ in range(1000)]

    async def main() -> tuple[StoreResult, int]:
        try:
            result = await writer.store(APP, events)
            assert writer.child is not None and writer.child._child is not None
            # The child's end of the same pipe, opened again through /proc.
            with open(f"/proc/{writer.child._child.proc.pid}/fd/0", "rb") as pipe:
                return result, fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ)
        finally:
            await writer.aclose()

    result, capacity = run(main())
    assert result == StoreResult(1000, 0, 0)
    assert capacity >= len(encode_frame([tuple(prepare_batch(APP, events, True))]))
