"""A framework-neutral view of a CLI's command tree: what ``optin policy init`` drafts from.

The click, typer and argparse walkers each turn their framework's tree into a list of
:class:`CommandSpec`; the runtime adapters name commands and options by the very same rules, so
a drafted policy matches what the integration records.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # the runtime imports stay at what click and argparse load anyway
    from collections.abc import Iterable, Mapping
    from typing import Any, TypeVar

    T = TypeVar("T")

#: The command path recorded for a root that runs without a subcommand and has no usable name.
ROOT_FALLBACK = "main"
#: Option names that are never recorded nor drafted: the frameworks' own help, version and
#: (typer) shell-completion options, which act and exit.
SKIPPED_OPTIONS = frozenset({"help", "version", "install_completion", "show_completion"})
#: The subcommand group every instrumented tool gains; never recorded, never drafted.
TELEMETRY_COMMAND = "telemetry"
#: Set on the callbacks and objects the integrations add, so that walkers skip them.
INTERNAL_MARK = "_optin_internal"


class OptionSpec:
    """A declared option: its name in the policy and, for a closed list, its possible values."""

    __slots__ = ("choices", "name")

    def __init__(self, name: str, choices: tuple[str, ...] | None = None) -> None:
        self.name = name
        self.choices = choices

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OptionSpec) and (self.name, self.choices) == (
            other.name,
            other.choices,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.choices))

    def __repr__(self) -> str:
        return f"OptionSpec({self.name!r}, {self.choices!r})"


class CommandSpec:
    """One command path (``canister.install``), its options, whether it takes positionals."""

    __slots__ = ("options", "path", "positionals")

    def __init__(self, path: str, options: tuple[OptionSpec, ...], positionals: bool) -> None:
        self.path = path
        self.options = options
        self.positionals = positionals

    def __repr__(self) -> str:
        return f"CommandSpec({self.path!r}, {self.options!r}, {self.positionals!r})"


def merge_options(inherited: Iterable[OptionSpec], own: Iterable[OptionSpec]) -> list[OptionSpec]:
    """A command's options after its parents' (given before the subcommand); its own win."""
    merged: dict[str, OptionSpec] = {o.name: o for o in inherited}
    for option in own:
        merged[option.name] = option
    return list(merged.values())


def not_recorded(obj: T) -> T:
    """Mark a command as never recorded nor drafted (``version``, ``completion``...); returns it.

    Works on a click or typer command function (above or below the framework's decorator), a
    click command object, or an argparse sub-parser. The ``telemetry`` commands carry the mark.
    """
    setattr(obj, INTERNAL_MARK, True)
    return obj


def is_internal(obj: object) -> bool:
    """True for the ``telemetry`` commands an integration added (marked on object or callback)."""
    if getattr(obj, INTERNAL_MARK, False):
        return True
    return bool(getattr(getattr(obj, "callback", None), INTERNAL_MARK, False))


def value_text(value: object, enum_by_value: bool) -> str:
    """The command-line spelling of a choice: click spells enum members by name, typer by value."""
    import enum

    if isinstance(value, enum.Enum):
        return str(value.value) if enum_by_value else value.name
    return str(value)


#: The ``<tool> telemetry ACTION`` subcommands every adapter adds, each forwarded to ``cli()``.
TELEMETRY_ACTIONS: tuple[tuple[str, str], ...] = (
    ("on", "Turn usage telemetry on (record and upload)."),
    ("off", "Turn usage telemetry off and delete what is pending."),
    ("local", "Record for your own 'report' only; never upload."),
    ("status", "Say whether telemetry is on, why, and where data goes."),
    ("show", "Print the pending events exactly as they will be sent."),
    ("upload", "Send the pending events now, in the foreground."),
    ("report", "Summarise your own usage from the local spool."),
)
TELEMETRY_HELP = "Usage telemetry: see and change what this tool records (opt-in)."


def exit_status(code: object) -> int:
    """The process exit status ``sys.exit(code)`` produces: None is 0, text is 1."""
    if code is None:
        return 0
    if isinstance(code, bool) or not isinstance(code, int):
        return 1
    return code % 256


def fill(
    recorder: Any,
    telemetry: Any,
    path: str,
    given: Mapping[str, tuple[bool, str | None]],
    positionals: int | None,
) -> None:
    """Pass what was given to a recorder: ``given`` maps option name -> (closed list?, value).

    When the client exposes its policy (``telemetry.policy``), only the options it declares for
    ``path`` are passed, with a value only where it gives a closed list, and the positional count
    only where it asks; otherwise the framework's own closed lists decide and the client filters.
    """
    if not getattr(recorder, "active", True):
        return  # telemetry is off: reading ``telemetry.policy`` would parse the TOML for nothing
    policy = getattr(telemetry, "policy", None)
    commands = getattr(policy, "commands", None)
    command = commands.get(path) if commands is not None else None
    for name, (closed, text) in given.items():
        if commands is not None:
            option = command.options.get(name) if command is not None else None
            if option is None:
                continue
            closed = option.values is not None
        if closed and text is not None:
            recorder.option(name, text)
        else:
            recorder.option(name)
    if positionals is not None and (commands is None or (command and command.positional_count)):
        recorder.positionals(positionals)


def open_recorder(telemetry: Any, path: str) -> Any:
    """``telemetry.command(path)``, entered, so ``telemetry.dimension()`` lands on it."""
    recorder = telemetry.command(path)
    recorder.__enter__()
    return recorder


def close_recorder(recorder: Any, outcome: str, exit_code: int, error: object = None) -> None:
    """Finish with the outcome the adapter saw, then leave (the recorder ignores a 2nd finish)."""
    try:
        recorder.finish(outcome, exit_code, error)
    finally:
        recorder.__exit__(None, None, None)


def still_to_ask(telemetry: Any) -> bool:
    """True while the client would put its one-time consent question.

    The adapters never let a usage error be the moment it is asked: the person is reading an
    error message. Such a run is simply not recorded.
    """
    decision = getattr(telemetry, "decision", None)
    if decision is None:
        return False
    try:
        return bool(decision().state == "ask")
    except Exception:
        return False
