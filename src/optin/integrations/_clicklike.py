"""The engine behind the click and typer adapters, written against click's object model only.

typer 0.29 carries its own copy of click (``typer._click``): its commands are not
``click.Command`` instances and its exceptions are other classes. So nothing here imports
either framework; the attributes read (``params``, ``param_type_name``, ``make_context``,
``get_parameter_source``...) are the ones both share, and each adapter passes a :class:`Flavor`
with its own exception classes and ``ParameterSource.COMMANDLINE``.

How one invocation is observed, without changing what the tool does:

- ``main`` is wrapped: it sees how the process ends (``SystemExit`` from standalone mode, an
  exception, or a return) and finishes the recorder. Nothing is caught for good: every
  exception is re-raised unchanged, so exit codes and tracebacks are the tool's own.
- ``make_context`` of every command on the path is wrapped: after parsing, the parameter source
  says which options came from the command line (defaults, environment variables, default maps
  and prompts are never recorded); an ``Exit`` raised while parsing is ``--help``, ``--version``
  or another eager option that exits, and the invocation is not recorded.
- ``invoke`` of the leaf command creates the recorder just before the tool's callback runs, so
  ``telemetry.dimension(...)`` inside the callback lands on this command; every ``invoke``
  notes the first (innermost) exception, the one the outcome and error category come from.
- ``resolve_command`` of each group attaches the same wrappers to the subcommand it returns, so
  lazily loaded subcommands are covered too, and marks the run as not recorded when the
  subcommand is the ``telemetry`` group the adapter added.
"""

from __future__ import annotations

from contextvars import ContextVar

from optin.integrations._spec import (
    ROOT_FALLBACK,
    SKIPPED_OPTIONS,
    CommandSpec,
    OptionSpec,
    close_recorder,
    exit_status,
    fill,
    is_internal,
    merge_options,
    open_recorder,
    still_to_ask,
    value_text,
)
from optin.policy import NAME_PATTERN

TYPE_CHECKING = False
if TYPE_CHECKING:  # runtime imports stay at what click and typer load anyway
    from collections.abc import Callable, Iterator
    from typing import Any

_RUN: ContextVar[_Run | None] = ContextVar("optin_clicklike_run", default=None)
_ATTACHED = "_optin_attached"


class Flavor:
    """What differs between click and typer's copy of it: exception classes and one enum member."""

    __slots__ = ("abort", "commandline", "exit", "no_args_is_help", "usage_error")

    def __init__(
        self,
        *,
        usage_error: type[BaseException],
        abort: type[BaseException],
        exit: type[BaseException],
        no_args_is_help: type[BaseException] | None,
        commandline: object,
    ) -> None:
        self.usage_error = usage_error
        self.abort = abort
        self.exit = exit
        self.no_args_is_help = no_args_is_help
        self.commandline = commandline


# --- reading the tree (names only, never values) -------------------------------------------------


def is_group(cmd: Any) -> bool:
    """A click ``Group`` or a typer ``TyperGroup``: it lists and resolves subcommands."""
    return hasattr(cmd, "list_commands") and hasattr(cmd, "get_command")


def declared_options(cmd: Any) -> Iterator[Any]:
    """The options a person can give, minus help, version and eager options that only exit."""
    for param in getattr(cmd, "params", ()):
        if getattr(param, "param_type_name", None) != "option":
            continue
        name = getattr(param, "name", None)
        if not name or name in SKIPPED_OPTIONS:
            continue
        if getattr(param, "is_eager", False) and not getattr(param, "expose_value", True):
            continue  # --version, --install-completion: they act and exit
        yield param


def choices_of(param: Any) -> tuple[str, ...] | None:
    """A closed list the framework declares: click's ``Choice``, typer's enum or ``Literal``."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:  # typer 0.29: enum members are spelled by value
        raw = getattr(descriptor, "choices", None)
        by_value = True
    else:
        raw = getattr(getattr(param, "type", None), "choices", None)
        by_value = False
    if raw is None or isinstance(raw, str):
        return None
    return tuple(dict.fromkeys(value_text(choice, by_value) for choice in raw))


def takes_positionals(cmd: Any) -> bool:
    """Declared arguments, or extra arguments the command accepts."""
    if any(getattr(p, "param_type_name", None) == "argument" for p in getattr(cmd, "params", ())):
        return True
    return bool((getattr(cmd, "context_settings", None) or {}).get("allow_extra_args"))


def root_name(cmd: Any) -> str:
    """The path recorded for a root that runs on its own: its declared name, if usable."""
    name = getattr(cmd, "name", None)
    import re

    return name if isinstance(name, str) and re.match(NAME_PATTERN, name) else ROOT_FALLBACK


def subcommands(group: Any) -> list[tuple[str, Any]]:
    """``(name, command)`` for each subcommand, named as the runtime names it (declared name)."""
    try:
        ctx = group.context_class(group, info_name=group.name)
        names = list(group.list_commands(ctx))
        found = [(n, group.get_command(ctx, n)) for n in names]
    except Exception:
        found = list(getattr(group, "commands", {}).items())
    result: list[tuple[str, Any]] = []
    seen: set[int] = set()
    for key, cmd in found:
        if cmd is None or id(cmd) in seen:
            continue  # one command registered under two names is one command
        seen.add(id(cmd))
        result.append((getattr(cmd, "name", None) or key, cmd))
    return result


def _option_specs(cmd: Any) -> list[OptionSpec]:
    """One spec per option name; a feature switch (``--upper``/``--lower`` setting one name
    to a string ``flag_value`` each) is proposed as a closed list of those values."""
    switches: dict[str, list[str] | None] = {}
    specs: dict[str, OptionSpec] = {}
    for param in declared_options(cmd):
        flag_value = getattr(param, "flag_value", None)
        known = switches.get(param.name, [])
        if (
            known is not None
            and isinstance(flag_value, str)
            and getattr(param, "is_flag", False)
            and not getattr(param, "is_bool_flag", True)
        ):
            switches[param.name] = [*known, flag_value]
        else:
            switches[param.name] = None
        specs.setdefault(param.name, OptionSpec(param.name, choices_of(param)))
    for name, values in switches.items():
        if values and specs[name].choices is None:
            specs[name] = OptionSpec(name, tuple(dict.fromkeys(values)))
    return list(specs.values())


def walk(root: Any) -> list[CommandSpec]:
    """Every command path under ``root`` with its options (its groups' options included)."""
    specs: list[CommandSpec] = []

    def visit(cmd: Any, path: tuple[str, ...], inherited: list[OptionSpec]) -> None:
        own = _option_specs(cmd)
        options = merge_options(inherited, own)
        subs = [(n, c) for n, c in subcommands(cmd) if not is_internal(c)] if is_group(cmd) else []
        if not subs or getattr(cmd, "invoke_without_command", False):
            name = ".".join(path) if path else root_name(cmd)
            specs.append(CommandSpec(name, tuple(options), takes_positionals(cmd)))
        for name, sub in subs:
            visit(sub, (*path, name), options)

    visit(root, (), [])
    return specs


# --- observing one invocation ---------------------------------------------------------------------


def _ctx_path(ctx: Any) -> list[str]:
    names: list[str] = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.command.name or ctx.info_name)
        ctx = ctx.parent
    return names[::-1]


def _count_positionals(cmd: Any, ctx: Any, flavor: Flavor) -> int:
    count = 0
    for param in getattr(cmd, "params", ()):
        if getattr(param, "param_type_name", None) != "argument" or not param.name:
            continue
        if ctx.get_parameter_source(param.name) is not flavor.commandline:
            continue
        value = ctx.params.get(param.name)
        count += len(value) if isinstance(value, tuple | list) else 1
    if not is_group(cmd):
        count += len(getattr(ctx, "args", ()) or ())
    return count


class _Run:
    """What one call of ``main`` has seen so far; lives in a context variable for that call."""

    def __init__(self, inst: Instrumentation, root: Any) -> None:
        self.inst = inst
        self.root = root
        self.path: list[str] = []
        self.options: dict[str, Any] = {}  # name -> (the parameter, its converted value)
        self.positionals: int | None = None
        self.exc: BaseException | None = None
        self.skip = False
        self.recorder: Any = None
        self.finished = False

    def reach(self, path: list[str]) -> None:
        if len(path) > len(self.path) or not path:
            self.path = path
            self.positionals = None

    def saw(self, exc: BaseException) -> None:
        if self.exc is None:
            self.exc = exc

    def failed_parse(self, exc: BaseException) -> None:
        flavor = self.inst.flavor
        if isinstance(exc, flavor.exit) or (
            flavor.no_args_is_help is not None and isinstance(exc, flavor.no_args_is_help)
        ):
            self.skip = True  # --help, --version, an eager option that exits, bare group help
        self.saw(exc)

    def parsed(self, cmd: Any, ctx: Any) -> None:
        commandline = self.inst.flavor.commandline
        for param in declared_options(cmd):
            if ctx.get_parameter_source(param.name) is commandline:
                self.options[param.name] = (param, ctx.params.get(param.name))
        self.positionals = _count_positionals(cmd, ctx, self.inst.flavor)

    def command_path(self) -> str:
        return ".".join(self.path) if self.path else root_name(self.root)

    def start(self) -> None:
        """Create the recorder (this is where the client may ask for consent)."""
        if self.recorder is not None or self.skip:
            return
        path = self.command_path()
        try:
            self.recorder = open_recorder(self.inst.telemetry, path)
            given = {
                name: (choices_of(param) is not None, _single_value(param, value))
                for name, (param, value) in self.options.items()
            }
            fill(self.recorder, self.inst.telemetry, path, given, self.positionals)
        except Exception:
            return  # telemetry never breaks the tool

    def end(self, *, exit_code: int | None = None, escaped: BaseException | None = None) -> None:
        """Finish the recorder from how ``main`` ended (``exit_code`` is None on a return)."""
        if self.skip or self.finished:
            return
        self.finished = True
        flavor = self.inst.flavor
        exc = self.exc if self.exc is not None else escaped
        if exit_code is None:
            if isinstance(exc, flavor.exit):
                exit_code = exit_status(getattr(exc, "exit_code", 0))
            elif escaped is None:
                exit_code = 0
            elif isinstance(escaped, KeyboardInterrupt):
                exit_code = 130
            else:
                exit_code = exit_status(getattr(escaped, "exit_code", 1))
        error: BaseException | None = None
        if isinstance(exc, KeyboardInterrupt | EOFError | flavor.abort):
            outcome = "interrupted"
        elif isinstance(exc, flavor.usage_error):
            outcome = "usage_error"
        elif exit_code == 0:
            outcome = "success"
        else:
            outcome = "failure"
            if exc is not None and not isinstance(exc, SystemExit | flavor.exit):
                error = exc
        if self.recorder is None and outcome == "usage_error" and still_to_ask(self.inst.telemetry):
            return
        self.start()
        if self.recorder is None:
            return
        try:
            close_recorder(self.recorder, outcome, exit_code, error)
        except Exception:
            pass


def _single_value(param: Any, value: Any) -> str | None:
    """The option's value as typed, when it is one value (a repeated option records presence)."""
    if isinstance(value, tuple | list):
        if len(value) != 1:
            return None
        value = value[0]
    if value is None:
        return None
    return value_text(value, hasattr(param, "type_descriptor"))


class Instrumentation:
    """Wraps a click-like command tree so that each call of ``main`` records one command event."""

    def __init__(self, telemetry: Any, flavor: Flavor) -> None:
        self.telemetry = telemetry
        self.flavor = flavor

    def attach(self, cmd: Any) -> None:
        """Wrap ``make_context``, ``invoke`` (and ``resolve_command``) of ``cmd``; idempotent."""
        if getattr(cmd, _ATTACHED, None) is self:
            return
        make_context, invoke = cmd.make_context, cmd.invoke

        def make_context_wrapper(*args: Any, **kwargs: Any) -> Any:
            run = _RUN.get()
            if run is None or run.skip:
                return make_context(*args, **kwargs)
            try:
                parent = kwargs.get("parent", args[2] if len(args) > 2 else None)
                info_name = kwargs.get("info_name", args[0] if args else None)
                name = str(cmd.name or info_name)
                run.reach([] if parent is None else [*_ctx_path(parent), name])
            except Exception:
                pass  # telemetry never breaks the tool
            try:
                ctx = make_context(*args, **kwargs)
            except BaseException as exc:
                run.failed_parse(exc)
                raise
            try:
                run.parsed(cmd, ctx)
            except Exception:
                pass
            return ctx

        def invoke_wrapper(ctx: Any) -> Any:
            run = _RUN.get()
            if run is not None and not run.skip and not is_group(cmd):
                run.start()
            try:
                return invoke(ctx)
            except BaseException as exc:
                if run is not None:
                    run.saw(exc)
                raise

        cmd.make_context = make_context_wrapper
        cmd.invoke = invoke_wrapper
        if is_group(cmd) and hasattr(cmd, "resolve_command"):
            resolve = cmd.resolve_command

            def resolve_wrapper(ctx: Any, args: list[str]) -> Any:
                name, sub, rest = resolve(ctx, args)
                try:
                    run = _RUN.get()
                    if sub is not None and is_internal(sub) and run is not None:
                        run.skip = True
                    elif sub is not None:
                        self.attach(sub)
                except Exception:
                    pass  # telemetry never breaks the tool
                return name, sub, rest

            cmd.resolve_command = resolve_wrapper
        setattr(cmd, _ATTACHED, self)

    def call_main(self, root: Any, main: Callable[[], Any]) -> Any:
        """Run ``main`` (the framework's own), observing how it ends; the result is untouched."""
        try:
            self.attach(root)
        except Exception:
            return main()  # cannot observe this tree: run it as it is
        run = _Run(self, root)
        token = _RUN.set(run)
        try:
            result = main()
        except SystemExit as exc:
            _quietly(run.end, exit_code=exit_status(exc.code))
            raise
        except BaseException as exc:
            _quietly(run.end, escaped=exc)
            raise
        else:
            _quietly(run.end)
            return result
        finally:
            _RUN.reset(token)


def _quietly(action: Callable[..., None], **kwargs: Any) -> None:
    """Telemetry never breaks the tool: a failure in our own bookkeeping is dropped."""
    try:
        action(**kwargs)
    except Exception:
        pass
