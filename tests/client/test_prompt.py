"""The one-time question, through a real pseudo-terminal: yes, no, empty, EOF, Ctrl-C.

The tool runs as a child whose stdin, stdout and stderr are a pty (so it is interactive and
``/dev/tty`` is that pty); the test reads the question and types the answer.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import sys
import time
from pathlib import Path

import pytest
from tests.client.conftest import POLICY, TOOL, Env

QUESTION = b"Share anonymous usage statistics? [y/N]"


def _read_until(fd: int, needle: bytes, timeout: float = 20.0) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    return out


def run_in_pty(env: Env, answer: bytes | None, policy: Path = POLICY) -> tuple[int, bytes]:
    """Run ``tool run 1`` on a pty; type ``answer`` if asked. Returns (exit status, output)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal
        os.chdir(env.cwd)
        os.execve(sys.executable, [sys.executable, str(TOOL), str(policy), "run", "1"], env)
    try:
        out = _read_until(fd, QUESTION, timeout=20.0 if answer is not None else 3.0)
        if QUESTION in out and answer is not None:
            os.write(fd, answer)
        out += _read_until(fd, b"\x00never", timeout=20.0)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out


def stored(env: Env) -> dict[str, object] | None:
    path = env.config / "consent.json"
    return json.loads(path.read_text()) if path.exists() else None


@pytest.fixture
def tty_env(env: Env) -> Env:
    env["SAMPLE_CLI_TELEMETRY_ENDPOINT"] = "http://127.0.0.1:9"
    env["TOOL_UPLOAD"] = "manual"
    env["TERM"] = "dumb"
    return env


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        (b"y\n", "on"),
        (b"YES\n", "on"),
        (b"n\n", "off"),
        (b"\n", "off"),  # the default is no
        (b"maybe\n", "off"),
        (b"\x04", "off"),  # EOF (Ctrl-D)
        (b"\x03", "off"),  # Ctrl-C
    ],
    ids=["y", "YES", "n", "empty", "other", "EOF", "Ctrl-C"],
)
def test_answer_is_recorded_and_the_command_still_runs(
    tty_env: Env, answer: bytes, state: str
) -> None:
    code, out = run_in_pty(tty_env, answer)
    assert QUESTION in out
    assert code == 0, out
    choice = stored(tty_env)
    assert choice is not None and choice["state"] == state and choice["policy_version"] == 2
    spooled = len(tty_env.spooled())
    assert spooled == (3 if state == "on" else 0)  # the command after a yes is recorded
    if state == "off":
        assert not tty_env.state.exists()


def test_asked_once(tty_env: Env) -> None:
    for first in (b"n\n", b"y\n"):
        shutil.rmtree(tty_env.home / ".config", ignore_errors=True)
        run_in_pty(tty_env, first)
        code, out = run_in_pty(tty_env, None)
        assert code == 0
        assert QUESTION not in out


def test_never_asked_in_ci_or_with_an_override(tty_env: Env) -> None:
    for var, value in (("CI", "true"), ("DO_NOT_TRACK", "1"), ("SAMPLE_CLI_TELEMETRY", "off")):
        env = Env(tty_env)
        env.home, env.cwd = tty_env.home, tty_env.cwd
        env[var] = value
        code, out = run_in_pty(env, None)
        assert code == 0
        assert QUESTION not in out
    assert tty_env.files() == []


def test_raised_policy_version_asks_again_only_after_a_yes(tty_env: Env, tmp_path: Path) -> None:
    raised = tmp_path / "policy-v3.toml"
    raised.write_text(POLICY.read_text().replace("version = 2", "version = 3"))
    # A previous yes (to version 2) is asked again under version 3 ...
    run_in_pty(tty_env, b"y\n")
    code, out = run_in_pty(tty_env, b"y\n", policy=raised)
    assert QUESTION in out and code == 0
    assert stored(tty_env) == {**(stored(tty_env) or {}), "state": "on", "policy_version": 3}
    # ... and a previous no is never asked again.
    shutil.rmtree(tty_env.home / ".config")
    run_in_pty(tty_env, b"n\n")
    code, out = run_in_pty(tty_env, None, policy=raised)
    assert QUESTION not in out and code == 0
    assert (stored(tty_env) or {})["state"] == "off"
