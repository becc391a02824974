"""The collector on a real PostgreSQL server: several collector processes on one database (as
behind a load balancer), and a database that goes away and comes back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.conftest import PgServer
from tests.server.helpers import APP, POLICY, ProcessServer, ThreadServer, batch, event

from optin.server.app import create_app
from optin.storage import open_storage

pytestmark = pytest.mark.postgres
JSON = {"content-type": "application/json"}


def post(client: httpx.Client, events: list[Any]) -> httpx.Response:
    return client.post("/v1/events", content=orjson.dumps(batch(events)), headers=JSON)


def test_two_collectors_on_one_database_store_each_event_once(tmp_path: Path, pg_url: str) -> None:
    events = [event() for _ in range(300)]
    chunks = [events[i : i + 50] for i in range(0, 300, 25)]  # overlapping, as retries would
    with (
        ProcessServer(tmp_path, pg_url, "--rate-limit", "0") as one,
        ProcessServer(tmp_path, pg_url, "--rate-limit", "0", "--workers", "2") as two,
        httpx.Client(base_url=one.url, timeout=20) as a,
        httpx.Client(base_url=two.url, timeout=20) as b,
    ):
        accepted = duplicates = 0
        for i, chunk in enumerate(chunks):
            for client in (a, b) if i % 2 else (b, a):
                r = post(client, chunk)
                assert r.status_code == 200, r.text
                accepted += r.json()["accepted"]
                duplicates += r.json()["duplicates"]
    assert accepted == 300
    assert accepted + duplicates == 2 * sum(map(len, chunks))
    with open_storage(pg_url) as storage:
        stored = [e["id"] for e in storage.raw_events(APP)]
    assert sorted(stored) == sorted(e["id"] for e in events)


def test_a_stopped_database_is_503_then_recovers(pg_server: PgServer, pg_url: str) -> None:
    app = create_app(POLICY, pg_url + "?pool_timeout=1", rate_limit=0)
    with ThreadServer(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        assert post(client, [event()]).status_code == 200
        pg_server.stop()
        try:
            r = post(client, [event()])
            assert r.status_code == 503, r.text
            assert r.json()["error"] == "unavailable"
            assert int(r.headers["retry-after"]) >= 1
            assert client.get("/readyz").status_code == 503
        finally:
            pg_server.start()
        # A client retries after a pause (the collector answers 503 at once for a second
        # after the storage failed, and the pool replaces its stale connections).
        deadline = time.monotonic() + 15
        while (r := post(client, [event()])).status_code != 200 and time.monotonic() < deadline:
            assert r.status_code == 503, r.text
            time.sleep(0.2)
        assert r.status_code == 200, r.text
        assert client.get("/readyz").status_code == 200
