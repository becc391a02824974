"""Uploads against a real loopback collector: every answer the HTTP contract allows, and worse.

Nothing that should be kept is lost, nothing is retried for ever, and the tool's own run is
never delayed (the uploader is detached).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from tests.client.conftest import POLICY, Env, tool
from tests.client.helpers.collector import Answer, BlackHole, Collector, refused_url

from optin import Telemetry
from optin.client import spool, upload
from optin.client.upload import retry_after
from optin.policy import load

POL = load(POLICY)
T0 = 1_795_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, endpoint: str, clock: Clock | None = None, n: int = 3) -> Telemetry:
    """A telemetry that is on, with ``n`` commands (plus two active pings) spooled."""
    t = Telemetry(
        POL,
        "1.0",
        state_dir=tmp_path / "state",
        config_dir=tmp_path / "config",
        environ={"SAMPLE_CLI_TELEMETRY": "on", "SAMPLE_CLI_TELEMETRY_ENDPOINT": endpoint},
        clock=clock or Clock(),
        upload="manual",
        cwd=tmp_path,
    )
    for _ in range(n):
        with t.command("start"):
            pass
    return t


def pending(tmp_path: Path) -> int:
    return len(spool.entries(str(tmp_path / "state" / "spool")))


def stats(tmp_path: Path) -> dict[str, object]:
    return spool.load_stats(str(tmp_path / "state"))


def next_due(tmp_path: Path) -> float:
    when = spool.next_time(str(tmp_path / "state"))
    assert when is not None
    return when


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    b = BlackHole()
    yield b
    b.close()


def test_accepted_batches_are_deleted(tmp_path: Path, collector: Collector) -> None:
    t = make(tmp_path, collector.url)
    result = t.upload_now()
    assert result.ok and result.sent == 5 and result.pending == 0
    assert pending(tmp_path) == 0
    (request,) = collector.requests
    assert request["headers"]["Content-Encoding"] == "gzip"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["batch"]["app"] == "sample-cli" and request["batch"]["policy_version"] == 2
    assert next_due(tmp_path) == T0 + 3600  # the policy's interval
    again = t.upload_now()
    assert again.ok and again.message == "nothing to upload"
    assert len(collector.requests) == 1


def test_refused_keeps_everything_and_backs_off(tmp_path: Path, collector: Collector) -> None:
    url = refused_url()
    clock = Clock()
    t = make(tmp_path, url, clock)
    first = t.upload_now(timeout=2)
    assert not first.ok and first.pending == 5 and "could not reach" in first.message
    assert T0 + 30 <= next_due(tmp_path) <= T0 + 60
    second = t.upload_now(timeout=2)
    assert not second.ok
    assert T0 + 60 <= next_due(tmp_path) <= T0 + 120  # exponential
    assert pending(tmp_path) == 5
    t2 = make(tmp_path, collector.url, clock, n=0)
    assert t2.upload_now().sent == 5
    assert stats(tmp_path)["failures"] == 0


def test_black_hole_times_out_quickly_and_keeps(tmp_path: Path, black_hole: BlackHole) -> None:
    t = make(tmp_path, black_hole.url)
    start = time.monotonic()
    result = t.upload_now(timeout=0.5)
    assert time.monotonic() - start < 3
    assert not result.ok and pending(tmp_path) == 5


def test_slow_collector(tmp_path: Path, collector: Collector) -> None:
    t = make(tmp_path, collector.url)
    collector.script = [Answer(200, body={"accepted": 5}, delay=1.5)]
    too_slow = t.upload_now(timeout=0.5)  # the collector stored them, we never heard back
    assert not too_slow.ok and pending(tmp_path) == 5
    time.sleep(1.2)
    collector.script = [Answer(delay=0.3)]
    collector.default = None
    ok = t.upload_now(timeout=5)  # resent with the same ids: the collector deduplicates
    assert ok.ok and pending(tmp_path) == 0
    first, second = (r["batch"]["events"] for r in collector.requests)
    assert [e["id"] for e in first] == [e["id"] for e in second]


@pytest.mark.parametrize(
    ("status", "header", "wait"),
    [
        (429, {"Retry-After": "17"}, 17),
        (429, {"Retry-After": "100000"}, 300),
        (429, {"Retry-After": "soon"}, 60),
        (429, {}, 60),
        (503, {"Retry-After": "42"}, 42),
    ],
)
def test_retry_after_is_obeyed_and_data_kept(
    tmp_path: Path, collector: Collector, status: int, header: dict[str, str], wait: float
) -> None:
    t = make(tmp_path, collector.url)
    collector.script = [Answer(status, header, {"error": "rate_limited", "message": "slow down"})]
    result = t.upload_now()
    assert not result.ok and result.pending == 5
    assert next_due(tmp_path) == pytest.approx(T0 + wait)
    assert len(collector.requests) == 1  # not hammered: one request, then wait


def test_retry_after_parsing() -> None:
    now = time.time()
    assert retry_after(formatdate(now + 30, usegmt=True), now) == pytest.approx(30, abs=1)
    assert retry_after(formatdate(now - 30, usegmt=True), now) == 0
    assert retry_after(formatdate(now + 9999, usegmt=True), now) == 300
    assert retry_after("  12 ", now) == 12
    assert retry_after("-5", now) == 60
    assert retry_after("", now) == 60


def test_413_halves_until_it_fits(tmp_path: Path, collector: Collector) -> None:
    t = make(tmp_path, collector.url, n=9)  # 11 events
    collector.max_events = 3
    result = t.upload_now()
    assert result.ok and result.sent == 11 and result.dropped == 0
    sizes = [len(r["batch"]["events"]) for r in collector.requests]
    assert sizes[:3] == [11, 5, 2]
    assert sum(s for s in sizes if s <= 3) == 11


def test_413_for_a_single_event_drops_it(tmp_path: Path, collector: Collector) -> None:
    t = make(tmp_path, collector.url, n=1)
    collector.default = Answer(413, body={"error": "too_large", "message": "x"})
    result = t.upload_now()
    assert result.ok and result.dropped == 3 and pending(tmp_path) == 0
    assert [len(r["batch"]["events"]) for r in collector.requests] == [3, 1, 1, 1]


@pytest.mark.parametrize("status", [400, 415, 422])
def test_invalid_batches_are_dropped_counted_and_shown(
    tmp_path: Path, collector: Collector, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    t = make(tmp_path, collector.url)
    collector.script = [Answer(status, body={"error": "no_valid_events", "message": "no"})]
    result = t.upload_now()
    assert result.ok and result.dropped == 5 and pending(tmp_path) == 0
    assert len(collector.requests) == 1  # never retried
    assert t.cli(["status"]) == 0
    out = capsys.readouterr().out
    assert "events dropped:  5 (refused by the collector: 5)" in out
    assert f"last refusal:    HTTP {status} no_valid_events" in out


@pytest.mark.parametrize("status", [500, 502, 507, 302])
def test_server_trouble_keeps_and_backs_off(
    tmp_path: Path, collector: Collector, status: int
) -> None:
    t = make(tmp_path, collector.url)
    collector.script = [Answer(status, {"Location": "http://example.org/"})]
    result = t.upload_now()
    assert not result.ok and result.pending == 5
    assert T0 + 30 <= next_due(tmp_path) <= T0 + 60


def test_rejected_events_in_an_accepted_batch_are_counted(
    tmp_path: Path, collector: Collector
) -> None:
    t = make(tmp_path, collector.url)
    rejected = [{"index": 0, "reason": "x"}, {"index": 3, "reason": "y"}]
    collector.script = [Answer(200, body={"accepted": 3, "duplicates": 0, "rejected": rejected})]
    result = t.upload_now()
    assert result.ok and result.sent == 3 and result.dropped == 2
    assert stats(tmp_path)["dropped_rejected"] == 2 and pending(tmp_path) == 0


def test_one_uploader_at_a_time(tmp_path: Path, collector: Collector) -> None:
    t = make(tmp_path, collector.url)
    with spool.lock(str(tmp_path / "state")) as held:
        assert held
        busy = t.upload_now()
        assert not busy.ok and "another upload" in busy.message
        assert spool.busy(str(tmp_path / "state"))
    assert collector.connections == 0
    assert t.upload_now().sent == 5


def test_a_run_is_bounded(
    tmp_path: Path, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload, "MAX_BATCHES", 3)
    t = make(tmp_path, collector.url, n=20)
    collector.max_events = 1  # every batch must shrink to a single event
    result = t.upload_now()
    assert len(collector.requests) == 3 and result.pending > 0


# --- the detached uploader, as the CLI starts it ---------------------------------------------


def background_env(env: Env, endpoint: str) -> Env:
    env["SAMPLE_CLI_TELEMETRY"] = "on"
    env["SAMPLE_CLI_TELEMETRY_ENDPOINT"] = endpoint
    env["OPTIN_UPLOAD_TIMEOUT"] = "1"
    return env


def wait_for(predicate: object, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_the_cli_starts_a_detached_uploader_when_due(env: Env, collector: Collector) -> None:
    background_env(env, collector.url)
    done = tool(env, "run", "2")
    assert done.returncode == 0 and done.stderr == ""
    assert wait_for(lambda: len(collector.events()) == 4)
    assert wait_for(lambda: not env.spooled() and not spool.busy(str(env.state)))
    # Not due again for an hour: the next command does not start another upload.
    tool(env, "run", "1")
    time.sleep(0.5)
    assert len(collector.requests) == 1 and len(env.spooled()) == 1


@pytest.mark.parametrize("kind", ["black hole", "refused", "slow"])
def test_the_tool_is_never_delayed(
    env: Env, collector: Collector, black_hole: BlackHole, kind: str
) -> None:
    url = {"black hole": black_hole.url, "refused": refused_url(), "slow": collector.url}[kind]
    collector.default = Answer(200, body={"accepted": 0}, delay=5)
    background_env(env, url)
    tool(env, "run", "1")  # warm up (first run spawns the uploader)
    (env.state / "next-upload").write_text("0")  # due again
    start = time.monotonic()
    done = tool(env, "run", "1")
    elapsed = time.monotonic() - start
    assert done.returncode == 0
    assert elapsed < 2.0, elapsed  # the uploader would need > 5 s
    if kind == "slow":
        assert wait_for(lambda: len(collector.requests) >= 1)
    time.sleep(0.3)
    assert wait_for(lambda: not spool.busy(str(env.state)), 20)
    assert len(env.spooled()) == 4  # nothing acknowledged, nothing lost


def test_the_uploader_rechecks_consent_before_sending(env: Env, collector: Collector) -> None:
    env["TOOL_UPLOAD"] = "manual"
    env["SAMPLE_CLI_TELEMETRY_ENDPOINT"] = collector.url
    tool(env, "telemetry", "on")
    tool(env, "run", "1")
    consent_file = env.config / "consent.json"
    data = json.loads(consent_file.read_text())
    consent_file.write_text(json.dumps({**data, "state": "off"}))  # off, in another process
    job = json.dumps(
        {
            "policy": str(POLICY),
            "state_dir": str(env.state),
            "config_dir": str(env.config),
            "endpoint": collector.url,
            "cwd": str(env.cwd),
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "optin.client.upload", job], env=env, timeout=60, check=False
    )
    assert done.returncode == 1
    assert collector.connections == 0 and len(env.spooled()) == 3


def test_an_in_process_simulation_through_the_real_pipeline(
    tmp_path: Path, collector: Collector
) -> None:
    """What the demo does: users on a simulated clock, uploads inline when due."""
    clock = Clock()
    users = [
        Telemetry(
            POL,
            "1.0",
            state_dir=tmp_path / f"user{u}" / "state",
            config_dir=tmp_path / f"user{u}" / "config",
            environ={"SAMPLE_CLI_TELEMETRY_ENDPOINT": collector.url},
            clock=clock,
            upload="inline",
            interactive=False,
            cwd=tmp_path,
        )
        for u in range(3)
    ]
    for user in users:
        user.set_choice("on")
    for day in range(10):
        for hour in range(5):
            clock.now = T0 + day * 86400 + hour * 20 * 60  # every 20 minutes
            for user in users:
                with user.command("deploy") as cmd:
                    cmd.positionals(day)
    for user in users:
        assert user.upload_now().ok
    kinds = [e["kind"] for e in collector.events()]
    assert kinds.count("command") == 3 * 10 * 5
    assert kinds.count("active") == 3 * (10 + 1)  # Nov 18-27: one month
    assert max(collector.accepted.values()) == 1
    # Inline uploads ran on the policy's schedule (hourly in simulated time), not per command.
    assert len(collector.requests) == 3 * 10 * 2 + 3  # and the final flush
