"""Usage telemetry for a typer app, in one call.

::

    import typer
    from optin import Telemetry
    from optin.integrations.typer import instrument

    app = typer.Typer()
    ...  # commands and sub-apps
    instrument(app, Telemetry("telemetry.toml", app_version=VERSION))

    if __name__ == "__main__":
        app()

Records exactly what :mod:`optin.integrations.click` records (see there: command path, options
given on the command line, closed-list values, positional count, outcome), with typer's own
conventions: enum choices are spelled by value, and Ctrl-C ends the tool with typer's exit
code 130, recorded as ``interrupted``.

How it hooks in. typer 0.29 builds a fresh click-like command tree on every ``app()`` (with
``typer.main.get_command``) from its own copy of click, ``typer._click``, whose classes are not
click's. So ``instrument`` does not wrap objects once: it gives the app a subclass of its root
command class (typer's documented ``cls=`` hook: the callback's, else the app's, else
``TyperGroup``) whose ``main`` observes each run. ``app()``, ``typer.testing.CliRunner`` and
entry points that name ``app`` all go through it.

A multi-command app gains ``<tool> telemetry on|off|local|status|show|upload|report``. A
single-command app is recorded too, but adding a subcommand would turn its command line into a
group's, so it gains nothing: mount :func:`telemetry_app` yourself, or let users use
``<APP>_TELEMETRY``. Call ``instrument`` after every command and sub-app is registered.
"""

from __future__ import annotations

from typing import Any

import typer
from typer import _click
from typer._click.core import ParameterSource
from typer.core import TyperCommand, TyperGroup
from typer.models import DefaultPlaceholder

from optin.integrations._clicklike import Flavor, Instrumentation
from optin.integrations._spec import (
    INTERNAL_MARK,
    TELEMETRY_ACTIONS,
    TELEMETRY_COMMAND,
    TELEMETRY_HELP,
)

__all__ = ["instrument", "telemetry_app"]

FLAVOR = Flavor(
    usage_error=_click.exceptions.UsageError,
    abort=typer.Abort,
    exit=typer.Exit,
    no_args_is_help=_click.exceptions.NoArgsIsHelpError,
    commandline=ParameterSource.COMMANDLINE,
)


def _is_group(app: typer.Typer) -> bool:
    """The test ``typer.main.get_command`` makes to build a group rather than one command."""
    return bool(
        app.registered_callback
        or app.info.callback
        or app.registered_groups
        or len(app.registered_commands) > 1
    )


def instrument(app: typer.Typer, telemetry: Any, *, add_commands: bool = True) -> typer.Typer:
    """Record one event per run of ``app``; returns the app.

    ``telemetry`` is an :class:`optin.Telemetry`. With ``add_commands`` a multi-command app
    gains the ``telemetry`` sub-app; a name clash raises ``ValueError``.
    """
    if getattr(app, "_optin_instrumented", False):
        raise ValueError("this typer app is already instrumented")
    if not app.registered_commands and not app.registered_groups:
        raise ValueError("register the app's commands before instrumenting it")
    if add_commands and _is_group(app):
        taken = {c.name or getattr(c.callback, "__name__", "") for c in app.registered_commands}
        taken |= {
            g.name for g in app.registered_groups if not isinstance(g.name, DefaultPlaceholder)
        }
        if TELEMETRY_COMMAND in taken:
            raise ValueError(
                f"the app already has a {TELEMETRY_COMMAND!r} command; pass add_commands=False"
            )
        app.add_typer(telemetry_app(telemetry), name=TELEMETRY_COMMAND)
    inst = Instrumentation(telemetry, FLAVOR)
    if _is_group(app):
        callback = app.registered_callback
        if callback is not None and not isinstance(callback.cls, DefaultPlaceholder):
            callback.cls = _observed(callback.cls, inst)
        else:
            base = app.info.cls
            base = TyperGroup if isinstance(base, DefaultPlaceholder) or base is None else base
            app.info.cls = _observed(base, inst)
    else:
        info = app.registered_commands[0]
        info.cls = _observed(info.cls or TyperCommand, inst)
    app._optin_instrumented = True  # type: ignore[attr-defined]
    return app


def _observed(base: Any, inst: Instrumentation) -> Any:
    """A subclass of ``base`` (typer's root class) whose ``main`` is observed by ``inst``."""

    def main(self: Any, *args: Any, **kwargs: Any) -> Any:
        return inst.call_main(self, lambda: base.main(self, *args, **kwargs))

    return type(base.__name__, (base,), {"main": main, "__module__": base.__module__})


def telemetry_app(telemetry: Any) -> typer.Typer:
    """The ``telemetry`` sub-app: each command forwards to ``telemetry.cli([...])``."""
    sub = typer.Typer(name=TELEMETRY_COMMAND, help=TELEMETRY_HELP, add_completion=False)

    def group_callback() -> None:
        """Nothing to do: the subcommands act."""

    setattr(group_callback, INTERNAL_MARK, True)
    sub.callback()(group_callback)
    for action, text in TELEMETRY_ACTIONS:
        sub.command(
            action,
            help=text,
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        )(_forward(telemetry, action))
    return sub


def _forward(telemetry: Any, action: str) -> Any:
    def forward(ctx: typer.Context) -> None:
        raise typer.Exit(telemetry.cli([action, *ctx.args]) or 0)

    setattr(forward, INTERNAL_MARK, True)
    return forward
