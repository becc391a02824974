"""demo-cfdev: the command line (argparse), instrumented with optin.

The tool does no real work: it keeps one flag (running or not) in ``~/.demo-cfdev/vm.json``
and sleeps for a fraction of a second. It fails deterministically: ``start -f ISO`` needs an
existing file that begins with ``PCFDEV-ISO`` (else ``IsoNotFound`` / ``IsoCorrupt``), at
least 3072 MB of memory (``NotEnoughMemory``), and a stopped environment (``AlreadyRunning``).

Telemetry follows PCF Dev's page: the question is put on the first ``start`` (never by another
command); the lifecycle events begin start, start finish, error, stop and uninstall are
recorded beside each command's own event; events wait in the local spool and are pushed
periodically (``upload_interval_hours`` in the policy), and once more when the tool is
uninstalled; ``demo-cfdev telemetry --on`` / ``--off`` is PCF Dev's spelling of optin's
``telemetry on`` / ``off``. When telemetry is off, nothing at all is recorded or sent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from demo_cfdev import __version__
from demo_cfdev.env import Env

TYPE_CHECKING = False
if TYPE_CHECKING:
    from optin import Telemetry
    from optin.policy import Policy

#: The policy ships inside the package, beside this module.
POLICY = Path(__file__).with_name("telemetry.toml")
ISO_MAGIC = b"PCFDEV-ISO"
MIN_MEMORY_MB = 3072
UNINSTALL_UPLOAD_TIMEOUT = 3.0
PCF_SPELLING = {"--on": "on", "--off": "off"}


class CfDevError(Exception):
    """An error the tool reports; its class name is the error category telemetry records."""


class IsoNotFound(CfDevError):
    pass


class IsoCorrupt(CfDevError):
    pass


class AlreadyRunning(CfDevError):
    pass


class NotEnoughMemory(CfDevError):
    pass


class Vm:
    """The simulated environment: one flag in the tool's own directory (not telemetry's)."""

    def __init__(self, env: Env) -> None:
        self.dir = Path(env.home) / ".demo-cfdev"
        self.path = self.dir / "vm.json"

    def running(self) -> bool:
        try:
            return bool(json.loads(self.path.read_text(encoding="utf-8")).get("running"))
        except (OSError, ValueError):
            return False

    def set_running(self, running: bool) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"running": running}), encoding="utf-8")


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[Any]]:
    parser = argparse.ArgumentParser(
        prog="demo-cfdev",
        description="A PCF-Dev-like tool: a local environment in a VM. It only pretends. "
        "Usage telemetry is off until you say yes on the first start; see "
        "'demo-cfdev telemetry status'.",
    )
    parser.add_argument("--version", action="version", version=f"demo-cfdev {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    start = subs.add_parser("start", help="start the environment", description="Start it.")
    start.add_argument("-f", "--file", metavar="ISO", help="start from this ISO file")
    start.add_argument("-m", "--memory", type=int, metavar="MB", help="memory in MB")
    start.add_argument("-c", "--cpus", type=int, choices=[1, 2, 4, 8], help="CPUs")
    subs.add_parser("stop", help="stop the environment", description="Stop it.")
    subs.add_parser(
        "uninstall", help="uninstall the tool", description="Remove the environment and the tool."
    )
    return parser, subs


def command_tree() -> argparse.ArgumentParser:
    """The parser for ``optin policy init demo_cfdev.cli:command_tree``."""
    return build_parser()[0]


def make_telemetry(env: Env, policy: Policy | None = None, **kwargs: Any) -> Telemetry:
    """The tool's ``Telemetry``: the shipped policy, this version, the environment of ``env``.

    ``policy``: the shipped policy already loaded (a simulation of many users loads it once).
    """
    from optin import Telemetry

    kwargs.setdefault("app_version", __version__)
    return Telemetry(policy or str(POLICY), environ=env.environ, **kwargs)


def dispatch(args: argparse.Namespace, telemetry: Telemetry, env: Env) -> int:
    """Run one command; a :class:`CfDevError` also records the ``error`` lifecycle event."""
    vm = Vm(env)
    try:
        if args.command == "start":
            return start(args, telemetry, env, vm)
        if args.command == "stop":
            was_running = vm.running()
            env.work(20.0 if was_running else 1.0)
            vm.set_running(False)
            telemetry.event("stop", was_running=was_running)
            print("PCF Dev is stopped.")
            return 0
        telemetry.event("uninstall")
        env.work(5.0)
        shutil.rmtree(vm.dir, ignore_errors=True)
        print("PCF Dev is uninstalled.")
        return 0
    except CfDevError as exc:
        telemetry.event("error", step=args.command, category=type(exc).__name__)
        raise


def start(args: argparse.Namespace, telemetry: Telemetry, env: Env, vm: Vm) -> int:
    telemetry.event("begin_start", custom_iso=args.file is not None)
    began = env.clock()
    try:
        if vm.running():
            raise AlreadyRunning("PCF Dev is already running")
        if args.memory is not None and args.memory < MIN_MEMORY_MB:
            raise NotEnoughMemory(f"PCF Dev needs at least {MIN_MEMORY_MB} MB, not {args.memory}")
        if args.file is not None:
            path = os.path.join(env.cwd, os.path.expanduser(args.file))
            try:
                with open(path, "rb") as f:
                    head = f.read(len(ISO_MAGIC))
            except OSError:
                raise IsoNotFound(f"cannot read the ISO file {args.file}") from None
            if head != ISO_MAGIC:
                raise IsoCorrupt(f"{args.file} is not a PCF Dev ISO")
        env.work(150.0 if args.file else 90.0)
    except CfDevError:
        telemetry.event("start_finish", ok=False, seconds=env.clock() - began)
        raise
    vm.set_running(True)
    telemetry.event("start_finish", ok=True, seconds=env.clock() - began)
    print("PCF Dev is now running.")
    return 0


def run_cli(argv: Sequence[str], env: Env, telemetry: Telemetry | None = None) -> int:
    """Parse ``argv``, run the command, record it; the exit status (``scripts/demo.py`` too)."""
    from optin.integrations.argparse import instrument, run

    argv = list(argv)
    if len(argv) == 2 and argv[0] == "telemetry" and argv[1] in PCF_SPELLING:
        argv = ["telemetry", PCF_SPELLING[argv[1]]]  # PCF Dev's own spelling
    command = next((a for a in argv if not a.startswith("-")), None)
    if telemetry is None:
        telemetry = make_telemetry(env)
        if command not in ("start", "telemetry") and telemetry.decision().state == "ask":
            # PCF Dev puts the question on the first start only; until then, stay off.
            telemetry = make_telemetry(env, interactive=False)
    parser, subs = build_parser()
    instrument(parser, telemetry)
    subs.choices[
        "telemetry"
    ].epilog = "PCF Dev's spelling works too: 'demo-cfdev telemetry --on' and '--off'."
    try:
        code = run(parser, lambda args: dispatch(args, telemetry, env), telemetry, argv)
    except CfDevError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    if command == "uninstall" and telemetry.state == "on":
        # The tool is going away: push what is pending now, or it would never leave.
        telemetry.upload_now(timeout=UNINSTALL_UPLOAD_TIMEOUT)
    return int(code or 0)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``demo-cfdev`` console script."""
    sys.exit(run_cli(sys.argv[1:] if argv is None else argv, Env()))
