"""The local queue: one file per event, crash-safe, safe for many processes, bounded.

Layout of the state directory::

    spool/        events waiting for upload: <time_ns>-<policy version>-<event id>.json
    local/        events recorded in ``local`` mode, for ``telemetry report``; never uploaded
    quarantine/   entries that could not be read (kept for a look, at most QUARANTINE_MAX)
    stats.json    counters (drops, quarantined) and the last upload result
    next-upload   when the next upload is due (Unix seconds, text)
    upload.lock   held (flock) by the one process that uploads or prunes

Why it is safe:

- **Crash.** An event is written to ``.<name>.tmp`` in the same directory and renamed into place.
  ``rename`` is atomic, so a reader sees a whole event or none; readers skip dot-files, and stale
  temporary files (a process killed mid-write) are removed by the next prune.
  (We do not ``fsync`` on the hot path: after a power loss an entry may be empty; it is then
  quarantined and counted like any corrupt entry.)
- **Concurrency.** Writers never touch an existing file and names are unique (random id), so any
  number of processes append at once without a lock. Only the uploader and the pruner delete, and
  they hold ``upload.lock``, so there is one deleter at a time. A file is deleted only after the
  collector acknowledged it.
- **Bounds.** The pruner drops entries older than ``spool_max_age_days`` and then the oldest
  beyond ``spool_max_events``, and counts both in ``stats.json``.

The writer (:func:`append`, :func:`dumps`) and the schedule (:func:`due`, :func:`set_next`) live in
:mod:`.capture` and are re-exported here: a command with telemetry on then imports one module, not
two (each import costs a command a few hundred microseconds). This module is what the uploader,
``telemetry show|status|off`` and the local-mode pruner load.
"""

from __future__ import annotations

import os
import time

from optin.client.capture import LOCAL, NEXT, SPOOL, append, due, dumps, set_next

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "LOCAL",
    "NEXT",
    "SPOOL",
    "Entry",
    "append",
    "due",
    "dumps",
    "entries",
    "load_stats",
    "lock",
    "move_all",
    "prune",
    "quarantine",
    "read",
    "save_stats",
    "set_next",
    "wipe",
]

QUARANTINE = "quarantine"
QUARANTINE_MAX = 100
STATS = "stats.json"
LOCK = "upload.lock"
#: A temporary file older than this was left by a killed process.
STALE_TMP_SECONDS = 600
_STATE_FILES = (STATS, NEXT, LOCK, "session", "secret", "policy.cache")
_STATE_DIRS = (SPOOL, LOCAL, QUARANTINE, "marks")


class Entry:
    """One spooled event; entries sort by file name, i.e. by the time they were recorded."""

    __slots__ = ("directory", "name", "time_ns", "version")

    def __init__(self, name: str, directory: str, time_ns: int, version: int) -> None:
        self.name = name
        self.directory = directory
        self.time_ns = time_ns
        self.version = version

    @property
    def path(self) -> str:
        return os.path.join(self.directory, self.name)

    def __lt__(self, other: Entry) -> bool:
        return self.name < other.name

    def __repr__(self) -> str:
        return f"Entry({self.name!r})"


def _parse(directory: str, name: str) -> Entry | None:
    if not name.endswith(".json"):
        return None
    parts = name[:-5].split("-")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return Entry(name, directory, int(parts[0]), int(parts[1]))


def entries(directory: str, bad: list[str] | None = None) -> list[Entry]:
    """The events in ``directory``, oldest first; names that are not events go to ``bad``."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        if name.startswith("."):
            continue
        entry = _parse(directory, name)
        if entry is not None:
            found.append(entry)
        elif bad is not None:
            bad.append(name)
    found.sort()
    return found


def read(entry: Entry) -> dict[str, Any] | None:
    """The event, or None if the file is unreadable or not an event."""
    import json

    try:
        with open(entry.path, "rb") as f:
            event = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return event if isinstance(event, dict) and "id" in event and "kind" in event else None


def quarantine(state_dir: str, path: str) -> None:
    """Move an unreadable entry aside (bounded), so the good ones still go."""
    qdir = os.path.join(state_dir, QUARANTINE)
    os.makedirs(qdir, exist_ok=True)
    try:
        os.replace(path, os.path.join(qdir, os.path.basename(path).lstrip(".")))
    except FileNotFoundError:
        return
    kept = sorted(os.listdir(qdir))
    for name in kept[: max(0, len(kept) - QUARANTINE_MAX)]:
        _unlink(os.path.join(qdir, name))


def prune(
    state_dir: str, directory: str, max_events: int, max_age_days: int, now: float
) -> dict[str, int]:
    """Apply the bounds (caller holds :func:`lock`): returns counts dropped by age, by size, bad."""
    dropped = {"dropped_old": 0, "dropped_full": 0, "quarantined": 0}
    bad: list[str] = []
    found = entries(directory, bad)
    for name in bad:
        quarantine(state_dir, os.path.join(directory, name))
        dropped["quarantined"] += 1
    oldest_ok = int((now - max_age_days * 86400) * 1e9)
    keep = []
    for entry in found:
        if entry.time_ns < oldest_ok:
            _unlink(entry.path)
            dropped["dropped_old"] += 1
        else:
            keep.append(entry)
    for entry in keep[: max(0, len(keep) - max_events)]:
        _unlink(entry.path)
        dropped["dropped_full"] += 1
    _clean_tmp(directory)
    return dropped


def _clean_tmp(directory: str) -> None:
    limit = time.time() - STALE_TMP_SECONDS
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(".") and name.endswith(".tmp"):
            path = os.path.join(directory, name)
            try:
                if os.stat(path).st_mtime < limit:
                    os.unlink(path)
            except OSError:
                pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def load_stats(state_dir: str) -> dict[str, Any]:
    """Counters and the last upload result; empty when there are none (or they are unreadable)."""
    import json

    try:
        with open(os.path.join(state_dir, STATS), "rb") as f:
            data = json.loads(f.read())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_stats(state_dir: str, stats: dict[str, Any]) -> None:
    """Write the counters atomically (caller holds :func:`lock`)."""
    import json

    path = os.path.join(state_dir, STATS)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(stats, f, sort_keys=True)
    os.replace(tmp, path)


def next_time(state_dir: str) -> float | None:
    try:
        with open(os.path.join(state_dir, NEXT), "rb") as f:
            return float(f.read(64))
    except (OSError, ValueError):
        return None


class lock:
    """Try to become the one uploader/pruner: ``as held`` is True if we hold the lock.

    ``flock`` (``msvcrt.locking`` on Windows) is released by the kernel when the holder dies, so
    a killed uploader never leaves the spool locked.
    """

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.fd = -1

    def __enter__(self) -> bool:
        os.makedirs(self.state_dir, exist_ok=True)
        self.fd = os.open(os.path.join(self.state_dir, LOCK), os.O_RDWR | os.O_CREAT, 0o600)
        return _try_lock(self.fd)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing releases the lock


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def busy(state_dir: str) -> bool:
    """True while some process holds the upload lock."""
    if not os.path.exists(os.path.join(state_dir, LOCK)):
        return False
    with lock(state_dir) as held:
        return not held


def move_all(source: str, target: str) -> int:
    """Move every event from one store to another (on -> local): returns how many."""
    moved = 0
    for entry in entries(source):
        os.makedirs(target, exist_ok=True)
        try:
            os.replace(entry.path, os.path.join(target, entry.name))
        except FileNotFoundError:
            continue
        moved += 1
    return moved


def wipe(state_dir: str) -> None:
    """Remove everything the client keeps in ``state_dir`` (telemetry turned off)."""
    import shutil

    for name in _STATE_DIRS:
        shutil.rmtree(os.path.join(state_dir, name), ignore_errors=True)
    for name in _STATE_FILES:
        _unlink(os.path.join(state_dir, name))
    try:
        for name in os.listdir(state_dir):
            if name.endswith(".tmp"):
                _unlink(os.path.join(state_dir, name))
        os.rmdir(state_dir)
    except OSError:
        pass
