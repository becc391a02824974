"""Capturing events: the platform context, the rotating session id, the active pings, and the
write of each event into the spool.

Everything a command runs with telemetry on, once the state directory exists, is in this one
module (with :mod:`optin.policy`, already loaded): :func:`append` and the upload schedule
(:func:`due`, :func:`set_next`) belong to the spool's layout (:mod:`.spool`, which re-exports
them) but live here so that recording a command imports one module, not two.

Every event passes :func:`optin.events.validate_event`: values come from closed lists in the
policy or from this module's own small vocabularies, never from the user's input.

Identity. ``secret`` is 32 random bytes made once per user and kept in the state directory; it
never leaves the machine. The session id of period ``p`` (``p = hour // session_rotation_hours``)
is ``HMAC-SHA256(secret, str(p))`` cut to 16 hex digits: stable within a period, unlinkable across
periods. It is cached in ``session`` (``"p id"``): a command does not pay for ``hmac`` every run.

Active pings. One ``active`` event per UTC day and one per UTC month, carrying no id: a marker
file ``marks/day-YYYY-MM-DD`` (``month-YYYY-MM``) is created with ``O_EXCL``, so of many
concurrent processes exactly one wins and sends the ping.
"""

import os
import sys
import time

from optin.policy import OTHER, UNKNOWN_COMMAND

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from optin.policy import Policy

__all__ = [
    "LOCAL",
    "NEXT",
    "SPOOL",
    "Context",
    "active_pings",
    "append",
    "command_event",
    "custom_event",
    "due",
    "dumps",
    "error_category",
    "session_id",
    "set_next",
]

#: The spool's layout in the state directory (see :mod:`.spool`).
SPOOL = "spool"
LOCAL = "local"
NEXT = "next-upload"
_NEXT_WIDTH = 32  # bytes: the schedule is rewritten in place, at a fixed width

# The bounds of ``optin.events``, repeated so the hot path need not import the validator (a test
# holds them equal).
MAX_DURATION_MS = 7 * 24 * 3600 * 1000
MAX_POSITIONALS = 10_000

_OS = {"linux": "linux", "darwin": "macos", "win32": "windows", "cygwin": "windows"}
_ARCH = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "x86",
    "i686": "x86",
    "x86": "x86",
}


def _os_name() -> str:
    if sys.platform.startswith("freebsd"):
        return "freebsd"
    return _OS.get(sys.platform, OTHER)


def _arch() -> str:
    if hasattr(os, "uname"):
        machine = os.uname().machine.lower()
    else:  # Windows
        machine = os.environ.get("PROCESSOR_ARCHITECTURE", "").lower()
    if machine in _ARCH:
        return _ARCH[machine]
    return "arm" if machine.startswith("arm") else OTHER


_VERSION_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.+_-")


def _is_version(text: str) -> bool:
    """``events.VERSION_RE`` without ``re`` (a few milliseconds to import on the hot path)."""
    return (
        isinstance(text, str)
        and 0 < len(text) <= 32
        and text[0].isascii()
        and text[0].isalnum()
        and all(c in _VERSION_CHARS for c in text)
    )


class Context:
    """The fields every event shares, computed once per process."""

    __slots__ = ("fields",)

    def __init__(self, app_version: str, ci: bool, interactive: bool) -> None:
        version = app_version if _is_version(app_version) else OTHER
        self.fields: dict[str, Any] = {
            "app_version": version,
            "os": _os_name(),
            "arch": _arch(),
            "python": f"3.{sys.version_info.minor}",
            "ci": ci,
            "interactive": interactive,
        }

    def base(self, kind: str, now: float) -> "dict[str, Any]":
        """A new event of ``kind``: a fresh random id, the time truncated to the hour."""
        return {
            "id": os.urandom(16).hex(),
            "kind": kind,
            "time": int(now // 3600) * 3600,
            **self.fields,
        }


def session_id(state_dir: str, policy: "Policy", now: float) -> str:
    """The session id of the period ``now`` falls in; creates the secret on first use."""
    period = int(now // 3600) // policy.settings.session_rotation_hours
    cache = os.path.join(state_dir, "session")
    try:
        with open(cache, "rb") as f:  # binary: text mode would import a codec
            cached_period, cached = f.read(64).split()
        if int(cached_period) == period and len(cached) == 16:
            return cached.decode()
    except (OSError, ValueError):
        pass
    import hashlib
    import hmac

    sid = hmac.new(_secret(state_dir), str(period).encode(), hashlib.sha256).hexdigest()[:16]
    _write_atomic(cache, f"{period} {sid}\n")
    return sid


def _secret(state_dir: str) -> bytes:
    path = os.path.join(state_dir, "secret")
    try:
        with open(path, "rb") as f:
            data = f.read()
        if len(data) == 32:
            return data
    except FileNotFoundError:
        pass
    # First use (or a damaged secret): make one. O_EXCL on a temporary name, then a rename that
    # only the first process wins (os.link fails if the target exists).
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(32))
    try:
        os.link(tmp, path)
    except FileExistsError:
        with open(path, "rb") as f:
            data = f.read()
        if len(data) != 32:  # damaged: replace it
            os.replace(tmp, path)
    except OSError:  # a file system without hard links
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    with open(path, "rb") as f:
        return f.read()


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(text.encode())
    os.replace(tmp, path)


def active_pings(state_dir: str, ctx: Context, now: float) -> "list[dict[str, Any]]":
    """The ``active`` events due now: at most one per UTC day and one per UTC month, ever."""
    t = time.gmtime(now)
    marks = os.path.join(state_dir, "marks")
    due: list[dict[str, Any]] = []
    for period, label in (
        ("day", f"day-{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"),
        ("month", f"month-{t.tm_year:04d}-{t.tm_mon:02d}"),
    ):
        path = os.path.join(marks, label)
        if os.path.exists(path):
            continue
        os.makedirs(marks, exist_ok=True)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            continue  # another process won this period
        _forget_older(marks, period, label)
        event = ctx.base("active", now)
        event["period"] = period
        due.append(event)
    return due


def _forget_older(marks: str, period: str, keep: str) -> None:
    for name in os.listdir(marks):
        if name.startswith(period + "-") and name < keep:
            try:
                os.unlink(os.path.join(marks, name))
            except OSError:
                pass


def error_category(policy: "Policy", error: BaseException | str | None) -> str | None:
    """The policy's category for an error: its class name or a listed base class, else other."""
    if error is None:
        return None
    if isinstance(error, str):
        return error if error in policy.errors else OTHER
    for cls in type(error).__mro__:
        if cls.__name__ in policy.errors:
            return cls.__name__
    return OTHER


def command_event(
    policy: "Policy",
    ctx: Context,
    session: str,
    now: float,
    *,
    path: str,
    options: "Mapping[str, object]",
    positionals: int | None,
    dimensions: "Mapping[str, str]",
    outcome: str,
    exit_code: int,
    error: str | None,
    duration: float,
) -> "dict[str, Any]":
    """A ``command`` event: only declared options, only allowed values, only asked-for counts."""
    cmd = policy.commands.get(path)
    event = ctx.base("command", now)
    event["session"] = session
    event["command"] = path if cmd is not None else UNKNOWN_COMMAND
    declared = cmd.options if cmd is not None else {}
    event["options"] = [name for name in options if name in declared]
    values = {}
    for name in event["options"]:
        allowed = declared[name].values
        if allowed is not None and options[name] is not None:
            value = options[name]
            values[name] = value if isinstance(value, str) and value in allowed else OTHER
    if values:
        event["values"] = values
    if cmd is not None and cmd.positional_count and positionals is not None:
        event["positionals"] = max(0, min(int(positionals), MAX_POSITIONALS))
    event["dimensions"] = dict(dimensions)
    event["outcome"] = outcome
    event["exit_code"] = exit_code if 0 <= exit_code <= 255 else 255
    if error is not None:
        event["error"] = error
    ms = int(max(0.0, duration) * 1000)
    event["duration_ms"] = min(ms, MAX_DURATION_MS)
    event["slow"] = duration >= policy.settings.slow_threshold_seconds
    return event


def custom_event(
    policy: "Policy",
    ctx: Context,
    session: str,
    now: float,
    name: str,
    properties: "Mapping[str, object]",
    dimensions: "Mapping[str, str]",
) -> "dict[str, Any] | None":
    """An ``event`` event with the policy's typed properties; None if the policy lacks ``name``."""
    edef = policy.events.get(name)
    if edef is None:
        return None
    props: dict[str, object] = {}
    for key, value in properties.items():
        prop = edef.properties.get(key)
        if prop is not None:
            try:
                props[key] = prop.coerce(value)
            except TypeError:
                continue  # a bucket given something that is not a number: leave it out
    event = ctx.base("event", now)
    event["session"] = session
    event["name"] = name
    event["properties"] = props
    event["dimensions"] = dict(dimensions)
    return event


# --- the spool's writer and the upload schedule (see :mod:`.spool` for the layout) -------------


def _plain(text: str) -> bool:
    """A string JSON writes as it is: printable ASCII without a quote or a backslash."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def dumps(value: object) -> str:
    """Compact JSON, as ``json.dumps(value, separators=(",", ":"))`` would write it.

    Events hold only short ASCII strings, ints, bools, lists and dicts, so this small encoder
    saves the hot path from importing ``json`` (and ``re``); anything unusual takes ``json``.
    """
    kind = type(value)
    if kind is str:
        if _plain(value):  # type: ignore[arg-type]
            return f'"{value}"'
    elif kind is dict:
        parts = []
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                return _dumps(value)
            parts.append(f'"{key}":{dumps(item)}' if _plain(key) else f"{dumps(key)}:{dumps(item)}")
        return "{" + ",".join(parts) + "}"
    elif kind is bool:
        return "true" if value else "false"
    elif kind is int:
        return str(value)
    elif kind is list:
        return "[" + ",".join([dumps(v) for v in value]) + "]"  # type: ignore[attr-defined]
    return _dumps(value)


def _dumps(value: object) -> str:
    """:func:`dumps` for what events seldom hold: ``None``, or anything else through ``json``."""
    if value is None:
        return "null"
    import json

    return json.dumps(value, separators=(",", ":"))


_seq = 0


def append(directory: str, event: "dict[str, Any]", policy_version: int, now: float) -> str:
    """Write one event atomically; create the directory on first use. Raises OSError."""
    global _seq
    _seq = (_seq + 1) % 1000  # keeps one process's events in order under a frozen test clock
    name = f"{int(now * 1e9) + _seq:020d}-{policy_version}-{event['id']}.json"
    data = dumps(event).encode()
    tmp = os.path.join(directory, f".{name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileNotFoundError:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    os.close(fd)
    final = os.path.join(directory, name)
    os.rename(tmp, final)
    return final


def due(state_dir: str, now: float) -> bool:
    """Whether the schedule says an upload (or a prune) may run now."""
    try:
        with open(os.path.join(state_dir, NEXT), "rb") as f:
            return now >= float(f.read(64))
    except (OSError, ValueError):  # none yet, or unreadable: due
        return True


def set_next(state_dir: str, when: float) -> None:
    """Record when the next upload may run.

    Written in place, not through a temporary file and a rename: replacing the file cost
    0.2-0.6 ms per due command on ext4, rewriting 32 bytes costs microseconds. A reader that
    caught the write half done reads garbage, which :func:`due` takes as "due": at worst one
    more uploader starts, finds the spool's lock held and exits.
    """
    fd = os.open(os.path.join(state_dir, NEXT), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(fd, repr(float(when)).encode().ljust(_NEXT_WIDTH))
        # Cuts a longer old text (written by hand, or damaged) that would leave a tail no
        # float parses, so every command would find the upload due. At the same size this
        # costs microseconds, where O_TRUNC cost 0.2 ms (the file's block freed each time).
        os.ftruncate(fd, _NEXT_WIDTH)
    finally:
        os.close(fd)
