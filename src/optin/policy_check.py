"""Checking a policy: the parsed TOML read into :class:`~optin.policy.Policy`, every problem listed.

:func:`optin.policy.loads` (and :func:`~optin.policy.load`) call :func:`build`; nothing else
should. It lives apart from :mod:`optin.policy` because the client imports that module inside
every command a user types, and needs the checks only when the policy cache is missing or
stale: the reader's class and the checks are then not loaded at all (a tenth of a millisecond).
"""

from __future__ import annotations

from optin.policy import (
    APP_PATTERN,
    COMMAND_PATTERN,
    ENDPOINT_PATTERN,
    ERROR_PATTERN,
    MAX_VALUES,
    NAME_PATTERN,
    OTHER,
    PROPERTY_TYPES,
    VALUE_PATTERN,
    Command,
    Dimension,
    EventDef,
    Option,
    Policy,
    PolicyError,
    Property,
    Settings,
    _pattern,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["build"]


def build(data: Mapping[str, Any], source: str) -> Policy:
    """The policy in ``data`` (parsed TOML); raise :class:`PolicyError` listing every problem."""
    return _build(data, _Reader(source))


_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "slow_threshold_seconds": (int, float),
    "upload_interval_hours": (int, float),
    "upload_batch_size": (int,),
    "session_rotation_hours": (int,),
    "retention_days": (int,),
    "consent_expiry_months": (int,),
    "spool_max_events": (int,),
    "spool_max_age_days": (int,),
}


class _Reader:
    """Walks the parsed TOML, collecting every problem instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def problem(self, key: str, what: str) -> None:
        self.problems.append(f"{self.source}: {key}: {what}")

    def table(self, data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.problem(_join(where, key), f"must be a table, not {_kind(value)}")
            return {}
        return value

    def keys(self, data: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in data:
            if key not in allowed:
                self.problem(
                    _join(where, key), f"unknown key (allowed: {', '.join(sorted(allowed))})"
                )

    def text(self, data: Mapping[str, Any], key: str, where: str, required: bool = True) -> str:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(
                    _join(where, key), "is required: say in a sentence why it is collected"
                )
            return ""
        if not isinstance(value, str) or not value.strip():
            self.problem(_join(where, key), "must be a non-empty string")
            return ""
        return value.strip()

    def name(self, name: str, where: str, pattern: str = NAME_PATTERN) -> bool:
        if not _pattern(pattern).fullmatch(name):
            self.problem(where, f"{name!r} is not a valid name (pattern {pattern})")
            return False
        return True

    def values(self, data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        """A closed list: non-empty, short enum-like strings, no duplicates."""
        at = _join(where, key)
        raw = data.get(key)
        if not isinstance(raw, list):
            self.problem(at, f"must be a list of values, not {_kind(raw)}")
            return ()
        if not raw:
            self.problem(at, "is empty: a closed list needs at least one value")
            return ()
        if len(raw) > MAX_VALUES:
            self.problem(at, f"has {len(raw)} values; at most {MAX_VALUES} are allowed")
        seen: list[str] = []
        for item in raw:
            if not isinstance(item, str) or not _pattern(VALUE_PATTERN).fullmatch(item):
                self.problem(at, f"{item!r} is not a closed-list value (pattern {VALUE_PATTERN})")
            elif item in seen:
                self.problem(at, f"duplicate value {item!r}")
            else:
                seen.append(item)
        return tuple(seen)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


_TOP = {
    "app",
    "name",
    "version",
    "endpoint",
    "purpose",
    "settings",
    "commands",
    "dimensions",
    "events",
    "errors",
}


def _build(data: Mapping[str, Any], r: _Reader) -> Policy:
    r.keys(data, _TOP, "")
    app = data.get("app")
    if not isinstance(app, str) or not _pattern(APP_PATTERN).fullmatch(app):
        r.problem("app", f"{app!r} is not a valid app id (lower case, digits and '-', 2-64 chars)")
        app = ""
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        r.problem("version", f"{version!r} is not a policy version (a whole number from 1)")
        version = 0
    endpoint = data.get("endpoint", "")
    if not isinstance(endpoint, str) or not _pattern(ENDPOINT_PATTERN).fullmatch(endpoint):
        r.problem("endpoint", f"{endpoint!r} is not an http(s) URL of the collector")
        endpoint = ""
    purpose = r.text(data, "purpose", "")
    name = data.get("name", app)
    if not isinstance(name, str) or not name.strip():
        r.problem("name", "must be a non-empty string")
        name = str(app)

    settings = _settings(r.table(data, "settings", ""), r)
    commands = _commands(r.table(data, "commands", ""), r)
    if not commands:
        r.problem("commands", "no command is declared: list at least one")
    dimensions = _dimensions(r.table(data, "dimensions", ""), r)
    events = _events(r.table(data, "events", ""), r)
    errors = _errors(r.table(data, "errors", ""), r)
    _no_clashes(commands, dimensions, events, r)
    if r.problems:
        raise PolicyError(r.problems)
    return Policy(
        app=str(app),
        name=str(name),
        version=int(version),
        endpoint=str(endpoint).rstrip("/"),
        purpose=purpose,
        commands=commands,
        dimensions=dimensions,
        events=events,
        errors=errors,
        settings=settings,
        source=r.source,
    )


def _settings(data: Mapping[str, Any], r: _Reader) -> Settings:
    r.keys(data, set(_SETTING_TYPES), "settings")
    values: dict[str, Any] = {}
    for key, types in _SETTING_TYPES.items():
        if key not in data:
            continue
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            r.problem(f"settings.{key}", f"{value!r} must be a positive number")
            continue
        if float not in types and not isinstance(value, int):
            r.problem(f"settings.{key}", f"{value!r} must be a whole number")
            continue
        values[key] = value
    return Settings(**values)


def _commands(data: Mapping[str, Any], r: _Reader) -> dict[str, Command]:
    commands: dict[str, Command] = {}
    for path, body in data.items():
        where = f"commands.{path}"
        if not r.name(path, where, COMMAND_PATTERN):
            continue
        if not isinstance(body, dict):
            r.problem(where, f"must be a table, not {_kind(body)}")
            continue
        r.keys(body, {"purpose", "options", "positional_count"}, where)
        count = body.get("positional_count", False)
        if not isinstance(count, bool):
            r.problem(f"{where}.positional_count", "must be true or false")
            count = False
        options: dict[str, Option] = {}
        for oname, obody in r.table(body, "options", where).items():
            owhere = f"{where}.options.{oname}"
            if not r.name(oname, owhere):
                continue
            if not isinstance(obody, dict):
                r.problem(owhere, f"must be a table, not {_kind(obody)}")
                continue
            r.keys(obody, {"purpose", "values"}, owhere)
            values = r.values(obody, "values", owhere) if "values" in obody else None
            if values is not None and OTHER in values:
                r.problem(f"{owhere}.values", f"{OTHER!r} is implied: remove it from the list")
            options[oname] = Option(oname, r.text(obody, "purpose", owhere), values)
        commands[path] = Command(path, r.text(body, "purpose", where), options, count)
    return commands


def _dimensions(data: Mapping[str, Any], r: _Reader) -> dict[str, Dimension]:
    dims: dict[str, Dimension] = {}
    for dname, body in data.items():
        where = f"dimensions.{dname}"
        if not r.name(dname, where):
            continue
        if not isinstance(body, dict):
            r.problem(where, f"must be a table, not {_kind(body)}")
            continue
        r.keys(body, {"purpose", "values"}, where)
        values = r.values(body, "values", where)
        if OTHER in values:
            r.problem(f"{where}.values", f"{OTHER!r} is implied: remove it from the list")
        dims[dname] = Dimension(dname, r.text(body, "purpose", where), values)
    return dims


def _events(data: Mapping[str, Any], r: _Reader) -> dict[str, EventDef]:
    events: dict[str, EventDef] = {}
    for ename, body in data.items():
        where = f"events.{ename}"
        if not r.name(ename, where):
            continue
        if not isinstance(body, dict):
            r.problem(where, f"must be a table, not {_kind(body)}")
            continue
        r.keys(body, {"purpose", "properties"}, where)
        props: dict[str, Property] = {}
        for pname, pbody in r.table(body, "properties", where).items():
            pwhere = f"{where}.properties.{pname}"
            if not r.name(pname, pwhere):
                continue
            if not isinstance(pbody, dict):
                r.problem(pwhere, f"must be a table, not {_kind(pbody)}")
                continue
            prop = _property(pname, pbody, pwhere, r)
            if prop is not None:
                props[pname] = prop
        events[ename] = EventDef(ename, r.text(body, "purpose", where), props)
    return events


def _property(name: str, body: Mapping[str, Any], where: str, r: _Reader) -> Property | None:
    kind = body.get("type")
    if kind not in PROPERTY_TYPES:
        hint = " (free text is never collected)" if kind in ("str", "string", "text") else ""
        r.problem(f"{where}.type", f"{kind!r} is not one of {', '.join(PROPERTY_TYPES)}{hint}")
        return None
    allowed = {"purpose", "type"} | {"enum": {"values"}, "bucket": {"buckets"}}.get(
        str(kind), set()
    )
    r.keys(body, allowed, where)
    purpose = r.text(body, "purpose", where)
    if kind == "enum":
        values = r.values(body, "values", where)
        if OTHER in values:
            r.problem(f"{where}.values", f"{OTHER!r} is implied: remove it from the list")
        return Property(name, purpose, "enum", values=values)
    if kind == "bucket":
        raw = body.get("buckets")
        ok = (
            isinstance(raw, list)
            and raw
            and all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in raw)
            and raw == sorted(set(raw))
        )
        if not ok:
            r.problem(
                f"{where}.buckets",
                "must be a non-empty, strictly increasing list of positive whole numbers",
            )
            return None
        return Property(name, purpose, "bucket", buckets=tuple(raw))  # type: ignore[arg-type]
    return Property(name, purpose, "bool")


def _errors(data: Mapping[str, Any], r: _Reader) -> dict[str, str]:
    errors: dict[str, str] = {}
    for ename, body in data.items():
        where = f"errors.{ename}"
        if not r.name(ename, where, ERROR_PATTERN):
            continue
        if ename == OTHER:
            r.problem(where, f"{OTHER!r} is implied: remove it")
            continue
        if isinstance(body, str):
            body = {"purpose": body}
        if not isinstance(body, dict):
            r.problem(where, f"must be a purpose string or a table, not {_kind(body)}")
            continue
        r.keys(body, {"purpose"}, where)
        errors[ename] = r.text(body, "purpose", where)
    return errors


def _no_clashes(
    commands: Mapping[str, Command],
    dimensions: Mapping[str, Dimension],
    events: Mapping[str, EventDef],
    r: _Reader,
) -> None:
    """Names ambiguous once lower-cased (TOML keys are case-sensitive; people are not)."""
    for label, names in (
        ("commands", list(commands)),
        ("dimensions", list(dimensions)),
        ("events", list(events)),
    ):
        seen: dict[str, str] = {}
        for n in names:
            low = n.lower().replace("_", "-")
            if low in seen:
                r.problem(f"{label}.{n}", f"duplicate name: clashes with {seen[low]!r}")
            seen[low] = n
    for path, cmd in commands.items():
        seen = {}
        for n in cmd.options:
            low = n.lower().replace("_", "-")
            if low in seen:
                r.problem(
                    f"commands.{path}.options.{n}", f"duplicate name: clashes with {seen[low]!r}"
                )
            seen[low] = n
