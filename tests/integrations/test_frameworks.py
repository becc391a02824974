"""What only one framework has: click's Abort and ClickException, standalone mode, single commands,
lazy groups; typer's own click copy and class hooks; argparse's return codes, aliases and parsers
without sub-parsers.
"""

from __future__ import annotations

import argparse
from typing import Any

import click
import pytest
import typer
from click.testing import CliRunner
from tests.integrations.helpers import FakeTelemetry, run_argparse, run_click, run_typer

from optin.integrations import argparse as optin_argparse
from optin.integrations import click as optin_click
from optin.integrations import typer as optin_typer

# --- click ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "outcome", "code", "error"),
    [
        ("abort", "interrupted", 1, None),
        ("clickexc", "failure", 1, click.ClickException),
        ("usage", "usage_error", 2, None),
    ],
)
def test_click_abort_click_exception_and_usage_error_from_the_callback(
    how: str, outcome: str, code: int, error: type[BaseException] | None
) -> None:
    ran = run_click(["crash", "--how", how])
    assert ran.code == code
    assert ran.one.outcome == (outcome, code, error)


def test_click_without_standalone_mode_exceptions_reach_the_caller_unchanged() -> None:
    fake = FakeTelemetry()
    from tests.integrations.helpers import clicktool

    cli = clicktool.build(fake)
    with pytest.raises(RuntimeError, match="secret-message"):
        cli.main(["crash", "--how", "exception"], standalone_mode=False)
    with pytest.raises(SystemExit):  # click lets the tool's own sys.exit through
        cli.main(["crash", "--how", "exit", "--code", "0"], standalone_mode=False)
    assert cli.main(["deploy"], standalone_mode=False) is None
    with pytest.raises(click.UsageError):
        cli.main(["deploy", "--bogus"], standalone_mode=False)
    outcomes = [r.outcome for r in fake.recorders]
    assert outcomes == [
        ("failure", 1, RuntimeError),
        ("success", 0, None),
        ("success", 0, None),
        ("usage_error", 2, None),
    ]


def test_click_single_command_is_recorded_under_its_name_and_gains_nothing() -> None:
    @click.command()
    @click.argument("files", nargs=-1)
    @click.option("--fast", is_flag=True)
    def single(files: tuple[str, ...], fast: bool) -> None:
        click.echo(len(files))

    fake = FakeTelemetry(policy=None)
    optin_click.instrument(single, fake)
    result = CliRunner().invoke(single, ["a", "b", "--fast"])
    assert result.exit_code == 0 and result.output == "2\n"
    (rec,) = fake.recorders
    assert (rec.path, rec.options, rec.count) == ("single", {"fast": None}, 2)
    assert CliRunner().invoke(single, ["telemetry"]).output == "1\n"  # just an argument


def test_click_lazily_loaded_subcommands_are_observed() -> None:
    @click.command()
    @click.option("--deep", type=click.Choice(["yes", "no"]))
    def leaf(deep: str | None) -> None:
        pass

    class Lazy(click.Group):
        def list_commands(self, ctx: click.Context) -> list[str]:
            return ["leaf"]

        def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
            return leaf if name == "leaf" else super().get_command(ctx, name)

    root = Lazy("root")
    fake = FakeTelemetry(policy=None)
    optin_click.instrument(root, fake)
    assert CliRunner().invoke(root, ["leaf", "--deep", "yes"]).exit_code == 0
    (rec,) = fake.recorders
    assert (rec.path, rec.options) == ("leaf", {"deep": "yes"})


def test_click_group_invoked_on_its_own_is_recorded_as_its_name() -> None:
    @click.group(invoke_without_command=True)
    @click.option("--color", type=click.Choice(["auto", "never"]))
    def bare(color: str | None) -> None:
        pass

    @bare.command()
    def sub() -> None:
        pass

    fake = FakeTelemetry(policy=None)
    optin_click.instrument(bare, fake)
    assert CliRunner().invoke(bare, ["--color", "never"]).exit_code == 0
    assert CliRunner().invoke(bare, ["sub"]).exit_code == 0
    assert [(r.path, r.options) for r in fake.recorders] == [
        ("bare", {"color": "never"}),
        ("sub", {}),
    ]


def test_click_a_bare_group_showing_its_help_is_not_recorded() -> None:
    ran = run_click([])
    assert ran.code in (0, 2) and "Usage" in ran.output
    assert ran.recorders == []


def test_click_instrument_refuses_a_clash_and_a_second_call() -> None:
    @click.group()
    def cli() -> None:
        pass

    @cli.command("telemetry")
    def own() -> None:
        pass

    with pytest.raises(ValueError, match="already has a 'telemetry' command"):
        optin_click.instrument(cli, FakeTelemetry())
    optin_click.instrument(cli, FakeTelemetry(), add_commands=False)
    with pytest.raises(ValueError, match="already instrumented"):
        optin_click.instrument(cli, FakeTelemetry(), add_commands=False)


def test_click_telemetry_group_help_lists_every_action() -> None:
    ran = run_click(["telemetry", "--help"])
    assert ran.code == 0
    for action in ("on", "off", "local", "status", "show", "upload", "report"):
        assert f"  {action} " in ran.output
    assert ran.recorders == []


# --- typer ---------------------------------------------------------------------------------------


def test_typer_commands_are_not_click_commands_and_still_observed() -> None:
    import typer.main
    from tests.integrations.helpers import typertool

    fake = FakeTelemetry()
    command = typer.main.get_command(typertool.build(fake))
    assert not isinstance(command, click.Command)  # typer 0.29 carries its own click
    ran = run_typer(["canister", "--network", "ic", "install", "--mode", "upgrade", "a"])
    assert ran.one.options == {"network": "ic", "mode": "upgrade"}


def test_typer_bad_parameter_from_the_callback_is_a_usage_error() -> None:
    ran = run_typer(["crash", "--how", "usage"])
    assert ran.code == 2
    assert ran.one.outcome == ("usage_error", 2, None)


def test_typer_single_command_app_is_recorded_and_keeps_its_command_line() -> None:
    app = typer.Typer(add_completion=False)

    @app.command()
    def greet(names: list[str], loud: bool = False) -> None:
        print(len(names))

    fake = FakeTelemetry(policy=None)
    optin_typer.instrument(app, fake)
    from typer.testing import CliRunner as TyperRunner

    result = TyperRunner().invoke(app, ["a", "telemetry", "--loud"])
    assert result.exit_code == 0 and result.output == "2\n"  # "telemetry" is just an argument
    (rec,) = fake.recorders
    assert (rec.path, rec.options, rec.count) == ("greet", {"loud": None}, 2)


def test_typer_keeps_a_group_class_given_on_the_callback() -> None:
    from typer.core import TyperGroup

    class Mine(TyperGroup):
        marker = "mine"

    app = typer.Typer(add_completion=False)

    @app.callback(cls=Mine)
    def root() -> None:
        pass

    @app.command()
    def one() -> None:
        pass

    fake = FakeTelemetry(policy=None)
    optin_typer.instrument(app, fake)
    from typer.main import get_command

    command: Any = get_command(app)
    assert isinstance(command, Mine)
    from typer.testing import CliRunner as TyperRunner

    assert TyperRunner().invoke(app, ["one"]).exit_code == 0
    assert [r.path for r in fake.recorders] == ["one"]


# --- argparse ------------------------------------------------------------------------------------


def test_argparse_run_returns_mains_value_and_records_it_as_the_exit_code() -> None:
    ran = run_argparse(["crash", "--how", "return", "--code", "5"])
    assert ran.code == 5
    assert ran.one.outcome == ("failure", 5, None)


def test_argparse_an_alias_records_its_command() -> None:
    ran = run_argparse(["can", "install", "x"])
    assert (ran.one.path, ran.one.count) == ("canister.install", 1)


def test_argparse_parser_without_subparsers_is_main_and_gains_nothing() -> None:
    parser = argparse.ArgumentParser(prog="flat")
    parser.add_argument("path", nargs="?")
    parser.add_argument("--level", choices=["1", "2"])
    fake = FakeTelemetry(policy=None)
    assert optin_argparse.run(parser, lambda a: a.path, fake, argv=[]) is None
    assert optin_argparse.run(parser, lambda a: 0, fake, argv=["p", "--level", "2"]) == 0
    with pytest.raises(SystemExit):
        optin_argparse.run(parser, lambda a: 0, fake, argv=["telemetry", "status"])
    assert [(r.path, r.options, r.count) for r in fake.recorders] == [
        ("main", {}, 0),
        ("main", {"level": "2"}, 1),
        ("main", {}, None),  # two positionals where one is allowed: a usage error, no count
    ]
    assert fake.recorders[2].outcome == ("usage_error", 2, None)


def test_argparse_exit_on_error_false_is_a_usage_error_and_propagates() -> None:
    parser = argparse.ArgumentParser(prog="strict", exit_on_error=False)
    parser.add_argument("--n", type=int)
    fake = FakeTelemetry(policy=None)
    with pytest.raises(argparse.ArgumentError):
        optin_argparse.run(parser, lambda a: 0, fake, argv=["--n", "x"])
    assert fake.recorders[0].outcome == ("usage_error", 2, None)


def test_argparse_the_namespace_main_sees_is_unchanged() -> None:
    from tests.integrations.helpers import argtool

    seen: list[dict[str, Any]] = []
    argv = ["-v", "canister", "--network", "ic", "install", "a", "--mode", "auto"]
    optin_argparse.run(
        argtool.build_parser(), lambda a: seen.append(vars(a)), FakeTelemetry(), argv
    )
    assert seen == [vars(argtool.build_parser().parse_args(argv))]


# --- not_recorded --------------------------------------------------------------------------------


def test_not_recorded_commands_run_but_are_neither_recorded_nor_drafted() -> None:
    from optin.integrations import not_recorded
    from optin.integrations._clicklike import walk as walk_clicklike
    from optin.integrations.argparse import walk as walk_argparse

    @click.group()
    def cli() -> None:
        pass

    @not_recorded
    @cli.command()
    def version() -> None:  # the mark on the command object
        click.echo("1.0")

    @cli.command()
    @not_recorded
    def completion() -> None:  # the mark on the callback
        click.echo("complete")

    @cli.command()
    def work() -> None:
        click.echo("working")

    app = typer.Typer(add_completion=False)

    @app.command("version")
    @not_recorded
    def typer_version() -> None:
        print("1.0")

    @app.command("work")
    def typer_work() -> None:
        print("working")

    parser = argparse.ArgumentParser(prog="p")
    sub = parser.add_subparsers(dest="cmd", required=True)
    not_recorded(sub.add_parser("version"))
    sub.add_parser("work")

    fakes = [FakeTelemetry(policy=None) for _ in range(3)]
    optin_click.instrument(cli, fakes[0])
    optin_typer.instrument(app, fakes[1])
    from typer.testing import CliRunner as TyperRunner

    for name in ("version", "completion", "work"):
        assert CliRunner().invoke(cli, [name]).exit_code == 0
    for name in ("version", "work"):
        assert TyperRunner().invoke(app, [name]).exit_code == 0
        assert optin_argparse.run(parser, lambda a: a.cmd, fakes[2], [name]) == name
    assert [[r.path for r in f.recorders] for f in fakes] == [["work"], ["work"], ["work"]]

    from typer.main import get_command

    assert [s.path for s in walk_clicklike(cli)] == ["work"]
    assert [s.path for s in walk_clicklike(get_command(app))] == ["work"]
    assert [s.path for s in walk_argparse(parser)] == ["work"]
