"""The spool under stress: many writers at once, writers killed mid-write, damage, bounds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.client.conftest import POLICY, TOOL, Env, policy_variant, tool
from tests.client.helpers.collector import Collector

from optin import Telemetry
from optin.client import spool
from optin.client.transport import MemoryTransport
from optin.events import validate_event
from optin.policy import load

POL = load(POLICY)


def test_32_processes_50_commands_each_arrive_exactly_once(
    env: Env, collector: Collector, tmp_path: Path
) -> None:
    # Uploads due every ~1 s: background uploaders run while the writers write.
    policy = policy_variant(tmp_path, upload_interval_hours=0.0003)
    env["SAMPLE_CLI_TELEMETRY"] = "on"
    env["SAMPLE_CLI_TELEMETRY_ENDPOINT"] = collector.url
    procs = [
        subprocess.Popen(
            [sys.executable, str(TOOL), str(policy), "run", "50"],
            env=env,
            cwd=env.cwd,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(32)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    # Let the background uploaders finish, then flush what is left in the foreground. An
    # uploader spawned by a writer that already exited starts half a second late, so the
    # foreground upload may still meet one: it says so, and is tried again.
    deadline = time.monotonic() + 30
    while True:
        while spool.busy(str(env.state)) and time.monotonic() < deadline:
            time.sleep(0.1)
        done = tool(env, "telemetry", "upload", policy=policy)
        if "another upload is running" not in done.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert done.returncode == 0, done.stderr
    events = collector.events()
    kinds = Counter(e["kind"] for e in events)
    assert kinds == {"command": 1600, "active": 2}
    assert max(collector.accepted.values()) == 1  # none twice
    assert env.spooled() == []
    for e in events:
        validate_event(POL, e)


def test_sigkill_mid_write_leaves_a_readable_spool(env: Env, collector: Collector) -> None:
    env["SAMPLE_CLI_TELEMETRY"] = "on"
    env["TOOL_UPLOAD"] = "manual"
    for delay in (0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5):
        p = subprocess.Popen(
            [sys.executable, str(TOOL), str(POLICY), "run", "100000"],
            env=env,
            cwd=env.cwd,
            stdin=subprocess.DEVNULL,
        )
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
    entries = env.spooled()
    assert len(entries) > 8
    for path in entries:
        validate_event(POL, json.loads(path.read_bytes()))  # every visible entry is whole
    env["SAMPLE_CLI_TELEMETRY_ENDPOINT"] = collector.url
    done = tool(env, "telemetry", "upload")
    assert done.returncode == 0, done.stderr
    stats = spool.load_stats(str(env.state))
    assert len(collector.events()) + stats.get("dropped_full", 0) == len(entries)
    assert stats.get("quarantined", 0) == 0


def make(tmp_path: Path, clock: list[float]) -> tuple[Telemetry, MemoryTransport]:
    transport = MemoryTransport()
    t = Telemetry(
        POL,
        "1.0",
        state_dir=tmp_path / "state",
        config_dir=tmp_path / "config",
        environ={"SAMPLE_CLI_TELEMETRY": "on"},
        clock=lambda: clock[0],
        upload="manual",
        transport=transport,
        cwd=tmp_path,
    )
    return t, transport


def test_corrupt_entries_are_quarantined_and_counted_the_good_ones_go(tmp_path: Path) -> None:
    clock = [1_795_000_000.0]
    t, _transport = make(tmp_path, clock)
    for _ in range(3):
        with t.command("start"):
            pass
    d = tmp_path / "state" / "spool"
    ns = int(clock[0] * 1e9)
    (d / f"{ns + 5:020d}-2-{'a' * 32}.json").write_text('{"id": "trunc')
    (d / f"{ns + 6:020d}-2-{'b' * 32}.json").write_bytes(b"")
    (d / "stray-file.txt").write_text("?")
    result = t.upload_now()
    assert result.ok and result.sent == 5, result
    stats = spool.load_stats(str(tmp_path / "state"))
    assert stats["quarantined"] == 3
    assert len(list((tmp_path / "state" / "quarantine").iterdir())) == 3
    assert sorted(os.listdir(d)) == []


def test_bounds_drop_the_oldest_and_count(tmp_path: Path) -> None:
    clock = [1_795_000_000.0]
    pol = load(POLICY)
    small = type(pol.settings)(spool_max_events=5, spool_max_age_days=2)
    t, transport = make(tmp_path, clock)
    t._policy = type(pol)(
        **{k: getattr(pol, k) for k in pol.__slots__ if k != "settings"}, settings=small
    )
    for _ in range(4):  # 2 pings + 4 commands, 3 days ago
        with t.command("start"):
            pass
    clock[0] += 3 * 86400
    for _ in range(7):
        with t.command("deploy"):
            pass
    result = t.upload_now()
    assert result.ok
    stats = spool.load_stats(str(tmp_path / "state"))
    assert stats["dropped_old"] == 6
    assert stats["dropped_full"] == 3  # a new day ping and 7 commands, 5 kept
    sent = [e for r in transport.requests for e in r.batch()["events"]]
    assert [e["command"] for e in sent] == ["deploy"] * 5
    status = t.cli(["status"])
    assert status == 0


def test_stale_temporary_files_are_cleaned(tmp_path: Path) -> None:
    d = tmp_path / "spool"
    d.mkdir()
    stale = d / ".x.json.tmp"
    stale.write_text("{")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = d / ".y.json.tmp"
    fresh.write_text("{")
    spool.prune(str(tmp_path), str(d), 10, 10, time.time())
    assert not stale.exists() and fresh.exists()
