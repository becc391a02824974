"""The uploader: sends the spool to the collector, in a detached process or in the foreground.

Run as ``python -m optin.client.upload JOB`` (``JOB``: a small JSON object with the policy path,
the directories, the endpoint and the working directory), started by the CLI in a new session
with no terminal and the standard streams on ``/dev/null``, so the CLI that started it never
waits and never sees it. ``telemetry upload`` and simulations call
:func:`run` in the foreground with the same algorithm.

The algorithm, one run:

1. Take ``upload.lock`` without waiting; if another process holds it, stop ("busy"). At most
   one uploader runs per user and app.
2. Prune the spool to its bounds (age, count), counting what is dropped.
3. Re-read consent before every batch: if telemetry is no longer ``on`` (the user ran
   ``telemetry off`` meanwhile), stop without sending.
4. Take the oldest events of one policy version, up to ``settings.upload_batch_size``; an
   unreadable entry is quarantined and counted, the others still go. POST them as one gzip
   JSON batch with short timeouts.
5. On the answer (see docs/design.md):
   - 2xx: delete exactly the files of that batch; events the collector rejected are counted.
   - 413: halve the batch and try again; a single event that is still too large is dropped.
   - 400, 415, 422: the batch can never succeed: delete it, count it, show it in ``status``.
   - 429, 503: keep everything; the next run waits ``Retry-After`` (seconds or an HTTP date,
     capped at 300 s; 60 s when missing or unparsable).
   - anything else, refused, timed out: keep everything; the next run waits an exponential
     backoff with jitter (60 s doubling per consecutive failure, at most 12 h).
6. Record the result and the next due time.

Nothing is retried for ever: a run sends at most ``MAX_BATCHES`` batches and stops at the first
failure; kept events age out of the spool after ``spool_max_age_days`` and are counted then. A
detached run is killed by its own watchdog after ``HARD_LIMIT_SECONDS``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optin.client import consent, spool
from optin.events import MAX_BATCH_EVENTS
from optin.policy import Policy

if TYPE_CHECKING:
    from optin.client.transport import Transport

__all__ = ["UploadResult", "main", "pending_batches", "retry_after", "run"]

TIMEOUT_SECONDS = 5.0
MAX_BATCHES = 100
HARD_LIMIT_SECONDS = 120.0
RETRY_AFTER_CAP = 300.0
RETRY_AFTER_DEFAULT = 60.0
BACKOFF_BASE = 60.0
BACKOFF_CAP = 12 * 3600.0
_DROP_STATUSES = (400, 415, 422)
_WAIT_STATUSES = (429, 503)


@dataclass(frozen=True)
class UploadResult:
    """What one run did; ``message`` is the one line ``telemetry upload`` prints."""

    ok: bool
    message: str
    sent: int = 0
    dropped: int = 0
    pending: int = 0
    retry_at: float | None = None

    def __str__(self) -> str:
        return self.message


def retry_after(value: str | None, now: float) -> float:
    """Seconds to wait from a ``Retry-After`` header: capped at 300, 60 when unparsable."""
    if value is None:
        return RETRY_AFTER_DEFAULT
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP)
    from email.utils import parsedate_to_datetime

    try:
        when = float(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return RETRY_AFTER_DEFAULT
    return max(0.0, min(when - now, RETRY_AFTER_CAP))


def _backoff(failures: int) -> float:
    import random

    delay = min(BACKOFF_BASE * 2 ** max(0, failures - 1), BACKOFF_CAP)
    return float(delay * random.uniform(0.5, 1.0))


def run(
    policy: Policy,
    *,
    state_dir: str,
    config_dir: str,
    endpoint: str,
    transport: Transport,
    environ: Mapping[str, str],
    clock: Callable[[], float] = time.time,
    cwd: str | None = None,
    timeout: float = TIMEOUT_SECONDS,
    still_on: Callable[[], bool] | None = None,
) -> UploadResult:
    """One upload run (see the module docstring). Never raises for network or HTTP trouble."""
    if still_on is None:

        def still_on() -> bool:
            return _consent_on(policy, environ, config_dir, clock(), cwd)

    if not os.path.isdir(os.path.join(state_dir, spool.SPOOL)):
        return UploadResult(True, "nothing to upload")
    with spool.lock(state_dir) as held:
        if not held:
            return UploadResult(False, "another upload is running; try again in a moment")
        return _run_locked(policy, state_dir, endpoint, transport, clock, timeout, still_on)


def _consent_on(
    policy: Policy, environ: Mapping[str, str], config_dir: str, now: float, cwd: str | None
) -> bool:
    decision = consent.resolve(
        policy.app, lambda: policy, environ, config_dir, now=now, interactive=False, cwd=cwd
    )
    return decision.state == "on"


def _run_locked(
    policy: Policy,
    state_dir: str,
    endpoint: str,
    transport: Transport,
    clock: Callable[[], float],
    timeout: float,
    still_on: Callable[[], bool],
) -> UploadResult:
    from optin.client.transport import Request, TransportError

    settings = policy.settings
    now = clock()
    stats = spool.load_stats(state_dir)
    directory = os.path.join(state_dir, spool.SPOOL)
    for key, count in spool.prune(
        state_dir, directory, settings.spool_max_events, settings.spool_max_age_days, now
    ).items():
        stats[key] = stats.get(key, 0) + count
    url = endpoint.rstrip("/") + "/v1/events"
    size = max(1, min(settings.upload_batch_size, MAX_BATCH_EVENTS))
    sent = dropped = 0
    failure: str | None = None
    wait: float | None = None
    for _ in range(MAX_BATCHES):
        if not still_on():
            failure = "telemetry is not on: nothing sent"
            break
        batch, events = _take(state_dir, directory, size, stats)
        if not batch:
            break
        body = json.dumps(
            {"app": policy.app, "policy_version": batch[0].version, "events": events},
            separators=(",", ":"),
        ).encode()
        import gzip

        request = Request(
            url,
            gzip.compress(body, 6),
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        try:
            response = transport.send(request, timeout)
        except TransportError as exc:
            failure = f"could not reach {endpoint} ({exc})"
            break
        status = response.status
        if 200 <= status < 300:
            answer = response.json()
            rejected = answer.get("rejected", []) if isinstance(answer, dict) else []
            rejected_n = len(rejected) if isinstance(rejected, list) else 0
            _delete(batch)
            sent += len(batch) - rejected_n
            dropped += rejected_n
            stats["dropped_rejected"] = stats.get("dropped_rejected", 0) + rejected_n
        elif status == 413 and len(batch) > 1:
            size = max(1, len(batch) // 2)
        elif status == 413 or status in _DROP_STATUSES:
            _delete(batch)
            dropped += len(batch)
            stats["dropped_invalid"] = stats.get("dropped_invalid", 0) + len(batch)
            answer = response.json()
            code = answer.get("error") if isinstance(answer, dict) else None
            stats["last_refusal"] = f"HTTP {status} {code or ''}".strip()
        elif status in _WAIT_STATUSES:
            wait = retry_after(response.headers.get("retry-after"), clock())
            failure = f"the collector asked to wait (HTTP {status}); retrying in {wait:.0f} s"
            break
        else:
            failure = f"the collector failed (HTTP {status})"
            break
    pending = len(spool.entries(directory))
    later = clock()
    if failure is None:
        stats["failures"] = 0
        retry_at = later + settings.upload_interval_hours * 3600
        message = f"uploaded {sent} event(s)" if sent or dropped else "nothing to upload"
        if dropped:
            message += f"; {dropped} refused by the collector and dropped"
    else:
        stats["failures"] = stats.get("failures", 0) + 1
        retry_at = later + (wait if wait is not None else _backoff(stats["failures"]))
        message = (
            f"{failure}; {pending} event(s) kept"
            if sent == 0
            else (f"uploaded {sent} event(s), then {failure}; {pending} event(s) kept")
        )
    stats["last_upload"] = {"time": int(later), "ok": failure is None, "result": message}
    try:
        spool.save_stats(state_dir, stats)
        spool.set_next(state_dir, retry_at)
    except OSError:
        pass
    return UploadResult(failure is None, message, sent, dropped, pending, retry_at)


def _take(
    state_dir: str, directory: str, size: int, stats: dict[str, Any]
) -> tuple[list[spool.Entry], list[dict[str, Any]]]:
    """The oldest events of one policy version, at most ``size``; quarantines unreadable ones."""
    batch: list[spool.Entry] = []
    events: list[dict[str, Any]] = []
    version: int | None = None
    for entry in spool.entries(directory):
        if version is not None and entry.version != version:
            continue
        event = spool.read(entry)
        if event is None:
            if os.path.exists(entry.path):
                spool.quarantine(state_dir, entry.path)
                stats["quarantined"] = stats.get("quarantined", 0) + 1
            continue
        version = entry.version
        batch.append(entry)
        events.append(event)
        if len(batch) >= size:
            break
    return batch, events


def _delete(batch: list[spool.Entry]) -> None:
    for entry in batch:
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            pass


def pending_batches(policy: Policy, state_dir: str) -> list[dict[str, Any]]:
    """The batches the next upload would send, as JSON objects (``telemetry show``)."""
    directory = os.path.join(state_dir, spool.SPOOL)
    size = max(1, min(policy.settings.upload_batch_size, MAX_BATCH_EVENTS))
    batches: list[dict[str, Any]] = []
    for entry in spool.entries(directory):
        event = spool.read(entry)
        if event is None:
            continue
        last = batches[-1] if batches else None
        if last is None or last["policy_version"] != entry.version or len(last["events"]) >= size:
            last = {"app": policy.app, "policy_version": entry.version, "events": []}
            batches.append(last)
        last["events"].append(event)
    return batches


# --- the detached process ----------------------------------------------------------------------


def _policy_from_job(data: Mapping[str, Any]) -> Policy:
    from optin.policy import from_data, load

    if data.get("policy"):
        return load(data["policy"])
    return from_data(data["data"])


def main(argv: list[str] | None = None) -> int:
    """Entry point of the detached process: one run, quietly; exit status for tests only."""
    import threading

    try:
        os.nice(10)  # never urgent: leave the CPU to the tool the user is waiting for
    except (AttributeError, OSError):
        pass
    watchdog = threading.Timer(HARD_LIMIT_SECONDS, os._exit, (3,))
    watchdog.daemon = True
    watchdog.start()
    args = sys.argv[1:] if argv is None else argv
    try:
        data = json.loads(args[0])
        policy = _policy_from_job(data)
        from optin.client.transport import UrllibTransport

        timeout = float(os.environ.get("OPTIN_UPLOAD_TIMEOUT", TIMEOUT_SECONDS))
        result = run(
            policy,
            state_dir=data["state_dir"],
            config_dir=data["config_dir"],
            endpoint=data["endpoint"],
            transport=UrllibTransport(),
            environ=os.environ,
            cwd=data.get("cwd"),
            timeout=timeout,
        )
    except Exception:
        return 1
    finally:
        watchdog.cancel()
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
