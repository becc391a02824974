"""Capture through the plain API, in process: every event valid, nothing beyond the policy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.client.conftest import POLICY, PREFIX, Env

from optin import Telemetry
from optin.client import capture, spool
from optin.client.capture import Context, session_id
from optin.events import validate_event
from optin.policy import load

POL = load(POLICY)
DAY = 86400.0
T0 = 1_795_000_000.0  # 2026-11-18


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, clock: Clock | None = None, **env: str) -> Telemetry:
    return Telemetry(
        POL,
        "1.2.3",
        state_dir=tmp_path / "state",
        config_dir=tmp_path / "config",
        environ={"SAMPLE_CLI_TELEMETRY": "on", **env},
        clock=clock or Clock(),
        upload="manual",
        cwd=tmp_path,
    )


def recorded(tmp_path: Path, which: str = "spool") -> list[dict[str, Any]]:
    d = tmp_path / "state" / which
    events = [json.loads(p.read_text()) for p in sorted(d.glob("*.json"))]
    for e in events:
        validate_event(POL, e)
    return events


def commands(tmp_path: Path) -> list[dict[str, Any]]:
    return [e for e in recorded(tmp_path) if e["kind"] == "command"]


def test_options_values_positionals_dimensions(tmp_path: Path) -> None:
    t = make(tmp_path)
    with t.command("canister.install") as cmd:
        cmd.option("mode", "upgrade")
        cmd.option("yes", "/home/alice")  # declared without values: present only
        cmd.option("force", "x")  # not declared
        cmd.positionals(4)  # not asked for this command
        t.dimension("network", "ic")
    with t.command("canister.install") as cmd:
        cmd.option("mode", "nuke")  # outside the closed list
        cmd.dimension("network", "mainnet")
        cmd.dimension("colour", "red")
    with t.command("deploy") as cmd:
        cmd.positionals(2)
    with t.command("no.such.command") as cmd:
        cmd.option("mode", "install")
    a, b, c, d = commands(tmp_path)
    assert (a["options"], a["values"], a["dimensions"]) == (
        ["mode", "yes"],
        {"mode": "upgrade"},
        {"network": "ic"},
    )
    assert "positionals" not in a
    assert (b["values"], b["dimensions"]) == ({"mode": "other"}, {"network": "other"})
    assert c["positionals"] == 2 and c["options"] == []
    assert d["command"] == "<unknown>" and d["options"] == [] and "values" not in d


class ProviderNotFound(Exception):
    pass


class SubConnectionError(ConnectionError):
    pass


def test_outcomes_exit_codes_and_error_categories(tmp_path: Path) -> None:
    t = make(tmp_path)
    cases: list[BaseException] = [
        ProviderNotFound("secret"),
        SubConnectionError("x"),
        ValueError("y"),
        KeyboardInterrupt(),
        SystemExit(4),
        SystemExit(0),
        SystemExit("message"),
    ]
    for exc in cases:
        with pytest.raises(type(exc)) as raised, t.command("start"):
            raise exc
        assert raised.value is exc  # propagates unchanged
    with t.command("start") as cmd:
        cmd.finish("usage_error", 2, "ProviderNotFound")
        cmd.finish("success", 0)  # the first call wins
    with t.command("start") as cmd:
        cmd.finish("failure", 7, "SomethingElse")
    got = [(e["outcome"], e["exit_code"], e.get("error")) for e in commands(tmp_path)]
    assert got == [
        ("failure", 1, "ProviderNotFound"),
        ("failure", 1, "ConnectionError"),  # a listed base class
        ("failure", 1, "other"),
        ("interrupted", 130, None),
        ("failure", 4, None),
        ("success", 0, None),
        ("failure", 1, None),
        ("usage_error", 2, "ProviderNotFound"),
        ("failure", 7, "other"),
    ]


def test_duration_and_slow_flag_from_the_injected_clock(tmp_path: Path) -> None:
    clock = Clock()
    t = make(tmp_path, clock)
    with t.command("start"):
        clock.now += 12.5
    with t.command("start"):
        clock.now += 0.25
    slow, fast = commands(tmp_path)
    assert (slow["duration_ms"], slow["slow"]) == (12500, True)
    assert (fast["duration_ms"], fast["slow"]) == (250, False)
    assert slow["time"] % 3600 == 0


def test_custom_events_are_typed_and_closed(tmp_path: Path) -> None:
    t = make(tmp_path)
    with t.command("start"):
        t.dimension("network", "local-shared")
        t.event("start_finish", ok=1, seconds=42, phase="warp", extra="no")
    t.event("start_finish", seconds="slow")  # not a number: left out
    t.event("not_declared", ok=True)
    events = [e for e in recorded(tmp_path) if e["kind"] == "event"]
    assert [e["properties"] for e in events] == [
        {"ok": True, "seconds": 30, "phase": "other"},
        {},
    ]
    assert events[0]["dimensions"] == {"network": "local-shared"}


def test_session_id_equal_within_a_period_different_across(tmp_path: Path) -> None:
    state = str(tmp_path)
    start = (T0 // DAY) * DAY
    same = {session_id(state, POL, start + h * 3600) for h in range(24)}
    assert len(same) == 1
    days = [session_id(state, POL, start + d * DAY + 5) for d in range(30)]
    assert len(set(days)) == 30
    (tmp_path / "session").unlink()  # the cache is only a cache
    assert session_id(state, POL, start + 7) == days[0]
    other_user = tmp_path / "other"
    other_user.mkdir()
    assert session_id(str(other_user), POL, start) != days[0]


def test_session_ids_in_events_rotate_daily(tmp_path: Path) -> None:
    clock = Clock((T0 // DAY) * DAY + 60)
    t = make(tmp_path, clock)
    for step in (0, 3600, 20 * 3600, DAY, DAY + 3600):
        clock.now = (T0 // DAY) * DAY + 60 + step
        with t.command("start"):
            pass
    sessions = [e["session"] for e in commands(tmp_path)]
    assert sessions[0] == sessions[1] == sessions[2]
    assert sessions[3] == sessions[4] != sessions[0]


def test_active_pings_at_most_once_per_day_and_month(tmp_path: Path) -> None:
    clock = Clock((T0 // DAY) * DAY)  # 2026-11-18 00:00 UTC
    for day in range(20):  # 2026-11-18 .. 2026-12-07, several "processes" a day
        for hour in (1, 9, 23):
            clock.now = (T0 // DAY) * DAY + day * DAY + hour * 3600
            t = make(tmp_path, clock)
            with t.command("start"):
                pass
    pings = [e for e in recorded(tmp_path) if e["kind"] == "active"]
    assert sum(e["period"] == "day" for e in pings) == 20
    assert sum(e["period"] == "month" for e in pings) == 2
    assert all("session" not in e for e in pings)
    assert len(list((tmp_path / "state" / "marks").iterdir())) == 2  # old marks are forgotten


def test_context_fields() -> None:
    ctx = Context("1.0+local.5", ci=True, interactive=False)
    assert ctx.fields["app_version"] == "1.0+local.5"
    assert Context("1.0 beta /home/x", ci=False, interactive=True).fields["app_version"] == "other"
    event = ctx.base("active", T0 + 1234)
    assert event["time"] % 3600 == 0 and len(event["id"]) == 32


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, True, False, None, "x"], "b": {"c": -3}},
        {"s": 'quote " and \\ backslash'},
        {"u": "ünïcode", "ctl": "a\nb\x00"},
        {"f": 1.5, "big": 10**30},
    ],
)
def test_small_json_encoder_matches_json(value: object) -> None:
    text = spool.dumps(value)
    assert json.loads(text) == value
    assert text == json.dumps(value, separators=(",", ":"))


_JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)


@given(
    st.recursive(
        _JSON_LEAVES,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.tuples(inner, inner)
            | st.dictionaries(st.text(max_size=8), inner, max_size=4)
            | st.dictionaries(st.integers() | st.text(max_size=4), inner, max_size=3)
        ),
        max_leaves=16,
    )
)
def test_small_json_encoder_matches_json_on_any_value(value: object) -> None:
    assert capture.dumps(value) == json.dumps(value, separators=(",", ":"))


def test_local_mode_records_apart_and_never_uploads(tmp_path: Path) -> None:
    t = make(tmp_path, SAMPLE_CLI_TELEMETRY="local")
    with t.command("start"):
        pass
    assert len(recorded(tmp_path, "local")) == 3
    assert not (tmp_path / "state" / "spool").exists()
    result = t.upload_now()
    assert not result.ok and "local" in result.message


def test_bounds_repeated_from_the_event_model() -> None:
    from optin import events

    assert capture.MAX_DURATION_MS == events.MAX_DURATION_MS
    assert capture.MAX_POSITIONALS == events.MAX_POSITIONALS


def test_simulations_may_set_the_platform(tmp_path: Path) -> None:
    t = Telemetry(
        POL,
        "2.0",
        state_dir=tmp_path / "state",
        config_dir=tmp_path / "config",
        environ={"SAMPLE_CLI_TELEMETRY": "on"},
        clock=Clock(),
        upload="manual",
        cwd=tmp_path,
        platform={"os": "macos", "arch": "arm64", "python": "3.13", "secret": "x"},
    )
    with t.command("start"):
        pass
    for e in recorded(tmp_path):
        assert (e["os"], e["arch"], e["python"]) == ("macos", "arm64", "3.13")
        assert "secret" not in e


def test_a_broken_policy_turns_telemetry_off(tmp_path: Path) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text('app = "sample-cli"\nversion = "two"\n')
    t = Telemetry(
        bad,
        "1.0",
        state_dir=tmp_path / "state",
        config_dir=tmp_path / "config",
        environ={"SAMPLE_CLI_TELEMETRY": "on"},
        upload="manual",
        cwd=tmp_path,
    )
    with t.command("start") as cmd:
        cmd.option("x")
    assert not cmd.active
    assert t.state == "off" and t.problem is not None and "version" in t.problem
    assert not (tmp_path / "state").exists()


def test_an_answer_at_the_prompt_still_obeys_a_project_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from optin.client import consent

    (tmp_path / ".optin.toml").write_text('telemetry = "local"\n')
    monkeypatch.setattr(consent, "ask", lambda name, tool: True)
    t = Telemetry(
        POL,
        "1.0",
        state_dir=tmp_path / "state",
        config_dir=tmp_path / "config",
        environ={},
        interactive=True,
        upload="manual",
        cwd=tmp_path,
    )
    with t.command("start"):
        pass
    assert t.state == "local"
    assert len(recorded(tmp_path, "local")) == 3


def test_no_home_directory_means_off(tmp_path: Path) -> None:
    t = Telemetry(
        POL,
        "1.0",
        state_dir="relative/state",
        config_dir="relative/config",
        environ={"SAMPLE_CLI_TELEMETRY": "on"},
        upload="manual",
        cwd=tmp_path,
    )
    with t.command("start"):
        pass
    assert t.state == "off" and t.decision().source == "no home"


_HOT_PATH = """
import sys
from optin import Telemetry

before = set(sys.modules)
t = Telemetry(sys.argv[1], "1.0.0", upload=sys.argv[2])
with t.command("canister.install") as cmd:
    cmd.option("mode", "install")
print(" ".join(sorted(set(sys.modules) - before)))
"""


def test_recording_a_command_imports_one_client_module(env: Env) -> None:
    """Once the state exists, telemetry on loads one module more than off (``capture``): no
    spool maintenance, TOML parser, JSON, regular expressions or hashing."""
    env[f"{PREFIX}_TELEMETRY"] = "on"
    env[f"{PREFIX}_TELEMETRY_ENDPOINT"] = "http://127.0.0.1:9"

    def run() -> set[str]:
        argv = [sys.executable, "-c", _HOT_PATH, str(POLICY), "manual"]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
        return set(done.stdout.split())

    first = run()  # makes the state directory, the policy cache, the secret, today's pings
    assert "tomllib" in first and "hmac" in first
    assert (env.state / "policy.cache").is_file(), "the first run on caches the policy"
    (env.state / "next-upload").write_text("1e12")
    loaded = run()
    assert {m for m in loaded if m.startswith("optin.")} == {"optin.client.capture"}
    heavy = {"optin.client.spool", "optin.events", "tomllib", "json", "re", "hashlib", "hmac"}
    assert not loaded & heavy


def test_the_schedule_is_rewritten_in_place_and_garbage_means_due(tmp_path: Path) -> None:
    """``set_next`` overwrites in place (no rename): a longer old value leaves no tail, and a
    schedule caught half written (or damaged) reads as due, never as an error."""
    state = str(tmp_path)
    assert capture.due(state, 0.0)  # no schedule yet: due
    (tmp_path / capture.NEXT).write_text("1.5e300 and some older, longer text")
    capture.set_next(state, 2000.0)
    assert spool.next_time(state) == 2000.0
    assert not capture.due(state, 1999.0) and capture.due(state, 2000.0)
    capture.set_next(state, 1e12)
    assert spool.next_time(state) == 1e12
    (tmp_path / capture.NEXT).write_bytes(b"20\x00\xff.5")  # a torn or damaged write
    assert capture.due(state, 0.0) and spool.next_time(state) is None
    assert {p.name for p in tmp_path.iterdir()} == {capture.NEXT}  # no temporary file left
