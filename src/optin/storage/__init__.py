"""Collector storage: ``open_storage(url)`` gives a :class:`Storage` for SQLite or PostgreSQL.

    from optin.storage import open_storage
    with open_storage("sqlite:///optin.db") as db:
        result = db.store("demo-dfx", valid_events)   # StoreResult(accepted, duplicates, conflicts)

Raises :class:`StorageUnavailable` (answer 503 + Retry-After) and :class:`StorageFull` (507).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from optin.policy import DEFAULT_SETTINGS, Policy, PolicyError, load
from optin.storage.base import (
    Batch,
    RollupRow,
    Storage,
    StorageContended,
    StorageError,
    StorageFull,
    StorageUnavailable,
    StoreResult,
)

__all__ = [
    "Batch",
    "RollupRow",
    "Storage",
    "StorageContended",
    "StorageError",
    "StorageFull",
    "StorageUnavailable",
    "StoreResult",
    "load_policies",
    "open_storage",
    "purge_main",
]


def open_storage(url: str) -> Storage:
    """Open (and migrate) the database at ``url``: ``sqlite:///path`` or ``postgresql://...``."""
    if url.startswith("sqlite:"):
        from optin.storage.sqlite import SQLiteStorage

        return SQLiteStorage(url)
    if url.startswith(("postgresql:", "postgres:")):
        from optin.storage.postgres import PostgresStorage

        return PostgresStorage(url)
    raise StorageError(
        f"unsupported database URL {url.split('://')[0]!r}: use sqlite:///PATH or postgresql://..."
    )


def load_policies(path: str | Path) -> dict[str, Policy]:
    """A policy file, or every ``*.toml`` in a directory, keyed by app id."""
    where = Path(path)
    files = sorted(where.glob("*.toml")) if where.is_dir() else [where]
    policies: dict[str, Policy] = {}
    problems: list[str] = []
    for file in files:
        try:
            policy = load(file)
        except PolicyError as exc:
            problems.extend(exc.problems)
            continue
        if policy.app in policies:
            problems.append(f"{file}: app {policy.app!r} is also defined in another policy file")
        policies[policy.app] = policy
    if problems:
        raise PolicyError(problems)
    if not policies:
        raise PolicyError([f"{path}: no policy found (a .toml file or a directory of them)"])
    return policies


def purge_main(args: argparse.Namespace) -> int:
    """``optin purge``: delete raw events past each app's retention; rollups stay."""
    policies = load_policies(args.policies)
    now = int(time.time())
    try:
        with open_storage(args.db) as db:
            apps = sorted(set(db.apps()) | set(policies))
            for app in apps:
                policy = policies.get(app)
                days = (policy.settings if policy else DEFAULT_SETTINGS).retention_days
                before = (now // 86400 - days) * 86400
                removed = db.purge(app, before)
                note = "" if policy else " (no policy: default retention)"
                print(f"{app}: removed {removed} raw events older than {days} days{note}")
    except StorageError as exc:
        print(f"optin purge: {exc}", file=sys.stderr)
        return 1
    return 0
