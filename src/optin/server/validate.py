"""A fast validator compiled from a policy, with the verdicts of `events.validate_event`.

The reference validator rebuilds its lookup tables for every event and raises to say no; at
100,000 events a second that is most of the budget. :func:`compile_policy` builds the tables once
and returns a closure that answers 0 (refused) or the number of keys in the event (accepted; the
decoder uses the count to spot repeated keys). The reason for a refused event is then asked of the
reference validator, so the messages a client sees are the reference's own, word for word; only
the (rare) refusals pay for it. ``tests/server/test_validate.py`` holds the verdicts of the two
equal on generated events.

Ids and session ids are checked with ``str.strip`` over the hex digits (``^[0-9a-f]{32}$`` without
a regex); version strings are checked once per distinct value. The closure also turns integral
floats (``3600.0``) into ints in the fields that are integers, so storage never sees a float where
the schema says integer (the reference accepts both).

On top of the reference rules the collector checks the time window (:func:`window_reason`): an
event more than two hours in the future, or older than the app's retention, is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from optin.events import (
    ARCHES,
    KINDS,
    MAX_DURATION_MS,
    MAX_POSITIONALS,
    OSES,
    OUTCOMES,
    PERIODS,
    PYTHON_RE,
    TIME_MAX,
    TIME_MIN,
    VERSION_RE,
    Invalid,
    validate_event,
)
from optin.policy import OTHER, UNKNOWN_COMMAND, Policy

__all__ = [
    "FUTURE_SLACK",
    "HEX",
    "KEYS",
    "Checker",
    "CommandTable",
    "Matches",
    "PropertyTable",
    "command_table",
    "compile_policy",
    "property_table",
    "reason_label",
    "reason_of",
    "version_checks",
    "window_reason",
]

#: A client's clock may run this far ahead (seconds) before its events are refused.
FUTURE_SLACK = 2 * 3600

#: ``check(event)``: 0 when the reference would refuse ``event``, else the number of keys in it
#: and its nested objects (the decoder compares that with the text to spot repeated keys).
Checker = Callable[[Any], int]
HEX = "0123456789abcdef"

_COMMON = frozenset(
    ("id", "kind", "time", "app_version", "os", "arch", "python", "ci", "interactive")
)
#: Per kind: (the keys an event must have, the keys it may have besides).
KEYS = {
    "command": (
        _COMMON
        | {"session", "command", "options", "dimensions", "outcome", "exit_code"}
        | {"duration_ms", "slow"},
        frozenset(("values", "positionals", "error")),
    ),
    "event": (_COMMON | {"session", "name", "properties", "dimensions"}, frozenset()),
    "active": (_COMMON | {"period"}, frozenset()),
}


class Matches(dict[str, bool]):
    """Whether values match one regex, remembered: versions repeat across events.

    Bounded in count (4,096) and in size: a value longer than any that can match is answered
    without being kept, or 4,096 requests with a different 1 MB "version" each would hold 4 GB.
    """

    def __init__(self, pattern: str, longest: int) -> None:
        super().__init__()
        self.match = re.compile(pattern).match
        self.longest = longest

    def __missing__(self, value: str) -> bool:
        if len(value) > self.longest:
            return False
        if len(self) >= 4096:
            self.clear()
        verdict = self[value] = self.match(value) is not None
        return verdict


def version_checks() -> tuple[Matches, Matches]:
    """Remembered verdicts for ``app_version`` and ``python`` (the longest each regex can match:
    1 + 31 and 4 characters)."""
    return Matches(VERSION_RE, 32), Matches(PYTHON_RE, 4)


def _with_other(values: tuple[str, ...] | None) -> frozenset[str]:
    return frozenset((*(values or ()), OTHER))


#: path -> (declared options, {option: allowed values}, whether a positional count is captured)
CommandTable = dict[str, tuple[frozenset[str], dict[str, frozenset[str]], bool]]


def command_table(policy: Policy) -> CommandTable:
    """What each command (and the unknown command) may carry, for both validators."""
    commands: CommandTable = {UNKNOWN_COMMAND: (frozenset(), {}, False)}
    for path, cmd in policy.commands.items():
        valued = {n: _with_other(o.values) for n, o in cmd.options.items() if o.values is not None}
        commands[path] = (frozenset(cmd.options), valued, cmd.positional_count)
    return commands


#: event name -> {property: (its Python type, allowed values)}; bool and int differ by type().
PropertyTable = dict[str, dict[str, tuple[type, frozenset[Any]]]]


def property_table(policy: Policy) -> PropertyTable:
    """What each custom event's properties may hold, for both validators."""
    table: PropertyTable = {}
    for name, edef in policy.events.items():
        props: dict[str, tuple[type, frozenset[Any]]] = {}
        for p in edef.properties.values():
            if p.type == "enum":
                props[p.name] = (str, _with_other(p.values))
            elif p.type == "bool":
                props[p.name] = (bool, frozenset((True, False)))
            else:
                props[p.name] = (int, frozenset((0, *p.buckets)))
        table[name] = props
    return table


def compile_policy(policy: Policy) -> Checker:
    """Return ``check(event) -> int``: non-zero when the reference validator accepts ``event``."""
    oses, arches = frozenset(OSES), frozenset(ARCHES)
    outcomes, periods, kinds = frozenset(OUTCOMES), frozenset(PERIODS), frozenset(KINDS)
    required = {kind: req for kind, (req, _) in KEYS.items()}
    allowed = {kind: req | opt for kind, (req, opt) in KEYS.items()}
    dims = {name: _with_other(d.values) for name, d in policy.dimensions.items()}
    errors = _with_other(tuple(policy.errors))
    events = property_table(policy)
    commands = command_table(policy)

    def integer(event: dict[str, Any], key: str, low: int, high: int) -> bool:
        """The slow path of an integer field: anything but a plain int."""
        value = event[key]
        if type(value) is float and value.is_integer() and low <= value <= high:
            event[key] = int(value)
            return True
        return False

    versions, pythons = version_checks()

    def closed(value: Any, table: dict[str, frozenset[str]]) -> int:
        """Keys + 1 of a valid closed object, else 0."""
        if type(value) is not dict:
            return 0
        for key, item in value.items():
            values = table.get(key)
            if values is None or type(item) is not str or item not in values:
                return 0
        return len(value) + 1

    def check(event: Any) -> int:
        if type(event) is not dict:
            return 0
        kind = event.get("kind")
        if type(kind) is not str or kind not in kinds:
            return 0
        keys = event.keys()
        if not (keys >= required[kind] and keys <= allowed[kind]):
            return 0
        value = event["id"]
        if type(value) is not str or len(value) != 32 or value.strip(HEX):
            return 0
        value = event["time"]
        if type(value) is int:
            if not TIME_MIN <= value <= TIME_MAX or value % 3600:
                return 0
        elif not integer(event, "time", TIME_MIN, TIME_MAX) or event["time"] % 3600:
            return 0
        value = event["os"]
        if type(value) is not str or value not in oses:
            return 0
        value = event["arch"]
        if type(value) is not str or value not in arches:
            return 0
        value, python = event["app_version"], event["python"]
        if type(value) is not str or type(python) is not str:
            return 0
        if not (versions[value] and pythons[python]):
            return 0
        if type(event["ci"]) is not bool or type(event["interactive"]) is not bool:
            return 0
        if kind == "active":
            value = event["period"]
            return len(event) if type(value) is str and value in periods else 0
        value = event["session"]
        if type(value) is not str or len(value) != 16 or value.strip(HEX):
            return 0
        nested = closed(event["dimensions"], dims)
        if not nested:
            return 0
        more = _custom(event) if kind == "event" else _command(event)
        return len(event) + nested + more - 2 if more else 0

    def _custom(event: dict[str, Any]) -> int:
        name = event["name"]
        if type(name) is not str:
            return 0
        props = events.get(name)
        if props is None:
            return 0
        given = event["properties"]
        if type(given) is not dict:
            return 0
        for key, item in given.items():
            spec = props.get(key)
            if spec is None:
                return 0
            ptype, values = spec
            if type(item) is ptype:
                if item not in values:
                    return 0
            elif ptype is int and type(item) is float and item.is_integer() and int(item) in values:
                given[key] = int(item)
            else:
                return 0
        return len(given) + 1

    def _command(event: dict[str, Any]) -> int:
        path = event["command"]
        if type(path) is not str:
            return 0
        spec = commands.get(path)
        if spec is None:
            return 0
        declared, valued, positional = spec
        options = event["options"]
        if type(options) is not list:
            return 0
        for name in options:
            if type(name) is not str or name not in declared:
                return 0
        if len(options) > 1 and len(set(options)) != len(options):
            return 0
        count = 1
        if "values" in event:
            nested = closed(event["values"], valued)
            if not nested:
                return 0
            count += nested - 1
        if "positionals" in event:
            value = event["positionals"]
            if not positional:
                return 0
            if type(value) is int:
                if not 0 <= value <= MAX_POSITIONALS:
                    return 0
            elif not integer(event, "positionals", 0, MAX_POSITIONALS):
                return 0
        value = event["outcome"]
        if type(value) is not str or value not in outcomes:
            return 0
        value = event["exit_code"]
        if type(value) is int:
            if not 0 <= value <= 255:
                return 0
        elif not integer(event, "exit_code", 0, 255):
            return 0
        if "error" in event:
            value = event["error"]
            if type(value) is not str or value not in errors:
                return 0
        value = event["duration_ms"]
        if type(value) is int:
            if not 0 <= value <= MAX_DURATION_MS:
                return 0
        elif not integer(event, "duration_ms", 0, MAX_DURATION_MS):
            return 0
        return count if type(event["slow"]) is bool else 0

    return check


def reason_of(policy: Policy, event: Any) -> str:
    """Why the reference validator refuses ``event`` (called only for refused events)."""
    try:
        validate_event(policy, event)
    except Invalid as exc:
        return str(exc)
    except Exception as exc:  # pragma: no cover - a reference bug must not become a 500
        return f"refused ({type(exc).__name__})"
    return "refused"  # pragma: no cover - the checker and the reference disagree


def window_reason(when: int, now: float, retention_days: int) -> str | None:
    """The collector's extra check on an event's hour: not too far ahead, not past retention."""
    if when > now + FUTURE_SLACK:
        return "field 'time': more than 2 hours in the future"
    if when < now - retention_days * 86400:
        return f"field 'time': older than the retention of {retention_days} days"
    return None


_FIELD = re.compile(r"^field '([A-Za-z0-9_.-]{1,80})'")


def reason_label(reason: str) -> str:
    """A low-cardinality label for a refusal reason (for ``/metrics``): the field, or the rule.

    Field names in reasons are either fixed or declared in the policy, so the set is bounded.
    """
    if reason.startswith("field 'time': more than") or reason.startswith("field 'time': older"):
        return "time_window"
    match = _FIELD.match(reason)
    if match:
        return match.group(1)
    for prefix, label in (
        ("unknown field", "unknown_field"),
        ("missing field", "missing_field"),
        ("an event must be an object", "not_an_object"),
    ):
        if reason.startswith(prefix):
            return label
    return "other"
