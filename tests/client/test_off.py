"""Off means nothing: no file, no directory, no process, no socket — in every way it can be off.

Each case runs the real test tool as a process with a fresh HOME, a collector on loopback as
its endpoint and a spool that would be due; afterwards HOME holds nothing new and the collector
saw no connection at all.
"""

from __future__ import annotations

import time

import pytest
from tests.client.conftest import PREFIX, Env, tool
from tests.client.helpers.collector import Collector

CASES = {
    "never asked, no terminal": {},
    "DO_NOT_TRACK beats on": {"DO_NOT_TRACK": "1", f"{PREFIX}_TELEMETRY": "on"},
    "DISABLE beats on": {f"{PREFIX}_DISABLE_TELEMETRY": "true", f"{PREFIX}_TELEMETRY": "on"},
    "APP_TELEMETRY=off": {f"{PREFIX}_TELEMETRY": "off"},
    "APP_TELEMETRY unrecognised": {f"{PREFIX}_TELEMETRY": "yes-please"},
    "CI without explicit on": {"CI": "true"},
    "GitHub Actions": {"GITHUB_ACTIONS": "true"},
    "host override": {"TOOL_OVERRIDE": "1", f"{PREFIX}_TELEMETRY": "on"},
    "bad endpoint override": {
        f"{PREFIX}_TELEMETRY": "on",
        f"{PREFIX}_TELEMETRY_ENDPOINT": "ftp://example.org",
    },
}


@pytest.mark.parametrize("extra", CASES.values(), ids=CASES.keys())
def test_off_leaves_nothing_and_opens_no_socket(
    env: Env, collector: Collector, extra: dict[str, str]
) -> None:
    env[f"{PREFIX}_TELEMETRY_ENDPOINT"] = collector.url
    env.update(extra)
    done = tool(env, "run", "2")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    done = tool(env, "exit", "3")
    assert done.returncode == 3
    time.sleep(1.0)  # time for a (wrongly) spawned uploader (starts after 0.5 s) to connect
    assert env.files() == []
    assert collector.connections == 0


def test_project_file_says_off(env: Env, collector: Collector) -> None:
    env[f"{PREFIX}_TELEMETRY_ENDPOINT"] = collector.url
    tool(env, "telemetry", "on")
    before = env.files()
    (env.cwd / ".optin.toml").write_text('[sample-cli]\ntelemetry = "off"\n')
    sub = env.cwd / "deep" / "er"
    sub.mkdir(parents=True)
    env.cwd = sub  # the file is found in a parent directory
    assert tool(env, "run", "2").returncode == 0
    time.sleep(1.0)
    assert env.files() == before
    assert collector.connections == 0


def test_stored_on_is_off_in_ci(env: Env, collector: Collector) -> None:
    env[f"{PREFIX}_TELEMETRY_ENDPOINT"] = collector.url
    tool(env, "telemetry", "on")
    before = env.files()
    env["CI"] = "1"
    assert tool(env, "run", "2").returncode == 0
    time.sleep(1.0)
    assert env.files() == before
    assert collector.connections == 0
    env[f"{PREFIX}_TELEMETRY"] = "on"  # explicitly on for this environment: collects
    env["TOOL_UPLOAD"] = "inline"
    assert tool(env, "run", "1").returncode == 0
    assert len(collector.events()) == 3  # a day ping, a month ping, the command


def test_corrupt_consent_file_is_off_and_asks_nobody(env: Env, collector: Collector) -> None:
    env[f"{PREFIX}_TELEMETRY_ENDPOINT"] = collector.url
    env.config.mkdir(parents=True)
    (env.config / "consent.json").write_text('{"state": "on", "policy_vers')
    done = tool(env, "run", "1")
    assert done.returncode == 0 and done.stderr == ""
    assert env.files() == [
        ".config",
        ".config/optin",
        ".config/optin/sample-cli",
        ".config/optin/sample-cli/consent.json",
    ]
    assert collector.connections == 0
    status = tool(env, "telemetry", "status")
    assert "telemetry:       off" in status.stdout
    assert "not a valid consent file" in status.stdout


def test_turning_off_wipes_the_spool_and_sends_nothing(env: Env, collector: Collector) -> None:
    env[f"{PREFIX}_TELEMETRY_ENDPOINT"] = collector.url
    env["TOOL_UPLOAD"] = "manual"
    tool(env, "telemetry", "on")
    assert tool(env, "run", "3").returncode == 0
    assert len(env.spooled()) == 5
    done = tool(env, "telemetry", "off")
    assert done.returncode == 0, done.stderr
    assert "deleted" in done.stdout
    assert not env.state.exists()
    assert tool(env, "telemetry", "upload").returncode == 1
    assert collector.connections == 0
