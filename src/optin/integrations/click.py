"""Usage telemetry for a click tool, in one call.

::

    import click
    from optin import Telemetry
    from optin.integrations.click import instrument

    @click.group()
    def cli(): ...

    instrument(cli, Telemetry(Path(__file__).with_name("telemetry.toml"), app_version=VERSION))

Each run of the tool then records one ``command`` event (when the user has opted in):

- the command path through nested groups (``canister.install``), from click's own tree;
- the options given **on the command line** — ``ctx.get_parameter_source(name)`` is
  ``COMMANDLINE``. Defaults are never recorded; neither are values from environment variables,
  ``default_map`` or prompts: those are configuration, often set once for every run, and counting
  them as "used" would say more about a user's environment than about the command line;
- an option's value only where the policy gives that option a closed list (the client records
  anything outside the list as ``other``); a repeated option records presence only;
- the number of positional arguments, where the policy asks for it; never the arguments;
- the outcome: ``success``, ``failure`` (exit code, and the exception's category),
  ``usage_error`` (``click.UsageError``, exit 2) or ``interrupted`` (Ctrl-C, ``click.Abort``).

Nothing about the run changes: exceptions propagate unchanged and the exit code is the tool's.
``--help``, ``--version`` (any eager option that exits while parsing), a group called bare to
show its help, and the ``telemetry`` commands themselves are not recorded.

A group also gains ``<tool> telemetry on|off|local|status|show|upload|report``. A single
``click.Command`` is recorded too but cannot gain subcommands without changing its command line:
mount :func:`telemetry_group` wherever suits, or let users use ``<APP>_TELEMETRY``.

Limits: a chained group (``chain=True``) records its first subcommand; a group invoked without a
subcommand (``invoke_without_command=True``) gets its recorder after its callback, so dimensions
set there are not kept.
"""

from __future__ import annotations

from typing import Any, TypeVar

import click
from click.core import ParameterSource

from optin.integrations._clicklike import Flavor, Instrumentation
from optin.integrations._spec import (
    INTERNAL_MARK,
    TELEMETRY_ACTIONS,
    TELEMETRY_COMMAND,
    TELEMETRY_HELP,
)

__all__ = ["instrument", "telemetry_group"]

C = TypeVar("C", bound=click.Command)

FLAVOR = Flavor(
    usage_error=click.UsageError,
    abort=click.Abort,
    exit=click.exceptions.Exit,
    no_args_is_help=getattr(click.exceptions, "NoArgsIsHelpError", None),
    commandline=ParameterSource.COMMANDLINE,
)


def instrument(command: C, telemetry: Any, *, add_commands: bool = True) -> C:
    """Record one event per invocation of ``command`` (a group or a command); returns it.

    ``telemetry`` is an :class:`optin.Telemetry`. With ``add_commands`` (the default) a group
    gains the ``telemetry`` subcommand group; a name clash raises ``ValueError``. Call it once,
    after every subcommand is added (lazily loaded subcommands are covered too).
    """
    if getattr(command, "_optin_instrumented", False):
        raise ValueError(f"{command.name!r} is already instrumented")
    if add_commands and isinstance(command, click.Group):
        if TELEMETRY_COMMAND in command.commands:
            raise ValueError(
                f"{command.name!r} already has a {TELEMETRY_COMMAND!r} command; "
                "pass add_commands=False and mount telemetry_group() under another name"
            )
        command.add_command(telemetry_group(telemetry))
    inst = Instrumentation(telemetry, FLAVOR)
    inst.attach(command)
    main = command.main

    def main_wrapper(*args: Any, **kwargs: Any) -> Any:
        return inst.call_main(command, lambda: main(*args, **kwargs))

    command.main = main_wrapper  # type: ignore[method-assign]
    command._optin_instrumented = True  # type: ignore[attr-defined]
    return command


def telemetry_group(telemetry: Any, name: str = TELEMETRY_COMMAND) -> click.Group:
    """The ``telemetry`` group: each subcommand forwards to ``telemetry.cli([...])``."""

    def group_callback() -> None:
        """Nothing to do: the subcommands act."""

    setattr(group_callback, INTERNAL_MARK, True)
    group = click.Group(name, callback=group_callback, help=TELEMETRY_HELP)
    setattr(group, INTERNAL_MARK, True)
    for action, text in TELEMETRY_ACTIONS:
        group.add_command(_forward(telemetry, action, text))
    return group


def _forward(telemetry: Any, action: str, text: str) -> click.Command:
    def callback(args: tuple[str, ...]) -> None:
        code = telemetry.cli([action, *args])
        click.get_current_context().exit(code or 0)

    return click.Command(
        action,
        callback=callback,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        help=text,
        context_settings={"ignore_unknown_options": True},
    )
