"""`<tool> telemetry on|off|local|status|show|upload|report` as a user runs them."""

from __future__ import annotations

import json
import os

import pytest
from tests.client.conftest import Env, tool
from tests.client.helpers.collector import Collector


@pytest.fixture
def manual(env: Env, collector: Collector) -> Env:
    env["TOOL_UPLOAD"] = "manual"
    env["SAMPLE_CLI_TELEMETRY_ENDPOINT"] = collector.url
    return env


def test_status_when_never_asked_creates_nothing(manual: Env) -> None:
    done = tool(manual, "telemetry", "status")
    assert done.returncode == 0
    assert "telemetry:       off" in done.stdout
    assert "no choice recorded and not at a terminal" in done.stdout
    assert "pending events:  0" in done.stdout and "last upload:     never" in done.stdout
    assert manual.files() == []


def test_on_status_show_upload(manual: Env, collector: Collector) -> None:
    done = tool(manual, "telemetry", "on")
    assert done.returncode == 0 and "Telemetry is on" in done.stdout
    stored = json.loads((manual.config / "consent.json").read_text())
    assert stored["state"] == "on" and stored["policy_version"] == 2
    tool(manual, "run", "2")
    status = tool(manual, "telemetry", "status").stdout
    assert "telemetry:       on" in status
    assert "decided by:      stored choice" in status
    assert f"endpoint:        {collector.url}" in status
    assert "policy version:  2 (agreed: 2 (on, " in status
    assert "pending events:  4" in status
    shown = tool(manual, "telemetry", "show")
    (batch,) = [json.loads(chunk) for chunk in [shown.stdout]]
    assert batch["app"] == "sample-cli" and len(batch["events"]) == 4
    up = tool(manual, "telemetry", "upload")
    assert up.returncode == 0 and "uploaded 4 event(s)" in up.stdout
    assert collector.events() == batch["events"]  # exactly as shown
    status = tool(manual, "telemetry", "status").stdout
    assert "pending events:  0" in status and "uploaded 4 event(s)" in status
    assert tool(manual, "telemetry", "show").stdout == "No pending events.\n"


def test_an_override_is_explained(manual: Env) -> None:
    tool(manual, "telemetry", "on")
    manual["DO_NOT_TRACK"] = "1"
    status = tool(manual, "telemetry", "status").stdout
    assert "telemetry:       off" in status and "decided by:      DO_NOT_TRACK" in status
    done = tool(manual, "telemetry", "on")
    assert "Note: telemetry is still off here: DO_NOT_TRACK is set." in done.stdout


def test_local_keeps_for_the_report_and_never_uploads(manual: Env, collector: Collector) -> None:
    tool(manual, "telemetry", "on")
    tool(manual, "run", "1")
    assert tool(manual, "telemetry", "local").returncode == 0  # pending events are not sent now
    tool(manual, "run", "2")
    tool(manual, "exit", "3")
    up = tool(manual, "telemetry", "upload")
    assert up.returncode == 1 and "telemetry is local: nothing sent" in up.stderr
    report = tool(manual, "telemetry", "report").stdout
    assert "canister.install" in report and "start" in report
    line = next(x for x in report.splitlines() if x.startswith("canister.install"))
    assert line.split()[1:3] == ["3", "0"]
    assert collector.connections == 0
    assert "and 6 kept for your report only" in tool(manual, "telemetry", "status").stdout


def test_usage_errors(manual: Env) -> None:
    assert tool(manual, "telemetry").returncode == 2
    bad = tool(manual, "telemetry", "sideways")
    assert bad.returncode == 2 and "unknown command" in bad.stderr
    helped = tool(manual, "telemetry", "--help")
    assert helped.returncode == 0 and "upload" in helped.stdout


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_home_never_breaks_the_tool(manual: Env) -> None:
    manual["SAMPLE_CLI_TELEMETRY"] = "on"
    manual["SAMPLE_CLI_TELEMETRY_DEBUG"] = "1"
    manual.home.chmod(0o500)
    try:
        done = tool(manual, "run", "1")
    finally:
        manual.home.chmod(0o700)
    assert done.returncode == 0
    assert "telemetry off for this run: cannot write to" in done.stderr


def test_unwritable_state_never_breaks_the_tool(manual: Env) -> None:
    # XDG_STATE_HOME is a file: every write fails (like a full or read-only disk would).
    blocker = manual.home / "blocker"
    blocker.write_text("")
    manual["XDG_STATE_HOME"] = str(blocker)
    manual["SAMPLE_CLI_TELEMETRY"] = "on"
    manual["SAMPLE_CLI_TELEMETRY_DEBUG"] = "1"
    done = tool(manual, "run", "3")
    assert done.returncode == 0
    assert "telemetry off for this run: cannot write to" in done.stderr
    assert done.stderr.count("telemetry off for this run") == 1
    failed = tool(manual, "exit", "4")
    assert failed.returncode == 4
