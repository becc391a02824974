"""The collector with a storage that stores nothing: what HTTP, validation and preparing cost.

    python bench/null_collector.py PORT

Everything of ``optin serve`` (same app, same uvicorn settings) except the database: ``store``
returns at once. ``bench_ingest.py`` runs it beside the real collector to split the time between
the collector's own work and the storage's.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import uvicorn

from optin.server.app import create_app
from optin.server.run import server_options
from optin.storage import StoreResult
from optin.storage.base import PreparedBatch

POLICY = Path(__file__).resolve().parents[1] / "tests" / "data" / "policy.toml"


class NullStorage:
    def store(self, app: str, events: Sequence[Mapping[str, Any]]) -> StoreResult:
        return StoreResult(len(events), 0, 0)

    def store_prepared(self, batches: Sequence[PreparedBatch]) -> list[StoreResult]:
        return [StoreResult(len(b.rows), b.duplicates, b.conflicts) for b in batches]

    def ping(self) -> None:
        pass

    def close(self) -> None:
        pass


if __name__ == "__main__":
    app = create_app(POLICY, "sqlite:///unused.db", rate_limit=0, writer_inline=True)
    app.writer._opener = lambda url: NullStorage()  # type: ignore[assignment,return-value]
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), **server_options())
