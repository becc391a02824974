"""The typed fast path gives the slow path's answer, or leaves the batch to it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.server.helpers import APP, POLICY, event, hour
from tests.strategies import json_values, mutated_events, valid_events

from optin.server.errors import HTTPError
from optin.server.ingest import Batch, Policies, _parse_fast, parse_batch, parse_slow

POLICIES = Policies.load(POLICY)
POL = POLICIES.latest(APP)
assert POL is not None


def body(events: Any, version: Any = 2, app: Any = APP) -> bytes:
    return orjson.dumps({"app": app, "policy_version": version, "events": events})


def check_agree(raw: bytes, now: float) -> Batch | None:
    """The fast path's answer, after checking it is the slow path's."""
    fast = _parse_fast(raw, POLICIES, now)
    try:
        slow: Batch | HTTPError = parse_slow(raw, POLICIES, now)
    except HTTPError as exc:
        slow = exc
    if fast is not None:
        assert isinstance(slow, Batch), slow
        assert (fast.app, fast.policy, fast.valid, fast.rejected) == (
            slow.app,
            slow.policy,
            slow.valid,
            slow.rejected,
        )
    return fast


def in_window(events: list[Any]) -> list[Any]:
    """Every other event moved to the current hour (the rest keep far-off times: refused)."""
    for ev in events[::2]:
        if isinstance(ev, dict) and type(ev.get("time")) is int:
            ev["time"] = hour()
    return events


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_events(POL) | valid_events(POL), max_size=8))
def test_the_fast_path_answers_as_the_slow_path(events: list[Any]) -> None:
    check_agree(body(in_window(events)), hour() + 1)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, json_values, st.lists(valid_events(POL), max_size=2))
def test_a_broken_envelope_is_left_to_the_slow_path(
    version: Any, app: Any, events: list[Any]
) -> None:
    check_agree(body(in_window(events), version, app), hour() + 1)
    check_agree(orjson.dumps(version), hour() + 1)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_events(POL), min_size=1, max_size=8))
def test_valid_batches_take_the_fast_path(events: list[Any]) -> None:
    """Else the fast path would be dead code that only looks right."""
    assert check_agree(body(in_window(events)), hour() + 1) is not None


def test_events_past_the_window_are_refused_one_by_one() -> None:
    old, new = event(time=hour() - 400 * 86400), event()
    batch = check_agree(body([old, new]), hour() + 1)
    assert batch is not None
    assert batch.valid == [new]
    assert [i for i, _ in batch.rejected] == [0]
    assert "older than the retention" in batch.rejected[0][1]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (body([event(), event(unknown=1)]), "an unknown key, which msgspec drops"),
        (body([event(time=float(hour()))]), "an integral float, which the reference accepts"),
        (body([event(), event(os="beos")]), "one invalid event among valid ones"),
        (body([event(options=["no-such-option"])]), "an option the command does not declare"),
        (body([event()]).replace(b'"os":', b'"os":"linux","os":', 1), "a key given twice"),
        (b'{"app":"sample-cli","app":"x","policy_version":2,"events":[]}', "a key given twice"),
        (b"[" * 5000 + b"]" * 5000, "nesting past msgspec's limit"),
        (body([event()], version=True), "a boolean version"),
        (b'{"app":"sample-cli\xff","policy_version":2,"events":[]}', "invalid UTF-8 in the app"),
        (body([event()]).replace(b'"linux"', b'"linux\xff"'), "invalid UTF-8 in a closed value"),
        (body([event()]).replace(b'"1.2.3"', b'"1.2\xed\xa0\x80"'), "an encoded surrogate"),
        (body([event()]).replace(b'"x86_64"', b'"x86_\xc0\xaf"'), "an overlong sequence"),
    ],
)
def test_what_the_fast_path_leaves_to_the_slow_path(raw: bytes, why: str) -> None:
    assert check_agree(raw, hour() + 1) is None, why
    try:
        parse_batch(raw, POLICIES, hour() + 1)
    except HTTPError as exc:
        assert exc.status < 500


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_events(POL), min_size=1, max_size=3), st.data())
def test_a_byte_changed_anywhere_is_answered_not_raised(events: list[Any], data: Any) -> None:
    """Any byte at any place of a valid batch: an answer from one path or the other, no crash
    (invalid UTF-8 inside a string once escaped the fast path as UnicodeDecodeError: a 500)."""
    raw = bytearray(body(in_window(events)))
    raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        check_agree(bytes(raw), hour() + 1)
        parse_batch(bytes(raw), POLICIES, hour() + 1)
    except HTTPError as exc:
        assert exc.status < 500
