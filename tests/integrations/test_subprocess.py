"""The fixture tools as real processes, with the real client: fresh HOME, telemetry forced on with
``FIXTURE_CLI_TELEMETRY=on``, the spool read back with ``<tool> telemetry show``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.integrations.helpers import POLICY, TOOLS

from optin.events import validate_event

SCRIPTS = {"click": "clicktool.py", "typer": "typertool.py", "argparse": "argtool.py"}
INTERRUPT_CODE = {"click": 1, "typer": 130, "argparse": -signal.SIGINT}


def tool(framework: str, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "FIXTURE_UPLOAD": "manual",  # the fixture's Telemetry(upload=...): no background upload
        **env,
    }
    return subprocess.run(
        [sys.executable, str(TOOLS / SCRIPTS[framework]), *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


def pending(framework: str, home: Path) -> tuple[str, list[dict[str, Any]]]:
    """The ``command`` events ``telemetry show`` prints (one JSON batch after another)."""
    done = tool(framework, home, "telemetry", "show", FIXTURE_CLI_TELEMETRY="on")
    assert done.returncode == 0, done.stderr
    text, decoder, events = done.stdout, json.JSONDecoder(), []
    index = 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        batch, index = decoder.raw_decode(text, index)
        assert batch["app"] == POLICY.app
        events += batch["events"]
    return done.stdout, [e for e in events if e["kind"] == "command"]


def summary(event: dict[str, Any]) -> tuple[Any, ...]:
    return (
        event["command"],
        tuple(sorted(event["options"])),
        tuple(sorted(event.get("values", {}).items())),
        event.get("positionals"),
        event["dimensions"].get("network"),
        event["outcome"],
        event["exit_code"],
        event.get("error"),
    )


@pytest.mark.parametrize("framework", sorted(SCRIPTS))
def test_real_processes_record_what_was_typed_and_nothing_else(
    framework: str, tmp_path: Path
) -> None:
    on = {"FIXTURE_CLI_TELEMETRY": "on"}
    runs = [
        (["canister", "--network", "ic", "install", "a", "b", "--mode", "auto", "-y"], 0),
        (["deploy", "x", "--env", "prod", "--with-cycles", "9"], 0),
        (["deploy", "--env", "alice@example.org"], 0),
        (["crash", "--how", "exception"], 1),
        (["crash", "--how", "exit", "--code", "4"], 4),
        (["crash", "--how", "interrupt"], INTERRUPT_CODE[framework]),
        (["canister", "install", "--wasm", "/home/alice/secret.wasm", "--bogus"], 2),
        (["--help"], 0),
        (["telemetry", "status"], 0),
    ]
    for args, code in runs:
        done = tool(framework, tmp_path, *args, **on)
        assert done.returncode == code, (args, done.stderr)
    assert "secret-message" in tool(framework, tmp_path, "crash", "--how", "exception").stderr

    shown, events = pending(framework, tmp_path)
    for event in events:
        validate_event(POLICY, event)  # what the collector will accept
    interrupted = 130 if framework == "argparse" else INTERRUPT_CODE[framework]
    assert sorted(map(summary, events), key=repr) == sorted(
        [
            (
                "canister.install",
                ("mode", "network", "yes"),
                (("mode", "other"), ("network", "ic")),
                2,
                None,
                "success",
                0,
                None,
            ),
            (
                "deploy",
                ("env", "with_cycles"),
                (("env", "prod"),),
                1,
                "ic",
                "success",
                0,
                None,
            ),
            ("deploy", ("env",), (("env", "other"),), 0, "ic", "success", 0, None),
            ("crash", ("how",), (("how", "exception"),), None, None, "failure", 1, "RuntimeError"),
            (
                "crash",
                ("code", "how"),
                (("how", "exit"),),
                None,
                None,
                "failure",
                4,
                None,
            ),
            (
                "crash",
                ("how",),
                (("how", "interrupt"),),
                None,
                None,
                "interrupted",
                interrupted,
                None,
            ),
            ("canister.install", (), (), None, None, "usage_error", 2, None),
        ],
        key=repr,
    )
    # privacy canaries: arguments, free-text values and exception messages never reach the spool
    for canary in ("alice", "secret", "/home", "example.org", str(tmp_path)):
        assert canary not in shown


@pytest.mark.parametrize("framework", sorted(SCRIPTS))
def test_off_writes_nothing(framework: str, tmp_path: Path) -> None:
    for env in ({"FIXTURE_CLI_TELEMETRY": "off"}, {}, {"DO_NOT_TRACK": "1"}):
        done = tool(framework, tmp_path, "deploy", "a", **env)
        assert done.returncode == 0, done.stderr
        assert "telemetry" not in done.stderr.lower()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("framework", sorted(SCRIPTS))
def test_off_never_parses_the_policy(framework: str, tmp_path: Path) -> None:
    """Deciding off needs only the app id: the TOML is not parsed (tomllib costs milliseconds)."""
    code = (
        "import runpy, sys\n"
        "sys.argv = sys.argv[1:]\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('PARSED' if 'tomllib' in sys.modules else 'NOT-PARSED', file=sys.stderr)\n"
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    for extra in ({}, {"DO_NOT_TRACK": "1"}):
        done = subprocess.run(
            [sys.executable, "-c", code, str(TOOLS / SCRIPTS[framework]), "deploy", "a"],
            capture_output=True,
            text=True,
            env={**env, **extra},
            timeout=60,
        )
        assert done.stderr.strip().endswith("NOT-PARSED"), done.stderr


def in_terminal(framework: str, home: Path, args: list[str], answer: str = "") -> tuple[int, str]:
    """Run the tool with a pseudo-terminal as its controlling terminal; answer any question."""
    import pty
    import time

    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    environ["FIXTURE_UPLOAD"] = "manual"
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its stdin, stdout, stderr and /dev/tty
        os.execve(sys.executable, [sys.executable, str(TOOLS / SCRIPTS[framework]), *args], environ)
    output, answered, deadline = b"", False, time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if not answered and b"[y/N]" in output:
            os.write(fd, answer.encode() + b"\n")
            answered = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


@pytest.mark.parametrize("framework", sorted(SCRIPTS))
def test_consent_is_asked_on_the_first_real_command_only(framework: str, tmp_path: Path) -> None:
    for args in (["--help"], ["canister", "install", "--bogus"], ["telemetry", "status"]):
        _, output = in_terminal(framework, tmp_path, args)
        assert "[y/N]" not in output, args
    code, output = in_terminal(framework, tmp_path, ["deploy", "a"], answer="y")
    assert code == 0 and "[y/N]" in output and "deploy 1 to dev" in output
    code, output = in_terminal(framework, tmp_path, ["deploy", "b", "c"])
    assert code == 0 and "[y/N]" not in output  # asked once
    done = tool(framework, tmp_path, "telemetry", "show")
    assert done.returncode == 0
    assert done.stdout.count('"command": "deploy"') == 2
