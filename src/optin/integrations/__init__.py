"""Adapters from CLI frameworks onto :class:`optin.Telemetry`: one call per tool.

- :mod:`optin.integrations.click`: ``instrument(group, telemetry)``
- :mod:`optin.integrations.typer`: ``instrument(app, telemetry)``
- :mod:`optin.integrations.argparse`: ``run(parser, main, telemetry)``

Each records one ``command`` event per invocation from the framework's own model of the command
line (never raw argv), adds ``<tool> telemetry on|off|local|status|show|upload|report``, and
leaves the tool's exceptions and exit codes exactly as they were. Importing this package imports
no framework; each adapter imports only its own.

:func:`not_recorded` marks a command (a ``version`` or ``completion`` command, say) that is
never recorded and never drafted into a policy.
"""

from optin.integrations._spec import not_recorded

__all__ = ["not_recorded"]
