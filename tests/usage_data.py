"""A deterministic population of simulated users for ``tests/data/policy.toml``: 100 days of
active pings, commands and custom events, with a few deliberately rare cells (a version, an OS,
an option used by fewer than ten runs) for the suppression tests."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from optin.storage import open_storage

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "tests" / "data" / "policy.toml"
APP = "sample-cli"
DAYS = 100
RARE_VERSION = "0.9.0-rare"
RARE_OS = "freebsd"


def _common(rng: random.Random, kind: str, day: int, version: str, os_: str) -> dict[str, Any]:
    return {
        "id": rng.randbytes(16).hex(),
        "kind": kind,
        "time": day * 86400 + rng.randrange(24) * 3600,
        "app_version": version,
        "os": os_,
        "arch": "x86_64",
        "python": "3.12",
        "ci": False,
        "interactive": True,
    }


def events_for(last_day: int, users: int = 40, seed: int = 7) -> list[dict[str, Any]]:
    """Every event of the population over the ``DAYS`` days ending ``last_day``."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    months_seen: set[tuple[int, str]] = set()
    for day in range(last_day - DAYS + 1, last_day + 1):
        for user in range(users):
            if rng.random() > 0.6:
                continue
            version = "1.2.3" if user % 3 else "1.3.0"
            os_ = "macos" if user % 4 == 0 else "linux"
            session = f"{(user * 100_003 + day) % 16**16:016x}"
            out.append({**_common(rng, "active", day, version, os_), "period": "day"})
            month = f"{day // 30}"
            if (user, month) not in months_seen:
                months_seen.add((user, month))
                out.append({**_common(rng, "active", day, version, os_), "period": "month"})
            for _ in range(rng.randrange(1, 4)):
                command = rng.choice(["canister.install", "deploy", "start"])
                failed = rng.random() < (0.5 if day == last_day - 3 else 0.1)
                event = {
                    **_common(rng, "command", day, version, os_),
                    "session": session,
                    "command": command,
                    "options": [],
                    "dimensions": {"network": rng.choice(["ic", "local-project"])},
                    "outcome": "failure" if failed else "success",
                    "exit_code": 1 if failed else 0,
                    "duration_ms": int(rng.lognormvariate(7, 1)),
                    "slow": False,
                }
                if failed:
                    event["error"] = rng.choice(["ProviderNotFound", "ConnectionError"])
                if command == "canister.install":
                    event["options"] = ["mode"]
                    event["values"] = {"mode": rng.choice(["install", "upgrade"])}
                if command == "deploy":
                    event["positionals"] = rng.randrange(3)
                out.append(event)
            if rng.random() < 0.2:
                out.append(
                    {
                        **_common(rng, "event", day, version, os_),
                        "session": session,
                        "name": "start_finish",
                        "properties": {"ok": True, "seconds": 5, "phase": "fresh"},
                        "dimensions": {},
                    }
                )
    # The rare cells: three uses of --yes, two runs of a rare version, one on a rare OS.
    day = last_day - 1
    for i in range(3):
        rare = {
            **_common(rng, "command", day, RARE_VERSION if i < 2 else "1.2.3", "linux"),
            "session": "00000000000000aa",
            "command": "canister.install",
            "options": ["yes"],
            "dimensions": {},
            "outcome": "success",
            "exit_code": 0,
            "duration_ms": 50,
            "slow": False,
        }
        out.append(rare)
    out.append({**_common(rng, "active", day, "1.2.3", RARE_OS), "period": "day"})
    return out


def fill(db_url: str, last_day: int) -> list[dict[str, Any]]:
    """Store the population in the database at ``db_url``; returns the events."""
    events = events_for(last_day)
    with open_storage(db_url) as db:
        for start in range(0, len(events), 1000):
            db.store(APP, events[start : start + 1000])
    return events
