"""From request bytes to the events worth storing: media type, gzip, JSON, the batch, validation.

Every step refuses cheaply and with one error code, and nothing a client sends can raise anything
but :class:`~optin.server.errors.HTTPError` out of here. The pitfalls, and how each is closed:

- a gzip bomb: the body is capped on the wire (1 MiB) and inflated with ``max_length`` so at most
  8 MiB + 1 byte is ever produced, whatever the ratio (413);
- a body of millions of tiny objects that fits in 8 MiB but would take hundreds of MB once parsed:
  ``{`` and ``[`` are counted first (a C loop over bytes) and capped at 8 per allowed event (413);
- deep nesting: orjson refuses depth > 1024 with ``JSONDecodeError`` (Python's ``json`` would raise
  ``RecursionError``), and nothing here recurses (400);
- ``NaN`` / ``Infinity`` / ``1e400``: orjson refuses them (400);
- lone surrogates (``"\\ud800"``) and invalid UTF-8: orjson refuses them, so they never reach a
  database driver (400);
- duplicate keys (``{"os": "linux", "os": "beos"}``): orjson keeps the last, another parser the
  first; such a batch is ambiguous and refused (400). Checking costs almost nothing: a valid batch
  has no ``:`` inside strings, so the number of ``:`` in the text equals the number of keys parsed
  unless a key was repeated or a string holds a colon; only then is the text parsed again with a
  hook that sees every pair.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from optin.events import MAX_BATCH_EVENTS
from optin.policy import Policy, load
from optin.server.errors import HTTPError
from optin.server.typed import DECODE_ERRORS, FastCheck, compile_fast, decode_envelope
from optin.server.validate import (
    FUTURE_SLACK,
    Checker,
    compile_policy,
    reason_of,
    window_reason,
)

__all__ = [
    "MAX_CONTAINERS",
    "MAX_JSON_BYTES",
    "MAX_WIRE_BYTES",
    "Batch",
    "Compiled",
    "Policies",
    "check_media_type",
    "decode",
    "inflate",
    "parse_batch",
    "parse_slow",
]

MAX_WIRE_BYTES = 1 << 20
MAX_JSON_BYTES = 8 << 20
#: Objects and arrays in a batch: a valid event has at most 4 (itself, options, dimensions,
#: values or properties); twice that leaves room for junk in refused events.
MAX_CONTAINERS = 2 + 8 * MAX_BATCH_EVENTS
_BATCH_KEYS = frozenset(("app", "policy_version", "events"))
_TIME = itemgetter("time")


def _show(value: object) -> str:
    if isinstance(value, str):
        return repr(value[:40] + ("..." if len(value) > 40 else ""))
    return type(value).__name__


class Compiled(NamedTuple):
    """A policy with its compiled checker (the slow path) and typed decoder (the fast path)."""

    policy: Policy
    check: Checker
    fast: FastCheck


class Policies:
    """Every policy the collector accepts, by app and version, compiled."""

    def __init__(self, policies: list[Policy]) -> None:
        self.by_app: dict[str, dict[int, Compiled]] = {}
        for policy in policies:
            versions = self.by_app.setdefault(policy.app, {})
            if policy.version in versions:
                raise ValueError(
                    f"{policy.source}: {policy.app} version {policy.version} is also in "
                    f"{versions[policy.version].policy.source}"
                )
            versions[policy.version] = Compiled(
                policy, compile_policy(policy), compile_fast(policy)
            )

    @classmethod
    def load(cls, path: str | Path) -> Policies:
        """A policy file, or a directory of ``*.toml`` policies (several versions may coexist)."""
        where = Path(path)
        files = sorted(where.glob("*.toml")) if where.is_dir() else [where]
        if not files:
            raise ValueError(f"{where}: no *.toml policy in this directory")
        return cls([load(f) for f in files])

    def latest(self, app: str) -> Policy | None:
        versions = self.by_app.get(app)
        return versions[max(versions)].policy if versions else None

    def resolve(self, app: str, version: int) -> Compiled:
        """The policy a batch is checked against.

        The exact version when the collector has it; an older version it no longer has is checked
        against the newest one (old clients keep working for every field that still exists); a
        newer version than any it knows is refused: the collector must be updated first.
        """
        versions = self.by_app.get(app)
        if not versions:
            raise HTTPError(
                "unknown_app", f"this collector accepts no events for app {_show(app)}", rejected=[]
            )
        if version in versions:
            return versions[version]
        newest = max(versions)
        if version > newest:
            raise HTTPError(
                "unknown_policy_version",
                f"policy version {version} of {app!r} is newer than this collector knows "
                f"(latest {newest}): update the collector's policy",
                rejected=[],
            )
        return versions[newest]


def check_media_type(content_type: bytes | None, content_encoding: bytes | None) -> bool:
    """Refuse anything but JSON (UTF-8); return whether the body is gzip-compressed."""
    if content_type is None:
        raise HTTPError("unsupported_media_type", "Content-Type must be application/json")
    media, _, params = content_type.partition(b";")
    if media.strip().lower() != b"application/json":
        raise HTTPError(
            "unsupported_media_type",
            f"Content-Type must be application/json, not {_show(media.decode('latin-1'))}",
        )
    for param in params.split(b";"):
        name, _, value = param.partition(b"=")
        if name.strip().lower() == b"charset" and value.strip().strip(b'"').lower() not in (
            b"utf-8",
            b"utf8",
        ):
            raise HTTPError("unsupported_media_type", "the only charset accepted is utf-8")
    if content_encoding is None:
        return False
    encoding = content_encoding.strip().lower()
    if encoding == b"gzip":
        return True
    if encoding in (b"", b"identity"):
        return False
    raise HTTPError(
        "unsupported_media_type",
        f"Content-Encoding {_show(encoding.decode('latin-1'))} is not supported: use gzip or none",
    )


def inflate(body: bytes, limit: int = MAX_JSON_BYTES) -> bytes:
    """Gunzip with a hard cap on the output: a bomb costs at most ``limit`` bytes of work."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise HTTPError("malformed", "the body is not valid gzip") from None
    if len(out) > limit:
        raise HTTPError(
            "too_large", f"the body is over {limit >> 20} MiB once decompressed", close=True
        )
    if not inflater.eof:
        raise HTTPError("malformed", "the gzip stream is truncated")
    if inflater.unused_data:
        raise HTTPError("malformed", "there is data after the end of the gzip stream")
    return out


def _containers(raw: bytes) -> None:
    if raw.count(b"{") + raw.count(b"[") > MAX_CONTAINERS:
        raise HTTPError(
            "too_large",
            f"too many objects and arrays for a batch of at most {MAX_BATCH_EVENTS} events",
        )


def decode(raw: bytes) -> Any:
    """JSON text to Python values, refusing what orjson refuses and bodies too rich to parse."""
    _containers(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HTTPError("malformed", f"the body is not valid JSON: {exc}") from None


def _count_keys(root: Any) -> int:
    """Keys in every object under ``root``, without recursion (depth may reach 1024)."""
    count = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            count += len(node)
            stack.extend(v for v in node.values() if type(v) is dict or type(v) is list)
        elif type(node) is list:
            stack.extend(v for v in node if type(v) is dict or type(v) is list)
    return count


class _DuplicateKey(Exception):
    pass


def _no_repeat(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


def _has_duplicate_keys(raw: bytes) -> bool:
    try:
        json.loads(raw, object_pairs_hook=_no_repeat)
    except _DuplicateKey:
        return True
    except RecursionError:
        raise HTTPError("malformed", "the JSON is nested too deeply for a batch") from None
    return False


@dataclass(slots=True)
class Batch:
    """A decoded batch: the events to store and ``(index, reason)`` for each refused one."""

    app: str
    policy: Policy
    valid: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _envelope(data: Any) -> tuple[str, int, list[Any]]:
    if type(data) is not dict:
        raise HTTPError(
            "malformed", 'the body must be a batch object {"app", "policy_version", "events"}'
        )
    keys = data.keys()
    if keys != _BATCH_KEYS:
        missing = sorted(_BATCH_KEYS - keys)
        extra = sorted(keys - _BATCH_KEYS)
        what = f"missing {missing[0]!r}" if missing else f"unknown key {_show(extra[0])}"
        raise HTTPError("malformed", f"not a batch object: {what}")
    app, version, events = data["app"], data["policy_version"], data["events"]
    if type(app) is not str:
        raise HTTPError("malformed", f"'app' must be a string, not {_show(app)}")
    if type(version) is not int or version < 1:
        raise HTTPError("malformed", "'policy_version' must be a whole number from 1")
    if type(events) is not list:
        raise HTTPError("malformed", f"'events' must be a list, not {_show(events)}")
    if len(events) > MAX_BATCH_EVENTS:
        raise HTTPError(
            "too_large", f"{len(events)} events in one batch; at most {MAX_BATCH_EVENTS}"
        )
    return app, version, events


def parse_batch(raw: bytes, policies: Policies, now: float) -> Batch:
    """Decode and check a (decompressed) body; refuse it whole or return what to store.

    A batch of valid events takes the typed fast path (:mod:`optin.server.typed`); anything
    else, the slow path, which finds the reason for each refusal.
    """
    _containers(raw)
    return _parse_fast(raw, policies, now) or parse_slow(raw, policies, now)


def _parse_fast(raw: bytes, policies: Policies, now: float) -> Batch | None:
    """The batch when every event passes the typed decoder, else None (the slow path decides).

    Called after the count of objects and arrays (:func:`parse_batch`), as the slow path is.
    """
    try:
        envelope = decode_envelope(raw)
    except DECODE_ERRORS:
        return None
    if envelope.policy_version < 1:
        return None
    try:
        compiled = policies.resolve(envelope.app, envelope.policy_version)
    except HTTPError:
        return None
    found = compiled.fast(envelope.events)
    if found is None:
        return None
    events, keys = found
    if raw.count(b":") != len(_BATCH_KEYS) + keys:
        return None
    batch = Batch(envelope.app, compiled.policy)
    earliest, latest = _window(batch.policy, now)
    times = list(map(_TIME, events))  # a C loop; the batch is valid as a whole
    if times and earliest <= min(times) and max(times) <= latest:
        batch.valid = events
        return batch
    for index, event in enumerate(events):
        if earliest <= event["time"] <= latest:
            batch.valid.append(event)
        else:
            batch.rejected.append((index, _outside(batch.policy, event["time"], now)))
    return batch


def _window(policy: Policy, now: float) -> tuple[float, float]:
    """The first and last hour the collector takes an event for (see ``window_reason``)."""
    return now - policy.settings.retention_days * 86400, now + FUTURE_SLACK


def _outside(policy: Policy, when: int, now: float) -> str:
    return str(window_reason(when, now, policy.settings.retention_days))


def parse_slow(raw: bytes, policies: Policies, now: float) -> Batch:
    """:func:`parse_batch` without the fast path: orjson, then the compiled checker per event."""
    data = decode(raw)
    app, version, events = _envelope(data)
    policy, check, _ = policies.resolve(app, version)
    batch = Batch(app, policy)
    valid, rejected = batch.valid, batch.rejected
    earliest, latest = _window(policy, now)
    keys = len(_BATCH_KEYS)
    for index, event in enumerate(events):
        count = check(event)
        if count:
            keys += count
            if earliest <= event["time"] <= latest:
                valid.append(event)
            else:
                rejected.append((index, _outside(policy, event["time"], now)))
        else:
            keys += _count_keys(event)
            rejected.append((index, reason_of(policy, event)))
    if raw.count(b":") != keys and _has_duplicate_keys(raw):
        raise HTTPError("malformed", "an object has the same key twice")
    return batch
