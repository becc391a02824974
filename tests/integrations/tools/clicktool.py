"""A small click tool with nested groups, instrumented with optin (a test fixture).

Run as ``python clicktool.py ...``; ``build(telemetry)`` makes a fresh tree for in-process tests.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from optin.integrations.click import instrument

POLICY = Path(__file__).with_name("telemetry.toml")
HOWS = ["ok", "exception", "custom", "exit", "interrupt", "abort", "clickexc", "usage"]


def build(telemetry: Any, instrumented: bool = True) -> click.Group:
    @click.group()
    @click.option("--verbose", "-v", is_flag=True, help="Say more.")
    @click.version_option("1.0.0", prog_name="fixture")
    def cli(verbose: bool) -> None:
        """The fixture tool."""

    @cli.group()
    @click.option("--network", type=click.Choice(["ic", "local", "staging"]), default="local")
    def canister(network: str) -> None:
        """Canister commands."""

    @canister.command()
    @click.argument("names", nargs=-1)
    @click.option(
        "--mode",
        type=click.Choice(["install", "reinstall", "upgrade", "auto"]),
        default="install",
        envvar="FIXTURE_MODE",
    )
    @click.option("--yes", "-y", is_flag=True)
    @click.option("--wasm", type=click.Path(), envvar="FIXTURE_WASM")
    def install(names: tuple[str, ...], mode: str, yes: bool, wasm: str | None) -> None:
        """Install code into canisters."""
        click.echo(f"install {len(names)} {mode}")

    @canister.command("list")
    def list_() -> None:
        """List canisters."""
        click.echo("a b c")

    @cli.command()
    @click.argument("names", nargs=-1)
    @click.option("--env", default="dev")
    @click.option("--with-cycles", type=int, default=0)
    def deploy(names: tuple[str, ...], env: str, with_cycles: int) -> None:
        """Deploy canisters."""
        telemetry.dimension("network", "ic")
        click.echo(f"deploy {len(names)} to {env}")

    @cli.command()
    @click.option("--how", type=click.Choice(HOWS), default="ok")
    @click.option("--code", type=int, default=3)
    def crash(how: str, code: int) -> None:
        """Fail in the way asked."""
        if how == "exception":
            raise RuntimeError("secret-message /home/alice/token")
        if how == "custom":
            raise ValueError("another secret")
        if how == "exit":
            sys.exit(code)
        if how == "interrupt":
            raise KeyboardInterrupt
        if how == "abort":
            raise click.Abort()
        if how == "clickexc":
            raise click.ClickException("a click failure")
        if how == "usage":
            raise click.UsageError("bad usage from the callback")

    return instrument(cli, telemetry) if instrumented else cli


def main() -> None:
    from optin import Telemetry

    telemetry = Telemetry(
        POLICY, app_version="1.0.0", upload=os.environ.get("FIXTURE_UPLOAD", "background")
    )
    build(telemetry)(prog_name="fixture")


if __name__ == "__main__":
    main()
