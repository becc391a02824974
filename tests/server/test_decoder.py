"""Hypothesis on the decoder: nothing a client sends raises anything but a refusal, and no
invalid event is ever stored."""

from __future__ import annotations

import copy
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.server.helpers import APP, POLICY, ThreadServer, batch, hour
from tests.strategies import json_values, mutated_events, valid_events

from optin.events import Invalid, validate_event
from optin.server.app import Collector, create_app
from optin.server.errors import STATUS_OF, HTTPError
from optin.server.ingest import Policies, check_media_type, inflate, parse_batch
from optin.storage import Storage, open_storage

POLICIES = Policies.load(POLICY)
POL = POLICIES.latest(APP)
assert POL is not None


def accepted_by_reference(ev: Any) -> bool:
    try:
        validate_event(POL, copy.deepcopy(ev))  # type: ignore[arg-type]
    except Invalid:
        return False
    return True


def now_hour(ev: Any) -> Any:
    """Move generated events into the collector's time window (when they have a plain time)."""
    if (
        isinstance(ev, dict)
        and isinstance(ev.get("time"), int)
        and not isinstance(ev["time"], bool)
    ):
        ev["time"] = hour()
    return ev


def decode_any(raw: bytes, gz: bool = False) -> Any:
    try:
        return parse_batch(inflate(raw) if gz else raw, POLICIES, hour() + 1)
    except HTTPError as exc:
        assert exc.code in STATUS_OF
        return exc


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_any_bytes_are_answered_not_raised(raw: bytes) -> None:
    decode_any(raw)
    decode_any(b'{"app":"sample-cli","policy_version":2,"events":[' + raw + b"]}")
    result = decode_any(raw, gz=True) if raw else None
    assert result is None or isinstance(result, HTTPError)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_is_answered_not_raised(value: Any) -> None:
    decode_any(orjson.dumps(value))
    decode_any(orjson.dumps({"app": APP, "policy_version": 2, "events": [value]}))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_events(POL) | valid_events(POL), max_size=8))
def test_a_batch_keeps_exactly_what_the_reference_accepts(events: list[Any]) -> None:
    events = [now_hour(e) for e in events]
    raw = orjson.dumps({"app": APP, "policy_version": 2, "events": events})
    result = parse_batch(raw, POLICIES, hour() + 1)
    expected = [i for i, e in enumerate(events) if accepted_by_reference(e)]
    rejected = [i for i, _ in result.rejected]
    assert sorted(set(range(len(events))) - set(rejected)) == expected
    assert len(result.valid) == len(expected)


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_media_type_checks_only_refuse(ctype: bytes, encoding: bytes) -> None:
    try:
        check_media_type(ctype, encoding)
    except HTTPError as exc:
        assert exc.status == 415


def test_a_nested_gzip_bomb_is_bounded() -> None:
    inner = gzip.compress(b" " * (50 << 20))
    with pytest.raises(HTTPError) as info:  # a gzip of a gzip is not JSON: refused, not inflated
        parse_batch(inflate(gzip.compress(inner)), POLICIES, hour())
    assert info.value.status == 400


# --- over the socket: nothing invalid is ever stored ------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Storage]]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('fuzz')) / 'optin.db'}"
    app: Collector = create_app(POLICY, url, rate_limit=0)
    with (
        ThreadServer(app) as srv,
        httpx.Client(base_url=srv.url) as client,
        open_storage(url) as storage,
    ):
        yield client, storage


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(mutated_events(POL), min_size=1, max_size=6))
def test_no_invalid_event_is_ever_stored(
    live: tuple[httpx.Client, Storage], events: list[Any]
) -> None:
    client, storage = live
    events = [now_hour(e) for e in events]
    before = {e["id"] for e in storage.raw_events(APP)}
    r = client.post(
        "/v1/events",
        content=orjson.dumps(batch(events)),
        headers={"content-type": "application/json"},
    )
    assert r.status_code in (200, 400, 422), r.text
    new = {e["id"] for e in storage.raw_events(APP)} - before
    valid_ids = {e["id"] for e in events if accepted_by_reference(e)}
    assert new <= valid_ids
    if r.status_code == 200:
        assert {x["index"] for x in r.json()["rejected"]} == {
            i for i, e in enumerate(events) if not accepted_by_reference(e)
        }


@pytest.mark.slow
@settings(max_examples=5000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000) | json_values.map(orjson.dumps))
def test_any_body_is_answered_not_raised_long(raw: bytes) -> None:
    decode_any(raw)
    decode_any(b'{"app":"sample-cli","policy_version":2,"events":[' + raw + b"]}")
