"""Shared by the integration tests: a recording stand-in for ``Telemetry``, and one runner per
framework that invokes a fixture tool in-process and reports its exit code and what was recorded.
"""

from __future__ import annotations

import io
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from optin.integrations._spec import exit_status
from optin.policy import Policy, load

TOOLS = Path(__file__).parent / "tools"
POLICY_PATH = TOOLS / "telemetry.toml"
POLICY = load(POLICY_PATH)
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

import argtool  # noqa: E402
import clicktool  # noqa: E402
import typertool  # noqa: E402


class FakeRecorder:
    """Records the calls an adapter makes, as ``CommandRecorder`` would receive them."""

    def __init__(self, telemetry: FakeTelemetry, path: str) -> None:
        self.t = telemetry
        self.path = path
        self.options: dict[str, object] = {}
        self.count: int | None = None
        self.dims: dict[str, object] = {}
        self.finished: list[tuple[str, int | None, object]] = []
        self.entered = 0

    def option(self, name: str, value: object = None) -> None:
        self.options[name] = value

    def positionals(self, count: int) -> None:
        self.count = count

    def dimension(self, name: str, value: object) -> None:
        self.dims[name] = value

    def finish(self, outcome: str, exit_code: int | None, error: object = None) -> None:
        self.finished.append((outcome, exit_code, error))

    def __enter__(self) -> FakeRecorder:
        self.entered += 1
        self.t.stack.append(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self.t.stack.remove(self)
        return False

    @property
    def outcome(self) -> tuple[str, int | None, type[BaseException] | None]:
        assert len(self.finished) == 1, self.finished
        outcome, code, error = self.finished[0]
        return outcome, code, type(error) if isinstance(error, BaseException) else None


class FakeTelemetry:
    """The part of :class:`optin.Telemetry` the adapters use."""

    def __init__(self, policy: Policy | None = POLICY) -> None:
        if policy is not None:
            self.policy = policy
        self.recorders: list[FakeRecorder] = []
        self.stack: list[FakeRecorder] = []
        self.cli_calls: list[list[str]] = []

    def command(self, path: str) -> FakeRecorder:
        recorder = FakeRecorder(self, path)
        self.recorders.append(recorder)
        return recorder

    def dimension(self, name: str, value: object) -> None:
        if self.stack:
            self.stack[-1].dimension(name, value)

    def cli(self, argv: list[str]) -> int:
        self.cli_calls.append(list(argv))
        return 0


@dataclass
class Ran:
    code: int
    exception: BaseException | None
    output: str
    telemetry: Any
    recorders: list[FakeRecorder] = field(default_factory=list)

    @property
    def one(self) -> FakeRecorder:
        assert len(self.recorders) == 1, [r.path for r in self.recorders]
        recorder = self.recorders[0]
        assert recorder.entered == 1 and not self.telemetry.stack
        return recorder


def _ran(code: int, exc: BaseException | None, output: str, telemetry: Any) -> Ran:
    if isinstance(exc, SystemExit):
        exc = None
    return Ran(code, exc, output, telemetry, list(getattr(telemetry, "recorders", [])))


def run_click(
    args: list[str],
    env: dict[str, str] | None = None,
    telemetry: Any = None,
    instrumented: bool = True,
) -> Ran:
    from click.testing import CliRunner

    telemetry = FakeTelemetry() if telemetry is None else telemetry
    cli = clicktool.build(telemetry, instrumented)
    result = CliRunner().invoke(cli, args, env=env, prog_name="fixture")
    return _ran(result.exit_code, result.exception, result.output, telemetry)


def run_typer(
    args: list[str],
    env: dict[str, str] | None = None,
    telemetry: Any = None,
    instrumented: bool = True,
) -> Ran:
    from typer.testing import CliRunner

    telemetry = FakeTelemetry() if telemetry is None else telemetry
    app = typertool.build(telemetry, instrumented)
    result = CliRunner().invoke(app, args, env=env, prog_name="fixture")
    return _ran(result.exit_code, result.exception, result.output, telemetry)


def run_argparse(
    args: list[str],
    env: dict[str, str] | None = None,
    telemetry: Any = None,
    instrumented: bool = True,
) -> Ran:
    from optin.integrations.argparse import run

    assert not env, "the argparse fixture reads no environment"
    telemetry = FakeTelemetry() if telemetry is None else telemetry
    parser = argtool.build_parser()
    main = argtool.make_main(telemetry)
    out = io.StringIO()
    exc: BaseException | None = None
    with redirect_stdout(out), redirect_stderr(out):
        try:
            if instrumented:
                result = run(parser, main, telemetry, argv=args)
            else:
                result = main(parser.parse_args(args))
            code = exit_status(result)
        except SystemExit as e:
            code = exit_status(e.code)
        except KeyboardInterrupt as e:
            code, exc = 130, e
        except Exception as e:
            code, exc = 1, e
    return _ran(code, exc, out.getvalue(), telemetry)


RUNNERS = {"click": run_click, "typer": run_typer, "argparse": run_argparse}
