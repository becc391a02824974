"""The event model: what an event is, and the reference validator both ends use.

Standard library only. The client builds events that pass :func:`validate_event`; the collector
refuses anything that does not. :func:`json_schema` renders the same rules as JSON Schema (draft
2020-12) so that anyone can check a payload by hand; a property-based test holds the two together.

Every field is an enum, a bool, an integer or a bounded identifier: there is no free text.

Wire format of a batch (``POST /v1/events``)::

    {"app": "demo-dfx", "policy_version": 1, "events": [EVENT, ...]}

Fields of every event (``kind`` says which further fields it has):

    id           32 lower-case hex digits, random per event (deduplication, never identity)
    kind         "command" | "event" | "active"
    time         Unix seconds, a multiple of 3600: the hour (UTC) the event happened in
    app_version  the tool's version, a bounded identifier
    os, arch     closed lists; python "3.N"; ci, interactive: bools

``command`` adds session, command, options, values?, positionals?, dimensions, outcome,
exit_code, error?, duration_ms, slow. ``event`` adds session, name, properties, dimensions.
``active`` adds period ("day" | "month") and carries no session id at all.
"""

from __future__ import annotations

from optin.policy import OTHER, UNKNOWN_COMMAND, _pattern

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from optin.policy import Command, Policy

__all__ = [
    "ARCHES",
    "KINDS",
    "MAX_BATCH_EVENTS",
    "OSES",
    "OUTCOMES",
    "BatchResult",
    "json_schema",
    "validate_batch",
    "validate_event",
]

KINDS = ("command", "event", "active")
OSES = ("linux", "macos", "windows", "freebsd", "other")
ARCHES = ("x86_64", "arm64", "x86", "arm", "other")
OUTCOMES = ("success", "failure", "usage_error", "interrupted")
PERIODS = ("day", "month")

# Python's ``$`` also matches before a final newline; ``(?!\n)`` makes these patterns mean the
# same in Python and in the ECMA dialect of JSON Schema (where ``$`` is the end of the string).
ID_RE = r"^[0-9a-f]{32}$(?!\n)"
SESSION_RE = r"^[0-9a-f]{16}$(?!\n)"
VERSION_RE = r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$(?!\n)"
PYTHON_RE = r"^3\.[0-9]{1,2}$(?!\n)"

#: 2020-01-01 and 2100-01-01: any hour outside is not a real event time.
TIME_MIN = 1_577_836_800
TIME_MAX = 4_102_444_800
MAX_DURATION_MS = 7 * 24 * 3600 * 1000
MAX_POSITIONALS = 10_000
MAX_BATCH_EVENTS = 1000

_COMMON = ("id", "kind", "time", "app_version", "os", "arch", "python", "ci", "interactive")
_REQUIRED = {
    "command": frozenset(
        (
            *_COMMON,
            "session",
            "command",
            "options",
            "dimensions",
            "outcome",
            "exit_code",
            "duration_ms",
            "slow",
        )
    ),
    "event": frozenset((*_COMMON, "session", "name", "properties", "dimensions")),
    "active": frozenset((*_COMMON, "period")),
}
_OPTIONAL = {
    "command": frozenset(("values", "positionals", "error")),
    "event": frozenset(),
    "active": frozenset(),
}


class Invalid(ValueError):
    """One reason an event is refused, e.g. ``field 'os': 'beos' is not one of ...``."""


def _int(value: object) -> int | None:
    """JSON Schema's integer: an int or an integral float, never a bool."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _enum(field: str, value: object, allowed: Any) -> None:
    if not isinstance(value, str) or value not in allowed:
        shown = ", ".join(sorted(allowed)[:12])
        raise Invalid(f"field {field!r}: {_show(value)} is not one of {shown}")


def _match(field: str, value: object, pattern: str, what: str) -> None:
    if not isinstance(value, str) or not _pattern(pattern).match(value):
        raise Invalid(f"field {field!r}: {_show(value)} is not {what}")


def _bool(field: str, value: object) -> None:
    if not isinstance(value, bool):
        raise Invalid(f"field {field!r}: {_show(value)} is not true or false")


def _range(field: str, value: object, low: int, high: int) -> int:
    number = _int(value)
    if number is None or not low <= number <= high:
        raise Invalid(f"field {field!r}: {_show(value)} is not a whole number in {low}..{high}")
    return number


def _show(value: object) -> str:
    """A short, safe rendering of a refused value: never echo a long string back."""
    if isinstance(value, str):
        return repr(value[:24] + ("..." if len(value) > 24 else ""))
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return repr(value)[:24]


def _keys(event: Mapping[str, Any], kind: str) -> None:
    required, optional = _REQUIRED[kind], _OPTIONAL[kind]
    for key in event:
        if key not in required and key not in optional:
            raise Invalid(f"unknown field {_show(key)} for a {kind!r} event")
    missing = required.difference(event)
    if missing:
        raise Invalid(f"missing field {sorted(missing)[0]!r} for a {kind!r} event")


def _closed_object(field: str, value: object, allowed: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"field {field!r}: {_show(value)} is not an object")
    for key, item in value.items():
        if key not in allowed:
            raise Invalid(f"field {field!r}: {_show(key)} is not declared in the policy")
        _enum(f"{field}.{key}", item, allowed[key])
    return value


def validate_event(policy: Policy, event: object) -> None:
    """Raise :class:`Invalid` with the first reason ``event`` breaks the policy, else return."""
    if not isinstance(event, dict):
        raise Invalid(f"an event must be an object, not {_show(event)}")
    kind = event.get("kind")
    _enum("kind", kind, KINDS)
    _keys(event, str(kind))
    _match("id", event["id"], ID_RE, "32 lower-case hex digits")
    when = _range("time", event["time"], TIME_MIN, TIME_MAX)
    if when % 3600:
        raise Invalid("field 'time': not truncated to the hour")
    _match("app_version", event["app_version"], VERSION_RE, "a version identifier")
    _enum("os", event["os"], OSES)
    _enum("arch", event["arch"], ARCHES)
    _match("python", event["python"], PYTHON_RE, "a Python version like '3.12'")
    _bool("ci", event["ci"])
    _bool("interactive", event["interactive"])
    if kind == "active":
        _enum("period", event["period"], PERIODS)
        return
    _match("session", event["session"], SESSION_RE, "16 lower-case hex digits")
    dims = {name: _with_other(d.values) for name, d in policy.dimensions.items()}
    _closed_object("dimensions", event["dimensions"], dims)
    if kind == "event":
        name = event["name"]
        _enum("name", name, policy.events)
        props = policy.events[name].properties
        allowed = {
            p.name: (
                _with_other(p.values)
                if p.type == "enum"
                else (True, False)
                if p.type == "bool"
                else (0, *p.buckets)
            )
            for p in props.values()
        }
        _properties(event["properties"], allowed, {p.name: p.type for p in props.values()})
        return
    _command(policy, event)


def _properties(value: object, allowed: Mapping[str, Any], types: Mapping[str, str]) -> None:
    if not isinstance(value, dict):
        raise Invalid(f"field 'properties': {_show(value)} is not an object")
    for key, item in value.items():
        if key not in allowed:
            raise Invalid(f"field 'properties': {_show(key)} is not declared in the policy")
        kind = types[key]
        if kind == "enum":
            _enum(f"properties.{key}", item, allowed[key])
        elif kind == "bool":
            _bool(f"properties.{key}", item)
        elif _int(item) not in allowed[key]:
            raise Invalid(f"field 'properties.{key}': {_show(item)} is not a bucket of the policy")


def _command(policy: Policy, event: Mapping[str, Any]) -> None:
    path = event["command"]
    if path != UNKNOWN_COMMAND:
        _enum("command", path, policy.commands)
    cmd: Command | None = policy.commands.get(path)
    declared = cmd.options if cmd else {}
    options = event["options"]
    if not isinstance(options, list):
        raise Invalid(f"field 'options': {_show(options)} is not a list")
    for name in options:
        if not isinstance(name, str) or name not in declared:
            raise Invalid(f"field 'options': {_show(name)} is not an option of {path!r}")
    if len(set(options)) != len(options):
        raise Invalid("field 'options': a name appears twice")
    if "values" in event:
        valued = {n: _with_other(o.values) for n, o in declared.items() if o.values is not None}
        _closed_object("values", event["values"], valued)
    if "positionals" in event:
        if not (cmd and cmd.positional_count):
            raise Invalid(f"field 'positionals': the policy does not capture it for {path!r}")
        _range("positionals", event["positionals"], 0, MAX_POSITIONALS)
    _enum("outcome", event["outcome"], OUTCOMES)
    _range("exit_code", event["exit_code"], 0, 255)
    if "error" in event:
        _enum("error", event["error"], _with_other(tuple(policy.errors)))
    _range("duration_ms", event["duration_ms"], 0, MAX_DURATION_MS)
    _bool("slow", event["slow"])


def _with_other(values: tuple[str, ...] | None) -> frozenset[str]:
    return frozenset((*(values or ()), OTHER))


class BatchResult:
    """The verdict on a batch: the valid events, and ``(index, reason)`` for every refused one."""

    __slots__ = ("rejected", "valid")

    def __init__(self) -> None:
        self.valid: list[dict[str, Any]] = []
        self.rejected: list[tuple[int, str]] = []


def validate_batch(policy: Policy, events: object) -> BatchResult:
    """Check each event independently, so the valid ones in a batch are kept."""
    result = BatchResult()
    if not isinstance(events, list):
        raise Invalid(f"field 'events': {_show(events)} is not a list")
    for index, event in enumerate(events):
        try:
            validate_event(policy, event)
        except Invalid as exc:
            result.rejected.append((index, str(exc)))
        else:
            result.valid.append(event)
    return result


# --- JSON Schema --------------------------------------------------------------------------------


def _enum_schema(values: Any) -> dict[str, Any]:
    return {"type": "string", "enum": sorted(values)}


def _object(props: Mapping[str, Any], required: Any = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": dict(props),
        "required": sorted(required),
        "additionalProperties": False,
    }


def json_schema(policy: Policy) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one event this policy allows."""
    common: dict[str, Any] = {
        "id": {"type": "string", "pattern": ID_RE},
        "time": {
            "type": "integer",
            "minimum": TIME_MIN,
            "maximum": TIME_MAX,
            "multipleOf": 3600,
        },
        "app_version": {"type": "string", "pattern": VERSION_RE},
        "os": _enum_schema(OSES),
        "arch": _enum_schema(ARCHES),
        "python": {"type": "string", "pattern": PYTHON_RE},
        "ci": {"type": "boolean"},
        "interactive": {"type": "boolean"},
    }
    session = {"type": "string", "pattern": SESSION_RE}
    dims = _object({n: _enum_schema(_with_other(d.values)) for n, d in policy.dimensions.items()})
    variants: list[dict[str, Any]] = [
        _object(
            {**common, "kind": {"const": "active"}, "period": _enum_schema(PERIODS)},
            _REQUIRED["active"],
        )
    ]
    for name, edef in policy.events.items():
        props: dict[str, Any] = {}
        for p in edef.properties.values():
            if p.type == "enum":
                props[p.name] = _enum_schema(_with_other(p.values))
            elif p.type == "bool":
                props[p.name] = {"type": "boolean"}
            else:
                props[p.name] = {"type": "integer", "enum": [0, *p.buckets]}
        variants.append(
            _object(
                {
                    **common,
                    "kind": {"const": "event"},
                    "session": session,
                    "name": {"const": name},
                    "properties": _object(props),
                    "dimensions": dims,
                },
                _REQUIRED["event"],
            )
        )
    errors = _enum_schema(_with_other(tuple(policy.errors)))
    commands = {**policy.commands, UNKNOWN_COMMAND: None}
    for path, cmd in commands.items():
        options = cmd.options if cmd else {}
        fields: dict[str, Any] = {
            **common,
            "kind": {"const": "command"},
            "session": session,
            "command": {"const": path},
            "options": {
                "type": "array",
                "items": _enum_schema(options) if options else False,
                "uniqueItems": True,
            },
            "values": _object(
                {
                    n: _enum_schema(_with_other(o.values))
                    for n, o in options.items()
                    if o.values is not None
                }
            ),
            "dimensions": dims,
            "outcome": _enum_schema(OUTCOMES),
            "exit_code": {"type": "integer", "minimum": 0, "maximum": 255},
            "error": errors,
            "duration_ms": {"type": "integer", "minimum": 0, "maximum": MAX_DURATION_MS},
            "slow": {"type": "boolean"},
        }
        if cmd and cmd.positional_count:
            fields["positionals"] = {"type": "integer", "minimum": 0, "maximum": MAX_POSITIONALS}
        variants.append(_object(fields, _REQUIRED["command"]))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"optin:{policy.app}/v{policy.version}/event",
        "title": f"An event {policy.app} (policy version {policy.version}) may send",
        "oneOf": variants,
    }
