"""The collection policy: one TOML file per instrumented tool, read by both ends.

Nothing outside the policy can be recorded, sent or stored. This module loads the file into
frozen dataclasses and refuses a bad one with every problem listed as ``file: key: what``.
Standard library only: the client imports it inside every command a user types.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Mapping
    from typing import Any

__all__ = [
    "DEFAULT_SETTINGS",
    "Command",
    "Dimension",
    "EventDef",
    "Option",
    "Policy",
    "PolicyError",
    "Property",
    "Settings",
    "env_prefix",
    "from_data",
    "load",
    "load_cached",
    "loads",
    "peek_app",
    "to_data",
]

# Patterns are strings, compiled on first use: the client imports this module inside every
# command a user types, and ``re``, ``dataclasses`` and ``typing`` each cost milliseconds there.
#: Names of options, dimensions, events, properties.
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
#: A command path: names joined by dots (``canister.install``).
COMMAND_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}(\.[A-Za-z][A-Za-z0-9_-]{0,63}){0,7}$"
#: A value in a closed list. Short, no spaces: an enum member, never text.
VALUE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$"
#: An error category: an exception class name or an error code.
ERROR_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
APP_PATTERN = r"^[a-z][a-z0-9-]{0,62}[a-z0-9]$"
ENDPOINT_PATTERN = r"^https?://[^\s/?#]+(/[^\s?#]*)?$"

#: The value recorded when a tool sets a value outside a closed list.
OTHER = "other"
#: The command recorded when the framework reports a path the policy does not list.
UNKNOWN_COMMAND = "<unknown>"
PROPERTY_TYPES = ("enum", "bool", "bucket")
MAX_VALUES = 256


class PolicyError(ValueError):
    """A policy file that cannot be used; ``problems`` holds every ``file: key: what`` line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class _Record:
    """A frozen record with value equality: what ``dataclass(frozen=True)`` gives, without the
    import cost of ``dataclasses`` (about 10 ms) on the client's hot path."""

    __slots__: tuple[str, ...] = ()

    def _set(self, **fields: object) -> None:
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, k) for k in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _Record)
            and type(other) is type(self)
            and self._fields() == other._fields()
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, *map(repr, self._fields())))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({inner})"


class Settings(_Record):
    """Tunables of the pipeline; every one has a sensible default."""

    __slots__ = (
        "slow_threshold_seconds",
        "upload_interval_hours",
        "upload_batch_size",
        "session_rotation_hours",
        "retention_days",
        "consent_expiry_months",
        "spool_max_events",
        "spool_max_age_days",
    )
    slow_threshold_seconds: float
    upload_interval_hours: float
    upload_batch_size: int
    session_rotation_hours: int
    retention_days: int
    consent_expiry_months: int
    spool_max_events: int
    spool_max_age_days: int

    def __init__(
        self,
        slow_threshold_seconds: float = 10.0,
        upload_interval_hours: float = 1.0,
        upload_batch_size: int = 500,
        session_rotation_hours: int = 24,
        retention_days: int = 90,
        consent_expiry_months: int = 12,
        spool_max_events: int = 10_000,
        spool_max_age_days: int = 30,
    ) -> None:
        self._set(
            slow_threshold_seconds=slow_threshold_seconds,
            upload_interval_hours=upload_interval_hours,
            upload_batch_size=upload_batch_size,
            session_rotation_hours=session_rotation_hours,
            retention_days=retention_days,
            consent_expiry_months=consent_expiry_months,
            spool_max_events=spool_max_events,
            spool_max_age_days=spool_max_age_days,
        )


DEFAULT_SETTINGS = Settings()
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


class Option(_Record):
    """A declared option: present, or its value when ``values`` is a closed list."""

    __slots__ = ("name", "purpose", "values")
    name: str
    purpose: str
    values: tuple[str, ...] | None

    def __init__(self, name: str, purpose: str, values: tuple[str, ...] | None = None) -> None:
        self._set(name=name, purpose=purpose, values=values)


class Command(_Record):
    """A command path from the CLI's own tree; ``positional_count`` captures how many."""

    __slots__ = ("path", "purpose", "options", "positional_count")
    path: str
    purpose: str
    options: Mapping[str, Option]
    positional_count: bool

    def __init__(
        self,
        path: str,
        purpose: str,
        options: Mapping[str, Option] | None = None,
        positional_count: bool = False,
    ) -> None:
        self._set(
            path=path, purpose=purpose, options=options or {}, positional_count=positional_count
        )


class Dimension(_Record):
    """A custom dimension with a closed value list; anything else is recorded as ``other``."""

    __slots__ = ("name", "purpose", "values")
    name: str
    purpose: str
    values: tuple[str, ...]

    def __init__(self, name: str, purpose: str, values: tuple[str, ...]) -> None:
        self._set(name=name, purpose=purpose, values=values)

    def coerce(self, value: object) -> str:
        """Map a value the tool sets to a member of the closed list, or ``other``."""
        return value if isinstance(value, str) and value in self.values else OTHER


class Property(_Record):
    """A typed, closed property of a custom event: enum, bool or bucketed number."""

    __slots__ = ("name", "purpose", "type", "values", "buckets")
    name: str
    purpose: str
    type: str
    values: tuple[str, ...]
    buckets: tuple[int, ...]

    def __init__(
        self,
        name: str,
        purpose: str,
        type: str,
        values: tuple[str, ...] = (),
        buckets: tuple[int, ...] = (),
    ) -> None:
        self._set(name=name, purpose=purpose, type=type, values=values, buckets=buckets)

    def coerce(self, value: object) -> str | bool | int:
        """Map a raw value to what may be recorded: enum member or ``other``, bool, bucket."""
        if self.type == "bool":
            return bool(value)
        if self.type == "bucket":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(
                    f"property {self.name!r} needs a number, got {type(value).__name__}"
                )
            low = 0
            for bound in self.buckets:
                if value >= bound:
                    low = bound
            return low
        return value if isinstance(value, str) and value in self.values else OTHER


class EventDef(_Record):
    """A custom event (a lifecycle step, say) with its typed properties."""

    __slots__ = ("name", "purpose", "properties")
    name: str
    purpose: str
    properties: Mapping[str, Property]

    def __init__(
        self, name: str, purpose: str, properties: Mapping[str, Property] | None = None
    ) -> None:
        self._set(name=name, purpose=purpose, properties=properties or {})


class Policy(_Record):
    """A loaded, validated collection policy."""

    __slots__ = (
        "app",
        "name",
        "version",
        "endpoint",
        "purpose",
        "commands",
        "dimensions",
        "events",
        "errors",
        "settings",
        "source",
    )
    app: str
    name: str
    version: int
    endpoint: str
    purpose: str
    commands: Mapping[str, Command]
    dimensions: Mapping[str, Dimension]
    events: Mapping[str, EventDef]
    errors: Mapping[str, str]
    settings: Settings
    source: str

    def __init__(
        self,
        app: str,
        name: str,
        version: int,
        endpoint: str,
        purpose: str,
        commands: Mapping[str, Command],
        dimensions: Mapping[str, Dimension],
        events: Mapping[str, EventDef],
        errors: Mapping[str, str],
        settings: Settings = DEFAULT_SETTINGS,
        source: str = "<string>",
    ) -> None:
        self._set(
            app=app,
            name=name,
            version=version,
            endpoint=endpoint,
            purpose=purpose,
            commands=commands,
            dimensions=dimensions,
            events=events,
            errors=errors,
            settings=settings,
            source=source,
        )

    @property
    def env_prefix(self) -> str:
        """``<APP>`` of the environment variables: the app id upper-cased, others as ``_``."""
        return env_prefix(self.app)


def env_prefix(app: str) -> str:
    """``demo-dfx`` -> ``DEMO_DFX``."""
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in app.upper())


_compiled: dict[str, re.Pattern[str]] = {}


def _pattern(pattern: str) -> re.Pattern[str]:
    found = _compiled.get(pattern)
    if found is None:
        import re

        found = _compiled[pattern] = re.compile(pattern)
    return found


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


def loads(text: str, source: str = "<string>") -> Policy:
    """Parse and validate policy text; raise :class:`PolicyError` listing every problem."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError([f"{source}: not valid TOML: {exc}"]) from None
    return _build(data, _Reader(source))


def load(path: str | os.PathLike[str]) -> Policy:
    """Load a policy file; a missing or unreadable file is a :class:`PolicyError` too."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([f"{path}: cannot read the policy: {exc}"]) from None
    return loads(text, str(path))


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


# --- plain data: the policy as dicts and lists (JSON for the collector, marshal for the cache) ---


def to_data(policy: Policy) -> dict[str, Any]:
    """The policy as plain data: what ``GET /v1/apps/{app}/policy`` serves and the cache stores."""
    s = policy.settings
    return {
        "app": policy.app,
        "name": policy.name,
        "version": policy.version,
        "endpoint": policy.endpoint,
        "purpose": policy.purpose,
        "settings": {k: getattr(s, k) for k in Settings.__slots__},
        "commands": {
            path: {
                "purpose": c.purpose,
                "positional_count": c.positional_count,
                "options": {
                    n: {"purpose": o.purpose, "values": list(o.values) if o.values else None}
                    for n, o in c.options.items()
                },
            }
            for path, c in policy.commands.items()
        },
        "dimensions": {
            n: {"purpose": d.purpose, "values": list(d.values)}
            for n, d in policy.dimensions.items()
        },
        "events": {
            n: {
                "purpose": e.purpose,
                "properties": {
                    p.name: {
                        "purpose": p.purpose,
                        "type": p.type,
                        "values": list(p.values),
                        "buckets": list(p.buckets),
                    }
                    for p in e.properties.values()
                },
            }
            for n, e in policy.events.items()
        },
        "errors": dict(policy.errors),
    }


def from_data(data: Mapping[str, Any], source: str = "<data>") -> Policy:
    """Rebuild a policy from :func:`to_data` output (trusted: written by :func:`to_data`)."""
    return Policy(
        app=data["app"],
        name=data["name"],
        version=data["version"],
        endpoint=data["endpoint"],
        purpose=data["purpose"],
        commands={
            path: Command(
                path,
                c["purpose"],
                {
                    n: Option(n, o["purpose"], tuple(o["values"]) if o["values"] else None)
                    for n, o in c["options"].items()
                },
                c["positional_count"],
            )
            for path, c in data["commands"].items()
        },
        dimensions={
            n: Dimension(n, d["purpose"], tuple(d["values"])) for n, d in data["dimensions"].items()
        },
        events={
            n: EventDef(
                n,
                e["purpose"],
                {
                    pn: Property(
                        pn, p["purpose"], p["type"], tuple(p["values"]), tuple(p["buckets"])
                    )
                    for pn, p in e["properties"].items()
                },
            )
            for n, e in data["events"].items()
        },
        errors=dict(data["errors"]),
        settings=Settings(**data["settings"]),
        source=source,
    )


def load_cached(path: str, cache_file: str) -> Policy:
    """:func:`load`, through a marshal cache keyed by the file's path, size and mtime.

    ``tomllib`` and the checks cost tens of milliseconds at every command; a cache hit costs a
    ``stat`` and a ``marshal.load``. The client passes a file in its state directory, and only
    when telemetry is on (off writes nothing). A stale, corrupt or unwritable cache is ignored.
    """
    import marshal

    st = os.stat(path)
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
    try:
        with open(cache_file, "rb") as f:
            # loads of the whole file: ``marshal.load(f)`` reads object by object, through
            # Python-level calls, and costs the hot path several times as much.
            cached = marshal.loads(f.read())
        if isinstance(cached, tuple) and len(cached) == 2 and cached[0] == key:
            return from_data(cached[1], path)
    except (OSError, EOFError, ValueError, TypeError, KeyError):
        pass
    policy = load(path)
    tmp = f"{cache_file}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            marshal.dump((key, to_data(policy)), f)
        os.replace(tmp, cache_file)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return policy


_APP_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def _is_app_id(app: str) -> bool:
    """``APP_PATTERN`` without ``re``: :func:`peek_app` is on the *off* path of every command."""
    return (
        2 <= len(app) <= 64
        and app[0] in _APP_CHARS
        and not app[0].isdigit()
        and app[0] != "-"
        and app[-1] != "-"
        and all(c in _APP_CHARS for c in app)
    )


def peek_app(path: str) -> str | None:
    """The top-level ``app = "..."`` of a policy file, read without parsing TOML.

    Deciding that telemetry is *off* needs only the app id (for ``<APP>_*`` variables and the
    consent file), so the client reads it this way and parses the whole policy only when on.
    Returns None when the line is not in the simple form; callers then fall back to :func:`load`.
    """
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                stripped = line.strip()
                if stripped.startswith("["):
                    return None
                key, eq, value = stripped.partition("=")
                if eq and key.strip() == "app":
                    value = value.split("#", 1)[0].strip()
                    if len(value) > 2 and value[0] == value[-1] and value[0] in "\"'":
                        app = value[1:-1]
                        return app if _is_app_id(app) else None
                    return None
    except (OSError, UnicodeDecodeError):
        return None
    return None
