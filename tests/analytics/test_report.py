"""``optin report`` as a user runs it: a subprocess over a database holding the known data set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.analytics.dataset import DAYS, known_events
from tests.storage.helpers import APP

from optin.storage import open_storage

POLICY_FILE = Path(__file__).parent.parent / "data" / "policy.toml"


def _report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optin", "report", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_report_shows_the_figures(storage_url: str) -> None:
    with open_storage(storage_url) as db:
        db.store(APP, known_events())
    done = _report("--db", storage_url, "--days", str(DAYS), "--policies", str(POLICY_FILE))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "sample-cli: 2026-01-05 .. 2026-01-25 (21 days" in out
    assert f"DAU {10 + (DAYS - 1) % 3} on 2026-01-25" in out
    assert "WAU 12..25" in out and "MAU 2026-01 25" in out
    table = out.split("Command")[1].split("(fail:")[0]
    lines = {line.split()[0]: line.split() for line in table.splitlines()[1:] if line.strip()}
    # command, runs, fail%, p50 (value unit), p95 (value unit), slow, struggle
    assert lines["deploy"][1:3] == [str(30 * DAYS), "5.6%"]  # 35 of 630
    assert lines["deploy"][7:] == ["630", "0/35"]
    assert lines["start"][1:3] == [str(20 * DAYS + 2), "10.2%"]  # 43 of 422
    assert lines["start"][-1] == "1/43"
    assert "os        linux 90.9%, macos 9.1%" in out  # 210 of 231 install-days
    assert "42  ConnectionError (start)" in out
    assert "never used: canister.install --mode, canister.install --yes" in out
    assert "2026-01-25  deploy: 50.0% of 30 runs (baseline 3.3%" in out


def test_report_json(storage_url: str) -> None:
    with open_storage(storage_url) as db:
        db.store(APP, known_events())
    done = _report("--db", storage_url, "--app", APP, "--days", "7", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["window"] == {"first": "2026-01-19", "last": "2026-01-25", "days": 7}
    assert sum(data["active"]["dau"].values()) == sum(10 + d % 3 for d in range(DAYS - 7, DAYS))
    assert data["options_never_used"] is None
    deploy = next(c for c in data["commands"] if c["command"] == "deploy")
    assert (deploy["runs"], deploy["failures"]) == (210, 6 + 15)
    assert data["spikes"][0]["command"] == "deploy"


def test_report_without_data_or_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    done = _report("--db", url)
    assert done.returncode == 1 and "no data" in done.stderr
    done = _report("--db", "mysql://nowhere")
    assert done.returncode == 1 and "unsupported database URL" in done.stderr
