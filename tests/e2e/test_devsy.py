"""demo-devsy end to end: what Devsy's telemetry page (seed 003) asks for, on a real collector.

One scenario per module (the installed ``demo-devsy``, a pseudo-terminal for the prompt, a real
``optin serve``); each test checks one documented behaviour on what the collector stored.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from tests.e2e.harness import PROMPT, ROOT, User, assert_no_canary, pipeline, places, wait_until

APP = "demo-devsy"
POLICY = ROOT / "examples" / "demo-devsy" / "src" / "demo_devsy" / "telemetry.toml"
VERSION = "0.5.29"
SLOW_SECONDS = "10.3"

GIT = "https://github.com/canary-org/canary-repo.git"
IMAGE = "ghcr.io/canary-org/canary-image:1.2"
LOCAL_DIR = "canary-workspace-dir"
MISSING_DIR = "canary-missing-dir"
CONTAINER = "canary-container-5d1e"
UNKNOWN = "canary-odd-source"
PROVIDER = "canary-provider-x"
NO_PROVIDER = "canary-no-such-provider"
CANARIES = ["canary-org", LOCAL_DIR, MISSING_DIR, CONTAINER, UNKNOWN, PROVIDER, NO_PROVIDER]


@pytest.fixture(scope="module")
def devsy(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("devsy")
    with pipeline(tmp, POLICY) as (collector, relay):
        carol = User(APP, tmp / "carol", relay.url)
        (carol.project / LOCAL_DIR).mkdir()
        version = carol.run_tty("version")
        helped = carol.run_tty("--help")
        files_before = carol.files()
        added = carol.run_tty("provider", "add", "docker", answer="y")
        slow = carol.spawn("up", "git:" + GIT, DEMO_DEVSY_SIMULATE_SECONDS=SLOW_SECONDS)
        codes = [
            carol.run("provider", "add", PROVIDER).code,
            carol.run("up", GIT, "--ide", "vscode").code,
            carol.run("up", IMAGE).code,
            carol.run("up", "./" + LOCAL_DIR, "--ide", "goland").code,
            carol.run("up", "local:" + MISSING_DIR).code,
            carol.run("up", "container:" + CONTAINER).code,
            carol.run("up", UNKNOWN).code,
            carol.run("provider", "delete", NO_PROVIDER).code,
            carol.run("provider", "list", DEMO_DEVSY_UI="true").code,
            carol.run("context", "set-options", "-o", "IDE=pycharm").code,
            carol.run("up", "image:" + IMAGE).code,
        ]
        # The day's one background upload (spawned after the first recorded command) is over
        # before the last commands, so some of their events are pending when the spool is read.
        wait_until(lambda: not carol.uploading(), what="the background upload")
        codes += [
            # Opted out by environment: this one is not recorded.
            carol.run("provider", "add", "kubernetes", DEMO_DEVSY_DISABLE_TELEMETRY="true").code,
            # Opted out for the default context: the command that sets it is still recorded,
            # the next one in that context is not; another context still records.
            carol.run("context", "set-options", "-o", "TELEMETRY=false").code,
            carol.run("provider", "delete", "kubernetes").code,
            carol.run("provider", "list", DEMO_DEVSY_CONTEXT="work").code,
            carol.run("context", "set-options", "-o", "TELEMETRY=true").code,
        ]
        assert codes == [0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], codes
        slow_out, slow_err = slow.communicate(timeout=60)
        assert slow.returncode == 0, slow_err
        shown = carol.run("telemetry", "show")
        spool = carol.spool_bytes()
        uploaded = carol.upload()
        expected = 15 + 2  # the commands recorded (see test_event_per_command) and two pings
        wait_until(lambda: len(collector.events(APP)) >= expected, what="every event stored")
        yield SimpleNamespace(
            collector=collector,
            relay=relay,
            carol=carol,
            version=version,
            helped=helped,
            files_before=files_before,
            added=added,
            shown=shown,
            spool=spool,
            uploaded=uploaded,
            outputs=[slow_out, slow_err] + [r.out + r.err for r in carol.transcript],
            events=collector.events(APP),
            commands=collector.commands(APP),
        )


def test_version_and_help_send_nothing(devsy: Any) -> None:
    assert devsy.version.out.strip() == VERSION
    assert PROMPT not in devsy.version.err + devsy.helped.err
    assert devsy.files_before == []  # not even a directory: nothing was built


def test_prompt_on_first_command_that_loads_configuration(devsy: Any) -> None:
    assert PROMPT in devsy.added.err
    assert devsy.added.code == 0


def test_event_per_command(devsy: Any) -> None:
    assert Counter(e["command"] for e in devsy.commands) == {
        "provider.add": 2,
        "up": 8,
        "provider.delete": 1,
        "provider.list": 2,
        "context.set-options": 2,
    }


def test_environment_os_arch_version(devsy: Any) -> None:
    for event in devsy.events:
        assert event["os"] == "linux"
        assert event["arch"] in ("x86_64", "arm64")
        assert event["app_version"] == VERSION


def test_source_type_dimension(devsy: Any) -> None:
    ups = [e for e in devsy.commands if e["command"] == "up"]
    assert Counter(e["dimensions"]["source_type"] for e in ups) == {
        "git": 2,
        "image": 2,
        "local": 2,
        "container": 1,
        "unknown": 1,
    }


def test_ide_dimension_and_value(devsy: Any) -> None:
    ups = [e for e in devsy.commands if e["command"] == "up"]
    assert Counter(e["dimensions"]["ide"] for e in ups) == {
        "vscode": 6,
        "goland": 1,
        "pycharm": 1,
    }
    assert sorted(e["values"]["ide"] for e in ups if "values" in e) == ["goland", "vscode"]


def test_provider_dimension(devsy: Any) -> None:
    providers = Counter((e["command"], e["dimensions"].get("provider")) for e in devsy.commands)
    assert providers[("up", "docker")] == 8
    assert providers[("provider.add", "docker")] == 1
    # Names outside the policy's list of well-known providers are never sent.
    assert providers[("provider.add", "other")] == 1
    assert providers[("provider.delete", "other")] == 1


def test_desktop_or_cli_dimension(devsy: Any) -> None:
    desktop = Counter(e["dimensions"]["desktop"] for e in devsy.commands)
    assert desktop == {"true": 1, "false": 14}


def test_failure_carries_error_category_not_message(devsy: Any) -> None:
    failed = [e for e in devsy.commands if e["outcome"] == "failure"]
    assert sorted((e["command"], e["error"]) for e in failed) == [
        ("provider.delete", "ProviderNotFound"),
        ("up", "SourceNotFound"),
    ]
    assert b"does not exist" not in devsy.relay.bodies()


def test_slow_command_flagged(devsy: Any) -> None:
    slow = [e for e in devsy.commands if e["slow"]]
    assert len(slow) == 1
    assert slow[0]["command"] == "up"
    assert slow[0]["duration_ms"] >= 10_000
    assert all(e["duration_ms"] < 10_000 for e in devsy.commands if not e["slow"])


def test_opt_out_by_environment_variable(devsy: Any) -> None:
    adds = [e for e in devsy.commands if e["command"] == "provider.add"]
    assert len(adds) == 2  # docker and the custom one; not the one run with DISABLE set


def test_opt_out_per_context(devsy: Any) -> None:
    deletes = [e for e in devsy.commands if e["command"] == "provider.delete"]
    assert [e["error"] for e in deletes] == ["ProviderNotFound"]  # the later delete: not sent
    lists = [e["dimensions"]["provider"] for e in devsy.commands if e["command"] == "provider.list"]
    assert sorted(lists) == ["docker", "none"]  # the "work" context still records


def test_no_machine_id(devsy: Any) -> None:
    assert len({e["session"] for e in devsy.commands}) == 1
    assert all("session" not in e for e in devsy.events if e["kind"] == "active")
    for event in devsy.events:
        assert "machine_id" not in event and "user" not in event


def test_canaries_appear_nowhere(devsy: Any) -> None:
    where = places(devsy.carol, devsy.collector, devsy.relay, devsy.shown.out)
    where["spool before upload"] = devsy.spool
    assert devsy.spool and devsy.relay.count() >= 2
    assert_no_canary(where, CANARIES)


def test_report_shows_the_usage(devsy: Any) -> None:
    report = devsy.collector.report(APP)
    up = next(c for c in report["commands"] if c["command"] == "up")
    assert up["runs"] == 8 and up["slow"] == 1 and up["failures"] == 1
    errors = {(e["error"], e["command"]) for e in report["errors"]}
    assert errors == {("ProviderNotFound", "provider.delete"), ("SourceNotFound", "up")}
    dims = report["dimensions"]
    assert dims["source_type"] == {"git": 2, "image": 2, "local": 2, "container": 1, "unknown": 1}
    assert dims["desktop"] == {"true": 1, "false": 14}
