"""CLI shapes for ``optin policy init`` tests: one module, many frameworks, no telemetry."""

from __future__ import annotations

import argparse
import enum
from typing import Annotated, Literal

import click
import typer

# --- click ---------------------------------------------------------------------------------------


@click.group()
@click.option("--debug", is_flag=True)
@click.version_option("1.0")
def tool() -> None:
    """A click tool."""


@tool.group()
def remote() -> None:
    """Remotes."""


@remote.command("add")
@click.argument("name")
@click.option("--kind", type=click.Choice(["git", "hg", "a b", "other", "ok.v2"]))
@click.option("--dry_run", "dry_run", is_flag=True)
def remote_add(name: str, kind: str | None, dry_run: bool) -> None:
    """Add a remote."""


@remote.group("mirror")
def remote_mirror() -> None:
    """Mirrors."""


@remote_mirror.command("sync")
@click.option("--upper", "case", flag_value="upper")
@click.option("--lower", "case", flag_value="lower")
def mirror_sync(case: str | None) -> None:
    """A feature switch: two flags, one name."""


class Fmt(enum.Enum):
    JSON = "application/json"
    plain_text = "text/plain"


@tool.command()
@click.option("--fmt", type=click.Choice(Fmt))
def status(fmt: Fmt | None) -> None:
    """An enum choice: click spells members by name."""


tool.add_command(status, name="st")  # an alias: the same command, recorded once


@click.group(invoke_without_command=True)
@click.option("--color", type=click.Choice(["auto", "never"]))
def bare() -> None:
    """A group that also runs on its own."""


@bare.command()
def sub() -> None:
    """A subcommand."""


@click.command()
@click.argument("files", nargs=-1)
@click.option("--level", type=click.IntRange(0, 9))
def single(files: tuple[str, ...], level: int | None) -> None:
    """A single command, no group."""


# --- typer ---------------------------------------------------------------------------------------


class Color(enum.Enum):
    red = "red"
    dark_blue = "dark-blue"


app = typer.Typer()
db_app = typer.Typer()
app.add_typer(db_app, name="db")


@app.command()
def paint(color: Color = Color.red, shade: Literal["light", "dark"] = "light") -> None:
    """Paint."""


@db_app.command("migrate")
def db_migrate(
    steps: Annotated[int, typer.Argument()] = 1,
    fake: bool = False,
) -> None:
    """Migrate."""


single_app = typer.Typer()


@single_app.command()
def only(name: str, loud: bool = False) -> None:
    """The one command."""


# --- argparse ------------------------------------------------------------------------------------


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shapes")
    parser.add_argument("--quiet", action="store_true")
    sub = parser.add_subparsers(dest="cmd")
    build = sub.add_parser("build", aliases=["b"])
    build.add_argument("target")
    build.add_argument("--jobs", type=int, choices=[1, 2, 4])
    build.add_argument("--profile", choices=["debug", "release"])
    nested = sub.add_parser("cache").add_subparsers(dest="what")
    nested.add_parser("clear").add_argument("--all", action="store_true", dest="everything")
    return parser


flat_parser = argparse.ArgumentParser(prog="flat")
flat_parser.add_argument("path")
flat_parser.add_argument("--fast", action="store_true")

not_a_cli = 42


def main() -> None:
    """A tool's entry point: it runs the command line rather than returning it."""
    tool()
