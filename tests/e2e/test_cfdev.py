"""demo-cfdev end to end: what PCF Dev's telemetry page (seed 004) asks for, on a real collector.

One scenario per module (the installed ``demo-cfdev``, a pseudo-terminal for the prompt, a real
``optin serve``); each test checks one documented behaviour on what the collector stored.
"""

from __future__ import annotations

import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from tests.e2e.harness import PROMPT, ROOT, User, assert_no_canary, pipeline, places, wait_until

APP = "demo-cfdev"
POLICY = ROOT / "examples" / "demo-cfdev" / "src" / "demo_cfdev" / "telemetry.toml"
VERSION = "1.2.0"

ISO = "canary-pcfdev-v1.iso"
CORRUPT = "canary-corrupt.iso"
MISSING = "/nonexistent/canary-missing.iso"
CANARIES = [
    "canary-pcfdev",
    "canary-corrupt",
    "canary-missing",
    "/nonexistent",
    # Fragments of the error messages (the policy's own texts say "already running" too).
    "cannot read the ISO",
    "PCF Dev is already running",
    "MB, not 1024",
    "not a PCF Dev ISO",
]


def named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] == "event" and e["name"] == name]


@pytest.fixture(scope="module")
def cfdev(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("cfdev")
    with pipeline(tmp, POLICY) as (collector, relay):
        dave = User(APP, tmp / "dave", relay.url)
        (dave.project / ISO).write_bytes(b"PCFDEV-ISO and the rest of the image")
        (dave.project / CORRUPT).write_bytes(b"this is not an image")
        ns = SimpleNamespace(collector=collector, relay=relay, dave=dave)

        # PCF Dev asks on the first start: a stop before it asks nothing and records nothing.
        ns.first_stop = dave.run_tty("stop")
        ns.files_after_first_stop = dave.files()
        ns.started = dave.run_tty("start", "-f", ISO, answer="y")
        # The first recorded command pushes at once; wait for that push to end.
        stats = dave.state_dir / "stats.json"
        wait_until(lambda: stats.exists() and "last_upload" in stats.read_text(), what="a push")
        ns.stored_after_first_push = len(collector.events(APP))
        codes = [
            dave.run("start").code,  # already running
            dave.run("stop").code,
            dave.run("start", "-f", MISSING).code,
            dave.run("start", "-f", CORRUPT).code,
            dave.run("start", "-m", "1024", "-c", "4").code,
        ]
        assert codes == [1, 0, 1, 1, 1], codes
        ns.shown = dave.run("telemetry", "show")
        ns.spool = dave.spool_bytes()
        ns.stored_before_period = len(collector.events(APP))
        ns.requests_before_period = relay.count()

        # A day later (the schedule file says the next push is due), the next command pushes.
        (dave.state_dir / "next-upload").write_text("0.0")
        ns.later_stop = dave.run("stop")
        wait_until(lambda: not list((dave.state_dir / "spool").glob("*")), what="the spool empty")
        ns.events_on = collector.events(APP)

        # Off, in PCF Dev's spelling: nothing at all is recorded or sent.
        ns.off = dave.run("telemetry", "--off")
        ns.files_off = dave.files()
        ns.requests_off = relay.count()
        ns.off_runs = [dave.run("start", "-f", ISO).code, dave.run("stop").code]
        time.sleep(0.5)
        ns.files_after_off_runs = dave.files()
        ns.requests_after_off_runs = relay.count()
        ns.status_off = dave.run("telemetry", "status")

        # On again (optin's spelling), then uninstall: its events leave at once.
        ns.on = dave.run("telemetry", "on")
        ns.uninstalled = dave.run("uninstall")
        wait_until(lambda: named(collector.events(APP), "uninstall"), 30, "the uninstall event")
        ns.events = collector.events(APP)
        ns.commands = collector.commands(APP)
        yield ns


def test_prompt_on_first_start_only(cfdev: Any) -> None:
    assert PROMPT not in cfdev.first_stop.err
    assert cfdev.files_after_first_stop == []
    assert PROMPT in cfdev.started.err
    assert cfdev.started.code == 0


def test_lifecycle_events(cfdev: Any) -> None:
    counts = Counter(e["name"] for e in cfdev.events if e["kind"] == "event")
    assert counts == {
        "begin_start": 5,
        "start_finish": 5,
        "error": 4,
        "stop": 2,
        "uninstall": 1,
    }
    assert [e["properties"]["custom_iso"] for e in named(cfdev.events, "begin_start")].count(
        True
    ) == 3
    finishes = Counter(e["properties"]["ok"] for e in named(cfdev.events, "start_finish"))
    assert finishes == {True: 1, False: 4}
    stops = sorted(e["properties"]["was_running"] for e in named(cfdev.events, "stop"))
    assert stops == [False, True]


def test_error_event_carries_a_category(cfdev: Any) -> None:
    errors = named(cfdev.events, "error")
    assert sorted(e["properties"]["category"] for e in errors) == [
        "AlreadyRunning",
        "IsoCorrupt",
        "IsoNotFound",
        "NotEnoughMemory",
    ]
    assert {e["properties"]["step"] for e in errors} == {"start"}
    failed = [e for e in cfdev.commands if e["outcome"] == "failure"]
    assert sorted(e["error"] for e in failed) == sorted(e["properties"]["category"] for e in errors)


def test_command_events_beside_lifecycle(cfdev: Any) -> None:
    assert Counter(e["command"] for e in cfdev.commands) == {"start": 5, "stop": 2, "uninstall": 1}
    (with_memory,) = [e for e in cfdev.commands if "memory" in e["options"]]
    assert with_memory["values"] == {"cpus": "4"}
    assert sorted(with_memory["options"]) == ["cpus", "memory"]


def test_event_fields_timestamp_os_build(cfdev: Any) -> None:
    for event in cfdev.events:
        assert event["time"] % 3600 == 0  # the hour, not the instant
        assert event["os"] == "linux"
        assert event["app_version"] == VERSION
        assert "machine_id" not in event


def test_stored_locally_then_pushed_periodically(cfdev: Any) -> None:
    assert cfdev.stored_after_first_push >= 1
    # Between pushes the events wait in the local spool; the collector has not seen them.
    assert cfdev.stored_before_period == cfdev.stored_after_first_push
    assert '"name": "error"' in cfdev.shown.out
    assert cfdev.relay.count() > cfdev.requests_before_period
    # When the schedule comes round, a command's background push sends all of them.
    assert len(cfdev.events_on) > cfdev.stored_before_period
    assert len(named(cfdev.events_on, "error")) == 4


def test_telemetry_on_off_spellings(cfdev: Any) -> None:
    assert cfdev.off.code == 0 and "off" in cfdev.off.out.lower()
    assert "telemetry:       off" in cfdev.status_off.out
    assert cfdev.on.code == 0 and "on" in cfdev.on.out.lower()


def test_off_means_nothing_at_all(cfdev: Any) -> None:
    assert cfdev.off_runs == [0, 0]  # the tool works as before
    assert cfdev.files_off == [".config/optin/demo-cfdev/consent.json"]  # the spool was wiped
    assert cfdev.files_after_off_runs == cfdev.files_off  # nothing written
    assert cfdev.requests_after_off_runs == cfdev.requests_off  # nothing sent


def test_uninstall_pushes_at_once(cfdev: Any) -> None:
    assert cfdev.uninstalled.code == 0
    assert [e["command"] for e in cfdev.commands].count("uninstall") == 1


def test_canaries_appear_nowhere(cfdev: Any) -> None:
    outputs = [cfdev.shown.out, cfdev.status_off.out]
    where = places(cfdev.dave, cfdev.collector, cfdev.relay, *outputs)
    where["spool before upload"] = cfdev.spool
    assert cfdev.spool and cfdev.relay.count() >= 2
    assert_no_canary(where, CANARIES)


def test_report_shows_the_usage(cfdev: Any) -> None:
    report = cfdev.collector.report(APP)
    events = report["events"]
    assert {name: events[name]["count"] for name in events} == {
        "begin_start": 5,
        "start_finish": 5,
        "error": 4,
        "stop": 2,
        "uninstall": 1,
    }
    start = next(c for c in report["commands"] if c["command"] == "start")
    assert start["runs"] == 5 and start["failures"] == 4
