"""Privacy canaries: personal strings given to the tool never reach the spool, the debug output
or the collector — as arguments, option values, environment, working directory or exception
messages."""

from __future__ import annotations

from pathlib import Path

from tests.client.conftest import Env, tool
from tests.client.helpers.collector import Collector

EMAIL = "alice.canary@example.com"
HOME_PATH = "/home/alice-canary/projects/secret"
TOKEN = "ghp_CANARYTOKEN0123456789abcdef"
HOST = "build-canary-host.internal.example"
CANARIES = (EMAIL, HOME_PATH, TOKEN, HOST, "canary", "CANARY")


def test_canaries_never_leave_the_tool(env: Env, collector: Collector, tmp_path: Path) -> None:
    env.home = tmp_path / "alice-canary"  # even the home directory's name
    env.home.mkdir()
    env.cwd = env.home / "projects" / "secret-canary"
    env.cwd.mkdir(parents=True)
    env.update(
        HOME=str(env.home),
        SAMPLE_CLI_TELEMETRY="on",
        SAMPLE_CLI_TELEMETRY_DEBUG="1",
        SAMPLE_CLI_TELEMETRY_ENDPOINT=collector.url,
        TOOL_UPLOAD="manual",
        GITHUB_TOKEN=TOKEN,
        HOSTNAME=HOST,
        USER=EMAIL,
        GIT_AUTHOR_EMAIL=EMAIL,
    )
    debug = []
    done = tool(env, "run", "2", EMAIL, HOME_PATH, TOKEN, HOST)
    assert done.returncode == 0, done.stderr
    debug.append(done.stderr)
    done = tool(env, "fail", f"cannot reach {HOST} as {EMAIL} with {TOKEN} in {HOME_PATH}")
    assert done.returncode == 1
    assert f"ConnectionError: cannot reach {HOST}" in done.stderr  # the tool's error, unchanged
    debug += [line for line in done.stderr.splitlines() if line.startswith("tool telemetry:")]
    assert any('"error":"ConnectionError"' in d.replace(" ", "") for d in debug)
    spooled = b"".join(p.read_bytes() for p in env.spooled())
    assert spooled.count(b'"kind":"command"') == 3
    shown = tool(env, "telemetry", "show").stdout
    assert tool(env, "telemetry", "upload").returncode == 0
    bodies = b"".join(r["raw"] for r in collector.requests)
    assert bodies.count(b'"kind":"command"') == 3
    for canary in CANARIES:
        for where, text in (
            ("spool", spooled.decode()),
            ("debug", "\n".join(debug)),
            ("show", shown),
            ("request", bodies.decode()),
        ):
            assert canary not in text, f"{canary!r} leaked into the {where}"
