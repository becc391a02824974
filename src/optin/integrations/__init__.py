"""Adapters from CLI frameworks onto :class:`optin.Telemetry`: one call per tool.

- :mod:`optin.integrations.click`: ``instrument(group, telemetry)``
- :mod:`optin.integrations.typer`: ``instrument(app, telemetry)``
- :mod:`optin.integrations.argparse`: ``run(parser, main, telemetry)``

Each records one ``command`` event per invocation from the framework's own model of the command
line (never raw argv), adds ``<tool> telemetry on|off|local|status|show|upload|report``, and
leaves the tool's exceptions and exit codes exactly as they were. Importing this package imports
no framework; each adapter imports only its own.
"""
