"""The collection policy: one TOML file per instrumented tool, read by both ends.

Nothing outside the policy can be recorded, sent or stored. This module loads the file into
frozen dataclasses and refuses a bad one with every problem listed as ``file: key: what`` (the
checks are in :mod:`optin.policy_check`, loaded only to parse). Standard library only: the client
imports it inside every command a user types.
"""

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Callable, Mapping
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
    options: "Mapping[str, Option]"
    positional_count: bool

    def __init__(
        self,
        path: str,
        purpose: str,
        options: "Mapping[str, Option] | None" = None,
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
    properties: "Mapping[str, Property]"

    def __init__(
        self, name: str, purpose: str, properties: "Mapping[str, Property] | None" = None
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
    commands: "Mapping[str, Command]"
    dimensions: "Mapping[str, Dimension]"
    events: "Mapping[str, EventDef]"
    errors: "Mapping[str, str]"
    settings: Settings
    source: str

    def __init__(
        self,
        app: str,
        name: str,
        version: int,
        endpoint: str,
        purpose: str,
        commands: "Mapping[str, Command]",
        dimensions: "Mapping[str, Dimension]",
        events: "Mapping[str, EventDef]",
        errors: "Mapping[str, str]",
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


_compiled: "dict[str, re.Pattern[str]]" = {}


def _pattern(pattern: str) -> "re.Pattern[str]":
    found = _compiled.get(pattern)
    if found is None:
        import re

        found = _compiled[pattern] = re.compile(pattern)
    return found


def loads(text: str, source: str = "<string>") -> Policy:
    """Parse and validate policy text; raise :class:`PolicyError` listing every problem."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError([f"{source}: not valid TOML: {exc}"]) from None
    from optin.policy_check import build  # not on the client's hot path (see there)

    return build(data, source)


def load(path: str | os.PathLike[str]) -> Policy:
    """Load a policy file; a missing or unreadable file is a :class:`PolicyError` too."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([f"{path}: cannot read the policy: {exc}"]) from None
    return loads(text, str(path))


# --- plain data: the policy as dicts and lists (JSON for the collector, marshal for the cache) ---


def to_data(policy: Policy) -> "dict[str, Any]":
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


def from_data(data: "Mapping[str, Any]", source: str = "<data>") -> Policy:
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


def load_cached(
    path: str, cache_file: str, before_write: "Callable[[], object] | None" = None
) -> Policy:
    """:func:`load`, through a marshal cache keyed by the file's path, size and mtime.

    ``tomllib`` and the checks cost tens of milliseconds at every command; a cache hit costs a
    ``stat`` and a ``marshal.load``. The client passes a file in its state directory, and only
    when telemetry is on (off writes nothing). A stale, corrupt or unwritable cache is ignored.
    ``before_write`` runs on a miss, once the policy parsed, before the cache is written (the
    client makes its state directory there: a broken policy leaves nothing behind).
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
        if before_write is not None:
            before_write()
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
