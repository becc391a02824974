"""A small typer app with a nested sub-app, instrumented with optin (a test fixture)."""

from __future__ import annotations

import enum
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from optin.integrations.typer import instrument

POLICY = Path(__file__).with_name("telemetry.toml")


class Mode(enum.Enum):
    install = "install"
    reinstall = "reinstall"
    upgrade = "upgrade"
    auto = "auto"


class How(enum.Enum):
    ok = "ok"
    exception = "exception"
    custom = "custom"
    exit = "exit"
    interrupt = "interrupt"
    usage = "usage"


def version_callback(value: bool) -> None:
    if value:
        print("fixture 1.0.0")
        raise typer.Exit()


def build(telemetry: Any, instrumented: bool = True) -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    canister_app = typer.Typer()
    app.add_typer(canister_app, name="canister")

    @app.callback()
    def cli(
        verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
        version: Annotated[
            bool, typer.Option("--version", callback=version_callback, is_eager=True)
        ] = False,
    ) -> None:
        """The fixture tool."""

    @canister_app.callback()
    def canister(network: Literal["ic", "local", "staging"] = "local") -> None:
        """Canister commands."""

    @canister_app.command()
    def install(
        names: Annotated[list[str] | None, typer.Argument()] = None,
        mode: Annotated[Mode, typer.Option(envvar="FIXTURE_MODE")] = Mode.install,
        yes: Annotated[bool, typer.Option("--yes", "-y")] = False,
        wasm: Annotated[str | None, typer.Option(envvar="FIXTURE_WASM")] = None,
    ) -> None:
        """Install code into canisters."""
        print(f"install {len(names or [])} {mode.value}")

    @canister_app.command("list")
    def list_() -> None:
        """List canisters."""
        print("a b c")

    @app.command()
    def deploy(
        names: Annotated[list[str] | None, typer.Argument()] = None,
        env: str = "dev",
        with_cycles: int = 0,
    ) -> None:
        """Deploy canisters."""
        telemetry.dimension("network", "ic")
        print(f"deploy {len(names or [])} to {env}")

    @app.command()
    def crash(how: How = How.ok, code: int = 3) -> None:
        """Fail in the way asked."""
        if how is How.exception:
            raise RuntimeError("secret-message /home/alice/token")
        if how is How.custom:
            raise ValueError("another secret")
        if how is How.exit:
            raise typer.Exit(code)
        if how is How.interrupt:
            raise KeyboardInterrupt
        if how is How.usage:
            raise typer.BadParameter("bad usage from the callback")

    return instrument(app, telemetry) if instrumented else app


def main() -> None:
    from optin import Telemetry

    telemetry = Telemetry(
        POLICY, app_version="1.0.0", upload=os.environ.get("FIXTURE_UPLOAD", "background")
    )
    build(telemetry)(prog_name="fixture")


if __name__ == "__main__":
    sys.exit(main())
