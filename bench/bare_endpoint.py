"""The ceiling for ``bench_ingest.py``: parse a batch with orjson, insert its events into SQLite.

No validation, no deduplication, no rollups, no rate limiting; one transaction per request with
the collector's durability settings (WAL, synchronous=NORMAL), on the loop (nothing to wait for).

    python bench/bare_endpoint.py PORT DB_PATH
"""

from __future__ import annotations

import sqlite3
import sys
from typing import Any

import orjson

SCHEMA = "CREATE TABLE IF NOT EXISTS events (id TEXT, app TEXT, time INTEGER, body BLOB)"
INSERT = "INSERT INTO events (id, app, time, body) VALUES (?, ?, ?, ?)"


def connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute(SCHEMA)
    return db


def rows(batch: dict[str, Any]) -> list[tuple[Any, ...]]:
    app = batch["app"]
    return [(e["id"], app, e["time"], orjson.dumps(e)) for e in batch["events"]]


class Bare:
    def __init__(self, path: str) -> None:
        self.db = connect(path)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        batch = orjson.loads(body)
        db = self.db
        db.execute("BEGIN")
        db.executemany(INSERT, rows(batch))
        db.execute("COMMIT")
        out = orjson.dumps({"accepted": len(batch["events"])})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(out)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": out})


if __name__ == "__main__":
    import uvicorn

    from optin.server.run import server_options

    uvicorn.run(Bare(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]), **server_options())
