"""A tiny tool instrumented with the plain API, run as a real process by the tests.

    tool.py POLICY telemetry ARGS...        the tool's `telemetry` command
    tool.py POLICY run N [WORD...]          record N `canister.install` commands
    tool.py POLICY fail MESSAGE             a command that raises ConnectionError(MESSAGE)
    tool.py POLICY exit CODE                a command that calls sys.exit(CODE)

Environment: TOOL_UPLOAD (background|inline|manual, default background), TOOL_OVERRIDE=off
(the host's own switch says off).
"""

from __future__ import annotations

import os
import sys

from optin import Telemetry


def main(argv: list[str]) -> int:
    policy, action, rest = argv[0], argv[1], argv[2:]
    override = (
        (lambda: ("off", "tool config says off")) if os.environ.get("TOOL_OVERRIDE") else None
    )
    t = Telemetry(
        policy,
        "1.0.0",
        upload=os.environ.get("TOOL_UPLOAD", "background"),
        override=override,
        tool="tool",
    )
    if action == "telemetry":
        return t.cli(rest)
    if action == "run":
        for _ in range(int(rest[0])):
            with t.command("canister.install") as cmd:
                cmd.option("mode", rest[1] if len(rest) > 1 else "install")
                for word in rest[2:]:
                    cmd.option(word, word)
                cmd.dimension("network", rest[-1] if rest else "ic")
        return 0
    if action == "fail":
        with t.command("deploy") as cmd:
            cmd.positionals(len(rest))
            raise ConnectionError(rest[0])
    if action == "exit":
        with t.command("start"):
            sys.exit(int(rest[0]))
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
