"""A small argparse tool with nested sub-parsers, instrumented with optin (a test fixture)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from optin.integrations.argparse import run

POLICY = Path(__file__).with_name("telemetry.toml")
HOWS = ["ok", "exception", "custom", "exit", "interrupt", "return"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fixture", description="The fixture tool.")
    parser.add_argument("--verbose", "-v", action="store_true")
    parser.add_argument("--version", action="version", version="fixture 1.0.0")
    sub = parser.add_subparsers(dest="command", required=True)
    canister = sub.add_parser("canister", aliases=["can"], help="canister commands")
    canister.add_argument("--network", choices=["ic", "local", "staging"], default="local")
    csub = canister.add_subparsers(dest="canister_command", required=True)
    install = csub.add_parser("install", help="install code")
    install.add_argument("names", nargs="*")
    install.add_argument(
        "--mode", choices=["install", "reinstall", "upgrade", "auto"], default="install"
    )
    install.add_argument("--yes", "-y", action="store_true")
    install.add_argument("--wasm")
    csub.add_parser("list", help="list canisters")
    deploy = sub.add_parser("deploy", help="deploy canisters")
    deploy.add_argument("names", nargs="*")
    deploy.add_argument("--env", default="dev")
    deploy.add_argument("--with-cycles", type=int, default=0)
    crash = sub.add_parser("crash", help="fail in the way asked")
    crash.add_argument("--how", choices=HOWS, default="ok")
    crash.add_argument("--code", type=int, default=3)
    return parser


def make_main(telemetry: Any) -> Any:
    def main(args: argparse.Namespace) -> int | None:
        if args.command == "deploy":
            telemetry.dimension("network", "ic")
            print(f"deploy {len(args.names)} to {args.env}")
        elif args.command == "crash":
            if args.how == "exception":
                raise RuntimeError("secret-message /home/alice/token")
            if args.how == "custom":
                raise ValueError("another secret")
            if args.how == "exit":
                sys.exit(args.code)
            if args.how == "interrupt":
                raise KeyboardInterrupt
            if args.how == "return":
                return args.code
        return 0

    return main


def main() -> None:
    from optin import Telemetry

    telemetry = Telemetry(
        POLICY, app_version="1.0.0", upload=os.environ.get("FIXTURE_UPLOAD", "background")
    )
    sys.exit(run(build_parser(), make_main(telemetry), telemetry))


if __name__ == "__main__":
    main()
