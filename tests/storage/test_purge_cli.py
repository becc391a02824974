"""``optin purge`` as an operator runs it: each app's retention from its policy."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.storage.helpers import APP, T0, command, snapshot

from optin.storage import open_storage

POLICY_FILE = Path(__file__).parent.parent / "data" / "policy.toml"


def test_purge_command(storage_url: str) -> None:
    today = int(time.time()) // 86400 * 86400
    recent = command(2, hour=(today - 86400 - T0) // 3600)
    with open_storage(storage_url) as db:
        db.store(APP, [command(1), recent])  # T0 is far more than 90 days ago
        db.store("unlisted-app", [command(3)])
        rollups = snapshot(db)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "optin",
            "purge",
            "--db",
            storage_url,
            "--policies",
            str(POLICY_FILE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"{APP}: removed 1 raw events older than 90 days" in done.stdout
    assert "unlisted-app: removed 1 raw events older than 90 days (no policy" in done.stdout
    with open_storage(storage_url) as db:
        assert db.raw_events(APP) == [recent]
        assert snapshot(db) == rollups


def test_purge_command_unavailable_database(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "optin",
            "purge",
            "--db",
            "postgresql://postgres@127.0.0.1:9/x",
            "--policies",
            str(POLICY_FILE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "optin purge: PostgreSQL at 127.0.0.1:9/x" in done.stderr
