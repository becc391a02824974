"""The storage process: a child of each collector worker that does its database writes
(SQLite or PostgreSQL).

Why a process: validating requests and storing them are both CPU work in Python, and the GIL lets
only one run at a time in a process (a writer *thread* was measured slower than none, see
:mod:`optin.server.writer`). In a child, the storage uses the second core while the worker parses
and validates the next requests.

The worker prepares each batch before sending it (:func:`optin.storage.base.prepare_batch`:
canonical rows, rollup deltas, session states), so the child only writes: the two processes
share the work, where the child alone was the bottleneck (95 % busy, the worker 40 %).

Protocol, over the child's stdin and stdout: frames of a 4-byte big-endian length and a
:mod:`marshal` body (bytes and tuples as they are, faster than JSON; both ends are the same
Python, and the child reads only its parent). A request is a list of prepared batches (as
tuples, the batches of one group); the answer, in the same order, is ``{"results":
[[accepted, duplicates, conflicts], ...]}`` once they are committed, or ``{"error": kind,
"message": text}`` with kind ``contended``, ``unavailable``, ``full`` or ``error``. Requests
that are already waiting when the child is free are stored together in one transaction, each
answered on its own. The child exits when its stdin closes (the worker stopped or died).

    python -m optin.storage.process DATABASE_URL
"""

from __future__ import annotations

import logging
import marshal
import os
import signal
import struct
import sys
from collections.abc import Iterator
from typing import Any

from optin.storage import open_storage
from optin.storage.base import (
    PreparedBatch,
    Storage,
    StorageContended,
    StorageError,
    StorageFull,
    StorageUnavailable,
    StoreResult,
)

__all__ = ["ERRORS", "HEADER", "decode_frame", "encode_frame", "main"]

HEADER = struct.Struct(">I")
#: Events stored in one transaction at most: more would not commit faster, only hold more memory.
GROUP_EVENTS = 1000
log = logging.getLogger("optin.storage")


def encode_frame(value: Any) -> bytes:
    body = marshal.dumps(value)
    return HEADER.pack(len(body)) + body


def decode_frame(body: bytes) -> Any:
    return marshal.loads(body)


#: The error kinds of an answer, the most specific first (the worker raises the same class).
ERRORS: dict[str, type[StorageError]] = {
    "contended": StorageContended,
    "unavailable": StorageUnavailable,
    "full": StorageFull,
    "error": StorageError,
}


def _error(exc: BaseException) -> dict[str, Any]:
    kind = next((kind for kind, cls in ERRORS.items() if isinstance(exc, cls)), "error")
    if not isinstance(exc, StorageError):
        log.error("storage process: %s", type(exc).__name__, exc_info=exc)
    return {"error": kind, "message": str(exc)}


class _Frames:
    """Complete frames from a file descriptor: every one already there, or wait for one."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()

    def _split(self) -> list[bytes]:
        frames = []
        view = self.buffer
        start = 0
        while len(view) - start >= HEADER.size:
            (length,) = HEADER.unpack_from(view, start)
            if len(view) - start - HEADER.size < length:
                break
            frames.append(bytes(view[start + HEADER.size : start + HEADER.size + length]))
            start += HEADER.size + length
        del view[:start]
        return frames

    def next_group(self) -> list[bytes] | None:
        """Block until at least one frame is complete; ``None`` at end of input."""
        while True:
            frames = self._split()
            if frames:
                return frames
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return None
            self.buffer += chunk


def _store(storage: Storage, requests: list[Any]) -> list[dict[str, Any]]:
    flat = [PreparedBatch(*batch) for request in requests for batch in request]
    results: list[StoreResult] = []
    start = end = events = 0
    while end < len(flat):  # a transaction per GROUP_EVENTS, a batch never split
        events += len(flat[end].rows)
        end += 1
        if events >= GROUP_EVENTS or end == len(flat):
            results += storage.store_prepared(flat[start:end])
            start, events = end, 0
    answers = []
    for request in requests:
        mine, results = results[: len(request)], results[len(request) :]
        answers.append({"results": [[r.accepted, r.duplicates, r.conflicts] for r in mine]})
    return answers


def _groups(frames: list[bytes]) -> Iterator[list[Any]]:
    """The decoded requests, in order, a transaction's worth (``GROUP_EVENTS``) at a time."""
    group: list[Any] = []
    events = 0
    for frame in frames:
        request = decode_frame(frame)
        group.append(request)
        events += sum(len(batch[1]) for batch in request)
        if events >= GROUP_EVENTS:
            yield group
            group, events = [], 0
    if group:
        yield group


def serve(url: str, infd: int, outfd: int) -> None:
    frames = _Frames(infd)
    storage: Storage | None = None

    def attempt(requests: list[Any]) -> list[dict[str, Any]]:
        nonlocal storage
        try:
            if storage is None:
                storage = open_storage(url)
            return _store(storage, requests)
        except Exception as exc:
            if isinstance(exc, StorageError) or len(requests) == 1:
                return [_error(exc)] * len(requests)
            # Not the database: a request the storage cannot take (a bug). Alone, the others
            # are stored and only that one fails.
            return [answer for request in requests for answer in attempt([request])]

    try:
        while (arrived := frames.next_group()) is not None:
            for requests in _groups(arrived):
                out = b"".join(encode_frame(answer) for answer in attempt(requests))
                while out:
                    out = out[os.write(outfd, out) :]
    finally:
        if storage is not None:
            storage.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m optin.storage.process DATABASE_URL", file=sys.stderr)
        return 2
    # Ctrl-C in a terminal reaches the whole process group: the worker decides when to stop,
    # by closing our stdin once its requests in flight are answered.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(args[0], sys.stdin.fileno(), sys.stdout.fileno())
    except BrokenPipeError:
        pass  # the worker is gone
    return 0


if __name__ == "__main__":
    sys.exit(main())
