"""The writer groups the requests that arrive together into one transaction."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from tests.server.helpers import APP, event

from optin.server.errors import HTTPError
from optin.server.metrics import Metrics
from optin.server.writer import Writer
from optin.storage import StoreResult
from optin.storage.sqlite import SQLiteStorage


class Recording(SQLiteStorage):
    """A real SQLite storage that remembers how many batches each transaction held."""

    groups: ClassVar[list[int]] = []

    def store_many(self, batches: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> Any:
        Recording.groups.append(len(batches))
        return super().store_many(batches)


def test_concurrent_requests_share_one_transaction(tmp_path: Path) -> None:
    Recording.groups = []
    writer = Writer(f"sqlite:///{tmp_path / 'o.db'}", Metrics(), opener=Recording)
    first = event()

    async def main() -> list[StoreResult]:
        together = [writer.store(APP, [first])] + [writer.store(APP, [event()]) for _ in range(6)]
        results = list(await asyncio.gather(*together, writer.store(APP, [first])))
        results.append(await writer.store(APP, [event(), event()]))  # a later turn of the loop
        return results

    try:
        results = asyncio.run(main())
    finally:
        writer.close()
    assert Recording.groups == [8, 1]
    assert results == [StoreResult(1, 0, 0)] * 7 + [StoreResult(0, 1, 0), StoreResult(2, 0, 0)]


def test_a_locked_database_fails_the_whole_group_with_503(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    writer = Writer(f"sqlite:///{path}?busy_timeout_ms=50", Metrics(), cooldown=0)
    asyncio.run(writer.store(APP, [event()]))  # opens the database
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    async def group() -> list[Any]:
        tries = [writer.store(APP, [event()]) for _ in range(4)]
        return list(await asyncio.gather(*tries, return_exceptions=True))

    try:
        failed = asyncio.run(group())
        assert all(isinstance(e, HTTPError) and e.status == 503 for e in failed), failed
        holder.execute("ROLLBACK")
        assert asyncio.run(group()) == [StoreResult(1, 0, 0)] * 4
    finally:
        holder.close()
        writer.close()
    assert writer.metrics.storage_errors["unavailable"] == 1


def test_threaded_writer_groups_too(tmp_path: Path) -> None:
    Recording.groups = []
    writer = Writer(f"sqlite:///{tmp_path / 'o.db'}", Metrics(), threads=2, opener=Recording)

    async def main() -> list[StoreResult]:
        return list(await asyncio.gather(*(writer.store(APP, [event()]) for _ in range(3))))

    try:
        assert asyncio.run(main()) == [StoreResult(1, 0, 0)] * 3
    finally:
        writer.close()
    assert Recording.groups == [3]
