"""The three instrumented fixture trees as module attributes, for ``optin policy init``."""

from __future__ import annotations

import argtool
import clicktool
import typertool

from optin.integrations.argparse import instrument


class NoTelemetry:
    """Enough of ``Telemetry`` to build the trees; nothing is ever recorded through it."""

    def dimension(self, name: str, value: object) -> None:
        pass


click_cli = clicktool.build(NoTelemetry())
typer_app = typertool.build(NoTelemetry())
arg_parser = instrument(argtool.build_parser(), NoTelemetry())
