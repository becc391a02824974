"""The worker's end of the storage process (:mod:`optin.storage.process`), on the event loop.

Groups are written to the child's stdin as they form and answered in order from its stdout, so
several may be in flight: the child stores together whatever has arrived while it was busy. If
the child dies, everything waiting on it fails with :class:`StorageUnavailable` (503, the client
retries: nothing was acknowledged) and the next group starts a new child.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import os
import sys
from typing import Any

from optin.storage import StorageError, StorageUnavailable, StoreResult
from optin.storage.base import PreparedBatch
from optin.storage.process import ERRORS, HEADER, decode_frame, encode_frame

__all__ = ["StorageProcess"]


class _Child:
    def __init__(self, proc: asyncio.subprocess.Process, stdin: asyncio.StreamWriter) -> None:
        self.proc = proc
        self.stdin = stdin
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


async def _spawn(url: str) -> _Child:
    """Start a child, its stdin a pipe that holds a whole frame.

    Linux pipes hold 64 KiB; a frame of 1,000 events is about 0.4 MB. The event loop writes the
    rest of a frame only between other work, and parsing and preparing one request of 1,000
    events takes about 13 ms: the child waited for frames 60 % of the time (traced at batch
    1000). So the pipe is made here, widened to 1 MiB (the default cap for an unprivileged
    process). It must be made here: uvloop's pipe transports do not expose their descriptor,
    and the pipe uvloop makes for a child's stdin is a socket pair, which ``F_SETPIPE_SZ`` does
    not widen (so the child cannot widen it either: tried, no gain).
    """
    read_end, write_end = os.pipe()
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        with contextlib.suppress(OSError):
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 1 << 20)
    try:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "optin.storage.process", url),
            stdin=read_end,
            stdout=asyncio.subprocess.PIPE,
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    loop = asyncio.get_running_loop()
    pipe = os.fdopen(write_end, "wb", buffering=0)
    try:
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, pipe)
    except BaseException:
        pipe.close()  # the child sees the end of its input and exits
        await proc.wait()
        raise
    return _Child(proc, asyncio.StreamWriter(transport, protocol, None, loop))


class StorageProcess:
    """One child storing for this worker, started on first use and again after it died."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._child: _Child | None = None
        self._starting = asyncio.Lock()

    async def _current(self) -> _Child:
        async with self._starting:
            if self._child is None or not self._child.alive:
                if self._child is not None:
                    self._child.stdin.close()  # the dead child's pipe
                self._child = await _spawn(self.url)
            return self._child

    async def store_many(self, batches: list[PreparedBatch]) -> list[StoreResult]:
        frame = encode_frame([tuple(batch) for batch in batches])
        child = await self._current()
        stdin = child.stdin
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
            raise ERRORS.get(error, StorageError)(answer.get("message", error))
        return [StoreResult(*r) for r in answer["results"]]

    async def close(self, timeout: float = 15.0) -> None:
        """Let the child finish what it was sent, then wait for it to exit."""
        child, self._child = self._child, None
        if child is None:
            return
        child.stdin.close()
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
