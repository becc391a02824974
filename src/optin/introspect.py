"""``optin policy init``: draft a policy from a CLI's own command tree, for a person to review.

The target is ``MODULE:OBJECT`` naming a click group or command, a typer app, an argparse
parser, or a function taking no arguments that returns one of those. The walkers live beside the
runtime adapters (``optin.integrations``) so that the draft names commands and options exactly as
the integration records them; the framework is only imported when the target's module already
did, so drafting from an argparse tool needs neither click nor typer.

The draft is deliberately incomplete: every ``purpose`` says TODO, every positional count is off,
and only closed lists the CLI itself declares are proposed as values. It loads as it is
(:func:`optin.policy.loads`), so a maintainer can check it before editing it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from typing import Any

from optin.integrations._spec import CommandSpec
from optin.policy import (
    APP_PATTERN,
    COMMAND_PATTERN,
    DEFAULT_SETTINGS,
    MAX_VALUES,
    NAME_PATTERN,
    OTHER,
    VALUE_PATTERN,
    loads,
)

APP_RE = re.compile(APP_PATTERN)
COMMAND_RE = re.compile(COMMAND_PATTERN)
NAME_RE = re.compile(NAME_PATTERN)
VALUE_RE = re.compile(VALUE_PATTERN)

__all__ = ["IntrospectError", "draft_policy", "find_commands", "load_target"]

TODO = "TODO"


class IntrospectError(ValueError):
    """The target cannot be loaded or is not a CLI this module knows how to read."""


def load_target(target: str) -> Any:
    """Import ``MODULE:OBJECT`` (``OBJECT`` may be dotted) and return the object."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise IntrospectError(f"{target!r}: expected MODULE:OBJECT, e.g. mytool.cli:main")
    added = "" not in sys.path
    if added:
        sys.path.insert(0, "")  # like `python -m`: the current directory's modules are found
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise IntrospectError(f"{target!r}: cannot import {module_name!r}: {exc}") from exc
    finally:
        if added:
            sys.path.remove("")
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise IntrospectError(f"{target!r}: {module_name!r} has no {attr!r}") from None
    return obj


def find_commands(obj: Any) -> tuple[str, list[CommandSpec]]:
    """``(framework, command specs)`` for a click, typer or argparse object (or a factory)."""
    for _ in range(2):
        kind = _framework(obj)
        if kind == "argparse":
            from optin.integrations.argparse import walk as walk_argparse

            return kind, walk_argparse(obj)
        if kind == "typer":
            import typer.main

            obj = typer.main.get_command(obj)
        if kind in ("typer", "typer-click", "click"):
            from optin.integrations._clicklike import walk as walk_clicklike

            return ("typer" if kind.startswith("typer") else "click"), walk_clicklike(obj)
        if callable(obj) and _takes_no_arguments(obj):
            obj = _call_factory(obj)
            continue
        break
    raise IntrospectError(
        f"{type(obj).__name__} is not a click command, a typer app, an argparse parser, "
        "or a function returning one"
    )


def _call_factory(factory: Any) -> Any:
    """Call a function expected to build and return the CLI; one that runs it instead (a
    ``main()`` that parses ``sys.argv``) is stopped before it can act on optin's arguments."""
    saved = sys.argv
    sys.argv = [saved[0] if saved else "optin", "--help-not-a-factory"]
    try:
        return factory()
    except SystemExit:
        raise IntrospectError(
            f"calling {getattr(factory, '__qualname__', factory)!r} ran a command line instead "
            "of returning one: name the click group, typer app or parser itself"
        ) from None
    finally:
        sys.argv = saved


def _framework(obj: Any) -> str | None:
    """Which framework made ``obj``, judged from already-imported modules (imports nothing)."""
    import argparse

    if isinstance(obj, argparse.ArgumentParser):
        return "argparse"
    typer = sys.modules.get("typer")
    if typer is not None and isinstance(obj, typer.Typer):
        return "typer"
    typer_click = sys.modules.get("typer._click.core")
    if typer_click is not None and isinstance(obj, typer_click.Command):
        return "typer-click"
    click = sys.modules.get("click")
    if click is not None and isinstance(obj, click.Command):
        return "click"
    return None


def _takes_no_arguments(func: Any) -> bool:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in signature.parameters.values()
    )


def _app_id(target: str) -> str:
    """``my_tool.cli:main`` -> ``my-tool``: the target's top-level package, as an app id."""
    top = target.partition(":")[0].split(".")[0]
    app = re.sub(r"[^a-z0-9-]+", "-", top.lower()).strip("-")
    if not app or not app[0].isalpha():
        app = f"app-{app}".strip("-")
    return app if APP_RE.match(app) else "my-tool"


def _q(text: str) -> str:
    """A TOML basic string (JSON's escapes are valid TOML)."""
    return json.dumps(text, ensure_ascii=False)


def _key(name: str) -> str:
    return name if re.match(r"^[A-Za-z0-9_-]+$", name) else _q(name)


def draft_policy(target: str, app: str | None = None, endpoint: str = "") -> str:
    """The draft policy TOML for the CLI at ``target``; see the module docstring."""
    framework, specs = find_commands(load_target(target))
    app_id = app or _app_id(target)
    if not APP_RE.match(app_id):
        raise IntrospectError(f"{app_id!r} is not a valid app id (lower case, digits and '-')")
    endpoint = endpoint or "https://telemetry.example.org"
    out: list[str] = [
        f"# Draft collection policy for {app_id}, from `optin policy init {target}` ({framework}).",
        "#",
        "# Review every line before you ship it. Nothing outside this file can be recorded, so",
        "# delete what you do not need. Every purpose below says TODO: replace each with one",
        "# sentence, for the people who run the tool, saying why that field is collected",
        "# (`optin notice` renders them as the public notice). Then run `optin policy check`.",
        "",
        f"app = {_q(app_id)}",
        f"name = {_q(app_id)}",
        "# Raise the version when you start collecting a new kind of data: users are asked again.",
        "version = 1",
        f"endpoint = {_q(endpoint)}",
        f"purpose = {_q(f'{TODO}: say why {app_id} collects usage data, in a sentence.')}",
        "",
        "# The defaults; uncomment a line to change it.",
        "# [settings]",
    ]
    for key in type(DEFAULT_SETTINGS).__slots__:
        out.append(f"# {key} = {getattr(DEFAULT_SETTINGS, key)!r}")
    emitted = 0
    taken: set[str] = set()
    for spec in specs:
        lines = _command(spec, taken)
        if lines and not lines[0].startswith("#"):
            emitted += 1
        out += ["", *lines]
    out += [
        "",
        "# Custom dimensions, events and error categories: declare them here when the tool",
        "# sets them (see the policy reference). An exception whose class is not listed under",
        "# [errors] is recorded as 'other'.",
        "# [dimensions.network]",
        f"# purpose = {_q(f'{TODO}: why this dimension is collected.')}",
        '# values = ["local", "remote"]',
        "# [errors]",
        f"# ConnectionError = {_q(f'{TODO}: why this error category is collected.')}",
        "",
    ]
    if not emitted:
        raise IntrospectError(f"{target!r}: no command with a usable name was found")
    text = "\n".join(out)
    loads(text, f"<draft of {target}>")  # the draft must load as it stands
    return text


def _folded(name: str) -> str:
    """The form in which the policy loader compares names for clashes."""
    return name.lower().replace("_", "-")


def _command(spec: CommandSpec, taken: set[str]) -> list[str]:
    if not COMMAND_RE.match(spec.path):
        return [f"# skipped command {_q(spec.path)}: not a valid path ({COMMAND_RE.pattern})"]
    if _folded(spec.path) in taken:
        return [f"# skipped command {_q(spec.path)}: clashes with another command's name"]
    taken.add(_folded(spec.path))
    table = f"commands.{_q(spec.path)}" if "." in spec.path else f"commands.{_key(spec.path)}"
    purpose = f"{TODO}: why uses of `{spec.path.replace('.', ' ')}` are counted."
    lines = [f"[{table}]", f"purpose = {_q(purpose)}"]
    if spec.positionals:
        lines += [
            "# Takes positional arguments. They are never captured; set this to true to count",
            "# them (e.g. one target or all of them).",
            "positional_count = false",
        ]
    seen: set[str] = set()
    for option in spec.options:
        if _folded(option.name) in seen:
            lines.append(f"# skipped option {_q(option.name)}: clashes with another option's name")
            continue
        seen.add(_folded(option.name))
        lines += _option(table, option.name, option.choices)
    return lines


def _option(table: str, name: str, choices: tuple[str, ...] | None) -> list[str]:
    if not NAME_RE.match(name):
        return [f"# skipped option {_q(name)}: not a valid option name ({NAME_RE.pattern})"]
    purpose = f"{TODO}: why the use of the option {name!r} is counted."
    lines = [f"[{table}.options.{_key(name)}]", f"purpose = {_q(purpose)}"]
    if choices is None:
        return lines
    kept = [c for c in choices if VALUE_RE.match(c) and c != OTHER]
    for c in choices:
        if c not in kept:
            why = "is implied" if c == OTHER else f"is not a closed-list value ({VALUE_RE.pattern})"
            lines.append(f"# value {_q(c)} {why}: recorded as 'other'")
    if not kept:
        lines.append("# no value qualifies for a closed list: recorded as present only")
    elif len(kept) > MAX_VALUES:
        lines.append(f"# {len(kept)} values (more than {MAX_VALUES}): recorded as present only")
    else:
        lines.append("# Closed list: the value is recorded; anything else as 'other'. Delete the")
        lines.append("# line to record presence only.")
        lines.append(f"values = [{', '.join(_q(c) for c in kept)}]")
    return lines
