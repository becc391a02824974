"""Usage telemetry for an argparse tool: parse, run and record in one call.

::

    import argparse, sys
    from optin import Telemetry
    from optin.integrations.argparse import run

    def main(args: argparse.Namespace) -> int: ...

    if __name__ == "__main__":
        sys.exit(run(build_parser(), main, Telemetry("telemetry.toml", app_version=VERSION)))

:func:`run` parses the command line, calls ``main(args)`` and returns what ``main`` returned,
unchanged, so ``sys.exit(run(...))`` behaves exactly as ``sys.exit(main(parser.parse_args()))``.
It records one ``command`` event (when the user has opted in):

- the command path from the sub-parsers chosen (``canister.install``; aliases count as their
  command; a parser without sub-parsers is the command ``main``);
- the options actually given on the command line, by ``dest``: argparse calls an action only for
  what was typed, never for a default, so each action is observed as it is called (``instrument``
  gives each action of the tree a subclass of its own class that notes the call, then defers);
- an option's value only where the policy gives it a closed list; the positional count of the
  chosen (innermost) parser where the policy asks for it;
- the outcome: ``success`` / ``failure`` from ``main``'s return value, ``sys.exit`` or an
  exception (its category); ``usage_error`` when argparse rejects the command line (exit 2);
  ``interrupted`` on Ctrl-C. Exceptions propagate unchanged.

``--help`` and ``--version`` (any exit with status 0 while parsing) and ``telemetry`` are not
recorded. If the root parser has sub-parsers, :func:`instrument` adds ``telemetry
on|off|local|status|show|upload|report`` to them, which :func:`run` hands to ``telemetry.cli``
without calling ``main``. Build the whole parser before calling either.
"""

from __future__ import annotations

import argparse
from contextvars import ContextVar

from optin.integrations._spec import (
    INTERNAL_MARK,
    ROOT_FALLBACK,
    TELEMETRY_ACTIONS,
    TELEMETRY_COMMAND,
    TELEMETRY_HELP,
    CommandSpec,
    OptionSpec,
    close_recorder,
    exit_status,
    fill,
    is_internal,
    merge_options,
    open_recorder,
    still_to_ask,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # runtime imports stay at what argparse loads anyway
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any

__all__ = ["instrument", "run"]

_SEEN: ContextVar[_Parse | None] = ContextVar("optin_argparse_parse", default=None)
_PATHS = "_optin_paths"  # on the root parser: {id(parser): "canister.install"}
_ACTION_KEY = "_optin_telemetry_action"
_ARGS_KEY = "_optin_telemetry_args"
_TELEMETRY_PARSER = "_optin_telemetry_parser"


# --- reading the tree ----------------------------------------------------------------------------


def _subparser_actions(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction[Any]]:
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def _children(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``(name, sub-parser)`` under ``parser``; an alias maps to its command's first name."""
    seen: set[int] = set()
    for action in _subparser_actions(parser):
        for name, sub in action.choices.items():
            if id(sub) not in seen:
                seen.add(id(sub))
                yield name, sub


def _is_option(action: argparse.Action) -> bool:
    return (
        bool(action.option_strings)
        and action.dest != argparse.SUPPRESS
        and not isinstance(action, argparse._HelpAction | argparse._VersionAction)
    )


def _choices(action: argparse.Action) -> tuple[str, ...] | None:
    if action.choices is None or isinstance(action.choices, str):
        return None
    return tuple(dict.fromkeys(str(c) for c in action.choices))


def _tree(
    root: argparse.ArgumentParser,
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, list[OptionSpec]]]:
    """Every parser under ``root`` (itself included), with its path and its options so far."""

    def visit(
        parser: argparse.ArgumentParser, path: tuple[str, ...], inherited: list[OptionSpec]
    ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, list[OptionSpec]]]:
        own = [OptionSpec(a.dest, _choices(a)) for a in parser._actions if _is_option(a)]
        options = merge_options(inherited, own)
        yield path, parser, options
        for name, sub in _children(parser):
            if not is_internal(sub):
                yield from visit(sub, (*path, name), options)

    yield from visit(root, (), [])


def walk(root: argparse.ArgumentParser) -> list[CommandSpec]:
    """Every command path: each parser without sub-parsers (the root alone is ``main``)."""
    specs: list[CommandSpec] = []
    for path, parser, options in _tree(root):
        if any(True for _ in _children(parser)):
            continue
        positionals = any(
            not a.option_strings and not isinstance(a, argparse._SubParsersAction)
            for a in parser._actions
        )
        specs.append(CommandSpec(".".join(path) or ROOT_FALLBACK, tuple(options), positionals))
    return specs


# --- observing a parse ---------------------------------------------------------------------------


class _Parse:
    """What the actions called during one ``parse_args`` have noted."""

    def __init__(self, paths: dict[int, str]) -> None:
        self.paths = paths
        self.path = ""
        self.telemetry = False  # the `telemetry` sub-parser was chosen
        self.skip = False  # a sub-parser marked not_recorded was chosen
        self.options: dict[str, tuple[bool, str | None]] = {}
        self.positionals = 0

    def note(self, action: argparse.Action, values: Any) -> None:
        if isinstance(action, argparse._SubParsersAction):
            name = values[0] if isinstance(values, list) and values else ""
            chosen = action.choices.get(name)
            if getattr(chosen, _TELEMETRY_PARSER, False):
                self.telemetry = True
            elif is_internal(chosen):
                self.skip = True
            known = self.paths.get(id(chosen))
            self.path = known or (f"{self.path}.{name}" if self.path else str(name))
            self.positionals = 0  # count the innermost parser's positionals only
        elif _is_option(action):
            closed = action.choices is not None
            text = values if isinstance(values, str) else None
            if isinstance(values, list) and len(values) == 1:
                text = str(values[0])
            elif values is not None and not isinstance(values, list | str):
                text = str(values)
            self.options[action.dest] = (closed, text)
        elif not action.option_strings:
            if isinstance(values, list):
                self.positionals += len(values)
            elif not (values is action.default and action.nargs in ("?", "*")):
                self.positionals += 1


_TRACKING: dict[type, type] = {}


def _tracking(cls: type[argparse.Action]) -> type[argparse.Action]:
    """A subclass of an action class that notes each call (only while :func:`run` parses)."""
    if getattr(cls, "_optin_tracking", False):
        return cls
    sub = _TRACKING.get(cls)
    if sub is None:

        def __call__(
            self: argparse.Action,
            parser: argparse.ArgumentParser,
            namespace: argparse.Namespace,
            values: Any,
            option_string: str | None = None,
        ) -> None:
            seen = _SEEN.get()
            if seen is not None:
                try:
                    seen.note(self, values)
                except Exception:
                    pass  # telemetry never breaks the tool
            cls.__call__(self, parser, namespace, values, option_string)

        sub = type(cls.__name__, (cls,), {"__call__": __call__, "_optin_tracking": True})
        sub.__module__ = cls.__module__
        _TRACKING[cls] = sub
    return sub


def instrument(parser: argparse.ArgumentParser, telemetry: Any) -> argparse.ArgumentParser:
    """Prepare ``parser`` (idempotent): add ``telemetry`` to its sub-parsers, observe actions.

    :func:`run` calls it; call it yourself only to have ``telemetry`` in ``--help`` earlier.
    Parsers without sub-parsers gain no ``telemetry`` command: the command line stays as it was.
    """
    if getattr(parser, _PATHS, None) is not None:
        return parser
    subs = _subparser_actions(parser)
    if subs and TELEMETRY_COMMAND not in subs[0].choices:
        _add_telemetry_parser(subs[0])
    paths: dict[int, str] = {}
    for path, node, _options in _tree(parser):
        paths[id(node)] = ".".join(path)
        for action in node._actions:
            try:
                action.__class__ = _tracking(type(action))
            except TypeError:
                pass  # an action class we cannot subclass: it goes unobserved
    setattr(parser, _PATHS, paths)
    return parser


def _add_telemetry_parser(action: argparse._SubParsersAction[Any]) -> None:
    listing = "\n".join(f"  {name:<8}{text}" for name, text in TELEMETRY_ACTIONS)
    sub = action.add_parser(
        TELEMETRY_COMMAND,
        help=TELEMETRY_HELP,
        description=f"{TELEMETRY_HELP}\n\nactions:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    setattr(sub, INTERNAL_MARK, True)
    setattr(sub, _TELEMETRY_PARSER, True)
    names = [name for name, _ in TELEMETRY_ACTIONS]
    sub.add_argument(_ACTION_KEY, metavar="ACTION", choices=names, help=", ".join(names))
    sub.add_argument(_ARGS_KEY, nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(
    parser: argparse.ArgumentParser,
    main: Callable[[argparse.Namespace], Any],
    telemetry: Any,
    argv: Sequence[str] | None = None,
) -> Any:
    """Parse ``argv`` (default ``sys.argv[1:]``), call ``main(args)``, record; return its result.

    ``telemetry`` is an :class:`optin.Telemetry`. Every exception, ``SystemExit`` included,
    propagates unchanged; ``<tool> telemetry ...`` returns the exit status of ``telemetry.cli``.
    """
    instrument(parser, telemetry)
    seen = _Parse(getattr(parser, _PATHS))
    token = _SEEN.set(seen)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        code = exit_status(exc.code)
        if code != 0:  # 0 is --help or --version
            _record(telemetry, seen, "usage_error", code)
        raise
    except argparse.ArgumentError:  # a parser built with exit_on_error=False
        _record(telemetry, seen, "usage_error", 2)
        raise
    except KeyboardInterrupt:
        _record(telemetry, seen, "interrupted", 130)
        raise
    finally:
        _SEEN.reset(token)
    if seen.telemetry:
        action = getattr(args, _ACTION_KEY)
        return telemetry.cli([action, *getattr(args, _ARGS_KEY, [])])
    if seen.skip:
        return main(args)
    recorder = _start(telemetry, seen)
    try:
        result = main(args)
    except SystemExit as exc:
        code = exit_status(exc.code)
        _finish(recorder, "success" if code == 0 else "failure", code)
        raise
    except KeyboardInterrupt:
        _finish(recorder, "interrupted", 130)
        raise
    except BaseException as exc:
        _finish(recorder, "failure", 1, exc)
        raise
    code = exit_status(result)
    _finish(recorder, "success" if code == 0 else "failure", code)
    return result


def _start(telemetry: Any, seen: _Parse, complete: bool = True) -> Any:
    """Open the recorder; after a usage error the parse is ``complete=False``: no count."""
    path = seen.path or ROOT_FALLBACK
    try:
        recorder = open_recorder(telemetry, path)
    except Exception:
        return None  # telemetry never breaks the tool
    try:
        fill(recorder, telemetry, path, seen.options, seen.positionals if complete else None)
    except Exception:
        pass
    return recorder


def _finish(recorder: Any, outcome: str, code: int, error: BaseException | None = None) -> None:
    if recorder is None:
        return
    try:
        close_recorder(recorder, outcome, code, error)
    except Exception:
        pass


def _record(telemetry: Any, seen: _Parse, outcome: str, code: int) -> None:
    if seen.telemetry or seen.skip:
        return
    if outcome == "usage_error" and still_to_ask(telemetry):
        return
    _finish(_start(telemetry, seen, complete=False), outcome, code)
