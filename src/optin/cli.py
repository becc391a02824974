"""``optin``: the maintainer's command line — policy, notice, serve, report, purge, publish.

A thin argparse layer: every command calls one library function. argparse (not click) because
``optin policy`` and ``optin notice`` must work where only the stdlib client is installed; the
collector's commands import their dependencies only when run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from optin import __version__
from optin.policy import PolicyError, load

DEFAULT_DB = "sqlite:///optin.db"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optin",
        description="Privacy-first, opt-in usage telemetry for command-line tools.",
        epilog="Run 'optin COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"optin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    pol = sub.add_parser(
        "policy",
        help="create, check and describe collection policies",
        description="Create, check and describe collection policies (TOML).",
    )
    psub = pol.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    init = psub.add_parser(
        "init",
        help="draft a policy from a click group, typer app or argparse parser",
        description="Draft a policy from the CLI's own command tree: every command path and every "
        "option (captured as present; choice options proposed with their values). Review it "
        "before you ship it.",
    )
    init.add_argument("target", metavar="MODULE:OBJECT", help="e.g. mytool.cli:main")
    init.add_argument("--app", help="app id (default: derived from the program name)")
    init.add_argument(
        "--endpoint",
        default="https://telemetry.example.org",
        help="collector URL written into the draft",
    )
    init.add_argument("-o", "--output", help="write here instead of standard output")
    init.add_argument("--force", action="store_true", help="overwrite an existing output file")
    check = psub.add_parser(
        "check",
        help="validate a policy file",
        description="Validate a policy file; print every problem, exit 1.",
    )
    check.add_argument("file", nargs="+")
    schema = psub.add_parser(
        "schema",
        help="print the JSON Schema of the events a policy allows",
        description="Print the JSON Schema (draft 2020-12) of one event the policy allows.",
    )
    schema.add_argument("file")

    notice = sub.add_parser(
        "notice",
        help="render what is collected and why (Markdown)",
        description="Render the public notice of a policy: every field collected, why, and what "
        "is never collected.",
    )
    notice.add_argument("file")

    serve = sub.add_parser(
        "serve",
        help="run the collector",
        description="Run the collector: POST /v1/events, health, metrics, policies, dashboard.",
    )
    serve.add_argument(
        "--db",
        default=DEFAULT_DB,
        help=f"sqlite:///PATH or postgresql://... (default {DEFAULT_DB})",
    )
    serve.add_argument(
        "--policies", required=True, help="a policy file, or a directory of *.toml policies"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.add_argument(
        "--trust-proxy",
        action="store_true",
        help="use X-Forwarded-For for rate limiting (only behind your own proxy)",
    )
    serve.add_argument(
        "--rate-limit",
        type=float,
        default=600.0,
        metavar="N",
        help="requests per minute per source (a burst of N is allowed; 0 turns it off)",
    )
    serve.add_argument(
        "--dashboard-token",
        help="token for the dashboard (required when not on loopback; "
        "or set OPTIN_DASHBOARD_TOKEN)",
    )

    report = sub.add_parser(
        "report",
        help="print usage figures in the terminal",
        description="DAU / MAU, commands, failures, durations, platforms, "
        "errors and unused options, from the daily rollups.",
    )
    report.add_argument("--db", default=DEFAULT_DB)
    report.add_argument("--app", help="one app (default: every app in the database)")
    report.add_argument("--days", type=int, default=30, help="window in days (default 30)")
    report.add_argument("--policies", help="policy file or directory (to list unused options)")
    report.add_argument("--json", action="store_true", help="print JSON instead of text")

    purge = sub.add_parser(
        "purge",
        help="delete raw events past retention",
        description="Delete raw events older than each app's retention. Daily rollups are kept.",
    )
    purge.add_argument("--db", default=DEFAULT_DB)
    purge.add_argument("--policies", required=True)

    publish = sub.add_parser(
        "publish",
        help="write the open-data site",
        description="Write a static site with charts and CSV/JSON tables, small counts suppressed.",
    )
    publish.add_argument("--db", default=DEFAULT_DB)
    publish.add_argument("--policies", required=True)
    publish.add_argument("--out", required=True, help="output directory")
    publish.add_argument(
        "--min-count", type=int, default=10, help="suppress any count below this (default 10)"
    )
    publish.add_argument(
        "--epsilon", type=float, help="add differential-privacy noise with this epsilon"
    )
    return parser


def _policy_cmd(args: argparse.Namespace) -> int:
    if args.policy_command == "check":
        failed = 0
        for path in args.file:
            try:
                pol = load(path)
            except PolicyError as exc:
                print(exc, file=sys.stderr)
                failed += 1
            else:
                print(
                    f"{path}: ok ({pol.app}, policy version {pol.version}, "
                    f"{len(pol.commands)} commands)"
                )
        return 1 if failed else 0
    if args.policy_command == "schema":
        from optin.events import json_schema

        print(json.dumps(json_schema(load(args.file)), indent=2))
        return 0
    from optin.introspect import IntrospectError, draft_policy

    try:
        text = draft_policy(args.target, app=args.app, endpoint=args.endpoint)
    except IntrospectError as exc:
        print(f"optin policy init: {exc}", file=sys.stderr)
        return 1
    if not args.output:
        sys.stdout.write(text)
        return 0
    from pathlib import Path

    out = Path(args.output)
    if out.exists() and not args.force:
        print(f"optin: {out} exists; use --force to overwrite", file=sys.stderr)
        return 1
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}: review every purpose line before you ship it", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "policy":
            return _policy_cmd(args)
        if args.command == "notice":
            from optin.notice import render

            sys.stdout.write(render(load(args.file)))
            return 0
        if args.command == "serve":
            from optin.server.run import serve

            return serve(args)
        if args.command == "report":
            from optin.analytics.report import main as report_main

            return report_main(args)
        if args.command == "purge":
            from optin.storage import purge_main

            return purge_main(args)
        if args.command == "publish":
            from optin.publish import publish_main

            return publish_main(args)
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        if (exc.name or "optin").split(".")[0] == "optin":
            raise  # our own module missing is a bug, not a missing extra: show it
        print(
            f"optin {args.command}: {exc.name} is not installed; "
            "install the collector with: pip install 'optin[server]'",
            file=sys.stderr,
        )
        return 1
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
