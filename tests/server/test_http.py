"""The HTTP contract of docs/design.md over a real socket: every status, body and header."""

from __future__ import annotations

import gzip
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.server.helpers import APP, POLICY, ThreadServer, batch, event, hour

from optin.server.app import create_app
from optin.server.errors import STATUS_OF
from optin.server.ingest import MAX_JSON_BYTES
from optin.storage import Storage

JSON = {"content-type": "application/json"}


def post(client: httpx.Client, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post("/v1/events", content=content, headers={**JSON, **headers})


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The one error shape: exactly error + message (+ rejected on 422)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["error"] == code
    assert STATUS_OF[code] == status
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) == (
        {"error", "message", "rejected"} if status == 422 else {"error", "message"}
    )
    return body


def stored_ids(storage: Storage) -> list[str]:
    return sorted(e["id"] for e in storage.raw_events(APP))


# --- 200 ------------------------------------------------------------------------------------


def test_partial_acceptance_keeps_the_valid_events(client: httpx.Client, storage: Storage) -> None:
    good = [event(), event("active"), event("event")]
    bad = event(os="beos")
    r = post(client, batch([good[0], bad, good[1], {"kind": "nope"}, good[2]]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 3 and body["duplicates"] == 0
    assert [x["index"] for x in body["rejected"]] == [1, 3]
    assert "os" in body["rejected"][0]["reason"]
    assert stored_ids(storage) == sorted(e["id"] for e in good)


def test_a_retry_counts_duplicates_not_events(client: httpx.Client, storage: Storage) -> None:
    events = [event() for _ in range(5)]
    assert post(client, batch(events)).json() == {"accepted": 5, "duplicates": 0, "rejected": []}
    assert post(client, batch(events)).json() == {"accepted": 0, "duplicates": 5, "rejected": []}
    same_id_other_content = dict(events[0], exit_code=3, outcome="failure")
    r = post(client, batch([same_id_other_content, event()]))
    assert r.json() == {"accepted": 1, "duplicates": 1, "rejected": []}
    assert len(stored_ids(storage)) == 6
    stored = {e["id"]: e for e in storage.raw_events(APP)}
    assert stored[events[0]["id"]]["exit_code"] == 0  # the first write wins
    metrics = client.get("/metrics").text
    assert "optin_events_conflict_total 1" in metrics
    assert "optin_events_duplicate_total 5" in metrics


def test_gzip_body(client: httpx.Client, storage: Storage) -> None:
    events = [event() for _ in range(20)]
    r = post(client, gzip.compress(orjson.dumps(batch(events))), **{"content-encoding": "gzip"})
    assert r.status_code == 200 and r.json()["accepted"] == 20
    assert len(stored_ids(storage)) == 20


def test_content_type_with_utf8_charset_is_json(client: httpx.Client) -> None:
    r = post(client, batch([event()]), **{"content-type": "application/json; charset=UTF-8"})
    assert r.status_code == 200


def test_integral_floats_are_stored_as_integers(client: httpx.Client, storage: Storage) -> None:
    ev = event(time=float(hour()), exit_code=0.0)
    assert post(client, batch([ev])).json()["accepted"] == 1
    [stored] = storage.raw_events(APP)
    assert type(stored["time"]) is int and type(stored["exit_code"]) is int


# --- 400 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'"a batch"',
        b"null",
        b'{"app": "sample-cli", "policy_version": 2}',
        b'{"app": "sample-cli", "policy_version": 2, "events": {}}',
        b'{"app": "sample-cli", "policy_version": "2", "events": []}',
        b'{"app": "sample-cli", "policy_version": 2, "events": [], "ip": "1.2.3.4"}',
        b'{"app": 1, "policy_version": 2, "events": []}',
        b"NaN",
        b'{"app": "sample-cli", "policy_version": 2, "events": [NaN]}',
        b'{"app": "sample-cli", "policy_version": 2, "events": [Infinity, -Infinity]}',
        b'{"app": "sample-cli", "policy_version": 2, "events": [1e400]}',
        b'{"app": "sample-cli", "policy_version": 2, "events": ["\\ud800"]}',
        b'{"app": "sample-cli", "policy_version": 2, "events": ["\\udc00\\ud800"]}',
        b'{"app": "sample-cli", "policy_version": 2, "events": ["\xed\xa0\x80"]}',
        b'{"app": "sample-cli", "policy_version": 2, "events": ["\xff"]}',
        b'{"app": "sample-cli\xff", "policy_version": 2, "events": []}',
        b'{"app": "sample-cli", "policy_version": 2, "events": [{"os": "linux\xff"}]}',
        b"[" * 2000 + b"]" * 2000,
        b'{"app": "sample-cli", "policy_version": 2, "events": ['
        + b"[" * 1100
        + b"]" * 1101
        + b"}",
        b'{"a":' * 2000 + b"1" + b"}" * 2000,
    ],
)
def test_malformed_bodies_are_400(client: httpx.Client, storage: Storage, body: bytes) -> None:
    assert_error(post(client, body), 400, "malformed")
    assert stored_ids(storage) == []


def test_a_lone_surrogate_in_an_event_never_reaches_the_database(
    client: httpx.Client, storage: Storage
) -> None:
    good = orjson.dumps(event())
    bad = good.replace(b'"os":"linux"', b'"os":"linux\\ud800"')
    body = b'{"app":"sample-cli","policy_version":2,"events":[' + good + b"," + bad + b"]}"
    assert_error(post(client, body), 400, "malformed")
    assert stored_ids(storage) == []


def test_duplicate_keys_are_refused(client: httpx.Client, storage: Storage) -> None:
    ev = orjson.dumps(event())
    twice = ev.replace(b'"os":"linux"', b'"os":"beos","os":"linux"')
    body = b'{"app":"sample-cli","policy_version":2,"events":[' + twice + b"]}"
    assert_error(post(client, body), 400, "malformed")
    nested = ev.replace(b'"network":"local-project"', b'"network":"ic","network":"local-project"')
    body = b'{"app":"sample-cli","policy_version":2,"events":[' + nested + b"]}"
    assert_error(post(client, body), 400, "malformed")
    top = b'{"app":"other","app":"sample-cli","policy_version":2,"events":[' + ev + b"]}"
    assert_error(post(client, top), 400, "malformed")
    assert stored_ids(storage) == []
    # A colon inside a string is not a duplicate: the slow check clears it.
    junk = b'{"app":"sample-cli","policy_version":2,"events":[' + ev + b',"a:b"]}'
    assert post(client, junk).json()["accepted"] == 1


def test_corrupt_gzip_is_400(client: httpx.Client) -> None:
    assert_error(post(client, b"not gzip", **{"content-encoding": "gzip"}), 400, "malformed")
    truncated = gzip.compress(orjson.dumps(batch([event()])))[:-10]
    assert_error(post(client, truncated, **{"content-encoding": "gzip"}), 400, "malformed")


# --- 413 ------------------------------------------------------------------------------------


def test_too_many_events_is_413(client: httpx.Client) -> None:
    assert_error(post(client, batch([event() for _ in range(1001)])), 413, "too_large")


def test_over_a_mebibyte_on_the_wire_is_413(client: httpx.Client) -> None:
    body = orjson.dumps(batch([event()])) + b" " * (1 << 20)
    assert_error(post(client, body), 413, "too_large")


def test_too_many_objects_is_413_before_parsing(client: httpx.Client) -> None:
    assert_error(post(client, b"[" * 100_000 + b"]" * 100_000), 413, "too_large")
    body = b'{"app":"sample-cli","policy_version":2,"events":[' + b"{}," * 300_000 + b"{}]}"
    r = post(client, gzip.compress(body), **{"content-encoding": "gzip"})
    assert_error(r, 413, "too_large")


def test_a_gzip_bomb_is_refused_cheaply(client: httpx.Client) -> None:
    bomb = gzip.compress(b"[" + b" " * (200 << 20) + b"]", 9)  # 200 MiB of spaces
    assert len(bomb) < 1 << 20
    start = time.monotonic()
    r = post(client, bomb, **{"content-encoding": "gzip"})
    assert_error(r, 413, "too_large")
    assert time.monotonic() - start < 2
    # Just over the decompressed cap is refused too; just under is parsed.
    over = gzip.compress(b" " * MAX_JSON_BYTES + b"{}")
    assert_error(post(client, over, **{"content-encoding": "gzip"}), 413, "too_large")
    under = gzip.compress(orjson.dumps(batch([event()])) + b" " * (MAX_JSON_BYTES - 1000))
    assert post(client, under, **{"content-encoding": "gzip"}).status_code == 200


def _raw_request(port: int, head: bytes, body_chunks: int = 0, chunk: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        try:
            for _ in range(body_chunks):
                s.sendall(chunk)
        except OSError:
            pass
        s.shutdown(socket.SHUT_WR)
        data = b""
        try:
            while part := s.recv(65536):
                data += part
        except ConnectionResetError:
            pass
        return data


def test_a_100_mb_body_is_refused_without_reading_it(server: ThreadServer) -> None:
    head = (
        b"POST /v1/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 104857600\r\n\r\n"
    )
    answer = _raw_request(server.port, head)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b'"error":"too_large"' in answer


def test_a_chunked_body_over_the_cap_is_413(server: ThreadServer) -> None:
    head = (
        b"POST /v1/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"  # 64 KiB per chunk, 1.25 MiB in all
    answer = _raw_request(server.port, head, 20, chunk)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


# --- 415 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "application/json; charset=latin-1"},
        {"content-encoding": "br"},
        {"content-encoding": "gzip, gzip"},
    ],
)
def test_unsupported_media_is_415(client: httpx.Client, headers: dict[str, str]) -> None:
    assert_error(post(client, batch([event()]), **headers), 415, "unsupported_media_type")


def test_no_content_type_is_415(client: httpx.Client) -> None:
    r = client.post("/v1/events", content=orjson.dumps(batch([event()])))
    assert_error(r, 415, "unsupported_media_type")


# --- 422 ------------------------------------------------------------------------------------


def test_no_valid_event_is_422_with_every_reason(client: httpx.Client, storage: Storage) -> None:
    r = post(client, batch([event(os="beos"), 3, event(command="rm")]))
    body = assert_error(r, 422, "no_valid_events")
    assert [x["index"] for x in body["rejected"]] == [0, 1, 2]
    assert all(x["reason"] for x in body["rejected"])
    assert_error(post(client, batch([])), 422, "no_valid_events")
    assert stored_ids(storage) == []


def test_unknown_app_and_newer_policy_are_422(client: httpx.Client) -> None:
    assert_error(post(client, batch([event()], app="nobody")), 422, "unknown_app")
    r = post(client, batch([event()], version=3))
    assert_error(r, 422, "unknown_policy_version")
    # An older version than the collector has is checked against the newest one.
    assert post(client, batch([event()], version=1)).status_code == 200


def test_time_window_is_checked(client: httpx.Client, storage: Storage) -> None:
    now_ok, ahead_ok = event(), event(time=hour(2))
    too_far = event(time=hour(3))
    too_old = event(time=hour(-24 * 91))
    r = post(client, batch([now_ok, ahead_ok, too_far, too_old]))
    assert r.status_code == 200
    reasons = {x["index"]: x["reason"] for x in r.json()["rejected"]}
    assert set(reasons) == {2, 3}
    assert "future" in reasons[2] and "retention" in reasons[3]
    assert stored_ids(storage) == sorted([now_ok["id"], ahead_ok["id"]])


# --- 429 ------------------------------------------------------------------------------------


def test_a_flooding_source_gets_429_with_retry_after(db_url: str) -> None:
    app = create_app(POLICY, db_url, rate_limit=3)
    with ThreadServer(app) as srv, httpx.Client(base_url=srv.url) as client:
        statuses = [post(client, batch([event()])).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        r = post(client, batch([event()]))
        assert_error(r, 429, "rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= 20
        assert "optin_rate_limited_total 2" in client.get("/metrics").text


def test_x_forwarded_for_is_used_only_when_trusted(db_url: str) -> None:
    for trust, expected in ((False, 429), (True, 200)):
        app = create_app(POLICY, db_url, rate_limit=1, trust_proxy=trust)
        with ThreadServer(app) as srv, httpx.Client(base_url=srv.url) as client:
            assert post(client, batch([event()]), **{"x-forwarded-for": "203.0.113.7"}).is_success
            r = post(client, batch([event()]), **{"x-forwarded-for": "10.0.0.1, 203.0.113.8"})
            assert r.status_code == expected


# --- 503, 507 -------------------------------------------------------------------------------


def test_a_locked_database_is_503_with_retry_after(
    client: httpx.Client, db_url: str, storage: Storage
) -> None:
    assert post(client, batch([event()])).status_code == 200
    other = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        r = post(client, batch([event()]))
        assert_error(r, 503, "unavailable")
        assert int(r.headers["retry-after"]) >= 1
        # The writer does not wait on the lock again for every request: 503 at once.
        start = time.monotonic()
        assert_error(post(client, batch([event()])), 503, "unavailable")
        assert time.monotonic() - start < 0.4
    finally:
        other.execute("ROLLBACK")
        other.close()
    time.sleep(1.1)  # past the writer's cool-down, as a client honouring Retry-After would be
    assert post(client, batch([event()])).status_code == 200
    assert 'optin_storage_errors_total{kind="unavailable"} 2' in client.get("/metrics").text
    assert len(stored_ids(storage)) == 2


def test_a_database_that_cannot_be_opened_is_503_and_not_ready(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'optin.db'}"
    with (
        ThreadServer(create_app(POLICY, url, rate_limit=0)) as srv,
        httpx.Client(base_url=srv.url) as client,
    ):
        assert_error(post(client, batch([event()])), 503, "unavailable")
        r = client.get("/readyz")
        assert_error(r, 503, "unavailable")
        assert "retry-after" in r.headers
        assert client.get("/healthz").json() == {"status": "ok"}


def test_a_full_database_is_507_and_keeps_what_it_acknowledged(tmp_path: Path) -> None:
    """SQLite's own SQLITE_FULL, at the database size cap of the URL (``max_size_mb``)."""
    from optin.storage import open_storage

    url = f"sqlite:///{tmp_path / 'capped.db'}?max_size_mb=1"
    app = create_app(POLICY, url, rate_limit=0)
    accepted, statuses = 0, []
    with ThreadServer(app) as srv, httpx.Client(base_url=srv.url) as client:
        for _ in range(40):  # 1 MiB holds a few thousand events
            r = post(client, batch([event() for _ in range(250)]))
            statuses.append(r.status_code)
            if r.status_code != 200:
                break
            accepted += r.json()["accepted"]
        assert_error(r, 507, "insufficient_storage")
        assert client.get("/metrics").text.count('optin_storage_errors_total{kind="full"} 1') == 1
    assert statuses[0] == 200, statuses
    with open_storage(url.split("?")[0]) as storage:
        assert len(storage.raw_events(APP)) == accepted


# --- 404, 405, 408, 431 ---------------------------------------------------------------------


def test_unknown_paths_and_methods_use_the_error_shape(client: httpx.Client) -> None:
    assert_error(client.get("/v2/events"), 404, "not_found")
    r = client.get("/v1/events")
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"
    assert_error(client.post("/healthz"), 405, "method_not_allowed")
    assert_error(client.get("/v1/apps/nobody/policy"), 404, "not_found")
    assert_error(client.get("/v1/apps/nobody/notice"), 404, "not_found")


def test_a_stalled_body_is_408(db_url: str) -> None:
    app = create_app(POLICY, db_url, rate_limit=0, body_timeout=0.5)
    with ThreadServer(app) as srv, socket.create_connection(("127.0.0.1", srv.port)) as s:
        s.sendall(
            b"POST /v1/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 100\r\n\r\n{"
        )
        s.settimeout(5)
        answer = s.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b'"error":"timeout"' in answer


def test_stalled_headers_are_408(collector: Any) -> None:
    from optin.server.protocol import GuardedHttpToolsProtocol

    class Impatient(GuardedHttpToolsProtocol):
        header_timeout = 0.5

    with (
        ThreadServer(collector, Impatient) as srv,
        socket.create_connection(("127.0.0.1", srv.port)) as s,
    ):
        s.sendall(b"POST /v1/events HTTP/1.1\r\nhost: x\r\n")
        s.settimeout(5)
        answer = s.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b'"error":"timeout"' in answer


def test_oversize_headers_are_431(client: httpx.Client) -> None:
    r = client.get("/healthz", headers={"x-big": "a" * 20_000})
    assert_error(r, 431, "headers_too_large")
    assert client.get("/healthz", headers={"x-fine": "a" * 4000}).status_code == 200


# --- the other endpoints --------------------------------------------------------------------


def test_policy_and_notice_are_public(client: httpx.Client) -> None:
    r = client.get(f"/v1/apps/{APP}/policy")
    assert r.status_code == 200
    body = r.json()
    assert body["policy"]["app"] == APP and body["versions"] == [2]
    assert body["schema"]["$schema"].startswith("https://json-schema.org/")
    r = client.get(f"/v1/apps/{APP}/notice")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/markdown")
    assert "Never collected" in r.text


def test_health_ready_and_metrics(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    post(client, batch([event(), event(os="beos")]))
    text = client.get("/metrics").text
    assert "optin_events_accepted_total 1" in text
    assert 'optin_events_rejected_total{reason="os"} 1' in text
    assert 'optin_ingest_responses_total{status="200"} 1' in text
    assert 'optin_ingest_seconds_bucket{le="+Inf"} 1' in text
