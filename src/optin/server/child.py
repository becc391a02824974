"""The worker's end of the storage process (:mod:`optin.storage.process`), on the event loop.

Groups are written to the child's stdin as they form and answered in order from its stdout, so
several may be in flight: the child stores together whatever has arrived while it was busy. If
the child dies, everything waiting on it fails with :class:`StorageUnavailable` (503, the client
retries: nothing was acknowledged) and the next group starts a new child.
"""

from __future__ import annotations

import asyncio
import collections
import sys
from typing import Any

from optin.storage import StorageError, StorageFull, StorageUnavailable, StoreResult
from optin.storage.base import PreparedBatch
from optin.storage.process import HEADER, decode_frame, encode_frame

__all__ = ["StorageProcess"]

_ERRORS: dict[str, type[StorageError]] = {
    "unavailable": StorageUnavailable,
    "full": StorageFull,
    "error": StorageError,
}


class _Child:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.reader = asyncio.ensure_future(self._read())

    @property
    def alive(self) -> bool:
        return not self.reader.done()

    async def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            while True:
                (length,) = HEADER.unpack(await stdout.readexactly(HEADER.size))
                answer = decode_frame(await stdout.readexactly(length))
                waiter = self.waiting.popleft()
                if not waiter.done():
                    waiter.set_result(answer)
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            while self.waiting:
                waiter = self.waiting.popleft()
                if not waiter.done():
                    waiter.set_exception(
                        StorageUnavailable("the storage process exited; it is being restarted")
                    )


class StorageProcess:
    """One child storing for this worker, started on first use and again after it died."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._child: _Child | None = None
        self._starting = asyncio.Lock()

    async def _current(self) -> _Child:
        async with self._starting:
            if self._child is None or not self._child.alive:
                proc = await asyncio.create_subprocess_exec(
                    *(sys.executable, "-m", "optin.storage.process", self.url),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
                self._child = _Child(proc)
            return self._child

    async def store_many(self, batches: list[PreparedBatch]) -> list[StoreResult]:
        frame = encode_frame([tuple(batch) for batch in batches])
        child = await self._current()
        stdin = child.proc.stdin
        assert stdin is not None
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        child.waiting.append(waiter)
        try:
            stdin.write(frame)
            await stdin.drain()
        except (ConnectionError, RuntimeError):
            pass  # the reader fails the waiter when the child's output ends
        answer = await waiter
        error = answer.get("error")
        if error is not None:
            raise _ERRORS.get(error, StorageError)(answer.get("message", error))
        return [StoreResult(*r) for r in answer["results"]]

    async def close(self, timeout: float = 15.0) -> None:
        """Let the child finish what it was sent, then wait for it to exit."""
        child, self._child = self._child, None
        if child is None:
            return
        if child.proc.stdin is not None:
            child.proc.stdin.close()
        try:
            await asyncio.wait_for(child.proc.wait(), timeout)
        except TimeoutError:
            child.proc.kill()
            await child.proc.wait()
        await child.reader

    def kill(self) -> None:
        """Stop the child now (when no event loop is left to close it properly)."""
        if self._child is not None and self._child.proc.returncode is None:
            self._child.proc.kill()
        self._child = None
