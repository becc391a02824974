"""The compiled checker gives the reference validator's verdicts, on generated events."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.server.helpers import POLICY, event, hour
from tests.strategies import json_values, mutated_events, valid_events

from optin.events import PYTHON_RE, VERSION_RE, Invalid, validate_event
from optin.policy import load
from optin.server.validate import compile_policy, reason_label, version_checks, window_reason

POL = load(POLICY)
CHECK = compile_policy(POL)


def reference(ev: Any) -> bool:
    try:
        validate_event(POL, copy.deepcopy(ev))
    except Invalid:
        return False
    return True


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(valid_events(POL))
def test_valid_events_pass(ev: dict[str, Any]) -> None:
    assert reference(ev)
    assert CHECK(ev) > 0


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_events(POL) | json_values)
def test_same_verdict_as_the_reference(ev: Any) -> None:
    expected = reference(ev)
    assert bool(CHECK(copy.deepcopy(ev))) is expected


@pytest.mark.slow
@settings(max_examples=5_000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_events(POL))
def test_same_verdict_as_the_reference_long(ev: Any) -> None:
    assert bool(CHECK(copy.deepcopy(ev))) is reference(ev)


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"time": float(hour())}, True),
        ({"time": hour() + 0.5}, False),
        ({"time": True}, False),
        ({"exit_code": 0.0}, True),
        ({"exit_code": False}, False),
        ({"duration_ms": -1}, False),
        ({"id": "0" * 32 + "\n"}, False),
        ({"python": "3.12\n"}, False),
        ({"options": ["mode", "mode"]}, False),
        ({"options": ["mode", ["x"]]}, False),
        ({"values": {"mode": "other"}}, True),
        ({"values": {"mode": ["upgrade"]}}, False),
        ({"dimensions": {"network": {}}}, False),
        ({"command": "<unknown>", "options": [], "values": {}}, True),
        ({"command": "<unknown>", "options": [], "values": {}, "positionals": 1}, False),
        ({"command": "deploy", "options": [], "values": {}, "positionals": 3}, True),
        ({"command": "deploy", "options": [], "values": {}, "positionals": 3.0}, True),
        ({"command": ["deploy"]}, False),
        ({"error": "ConnectionError"}, True),
        ({"error": "Nope"}, False),
    ],
)
def test_edge_cases(fields: dict[str, Any], ok: bool) -> None:
    ev = event(**fields)
    assert reference(ev) is ok
    assert bool(CHECK(ev)) is ok


@pytest.mark.parametrize(
    "props", [{"seconds": 30.0}, {"seconds": True}, {"seconds": 7}, {"phase": 1}, {"ok": 1}]
)
def test_property_edge_cases(props: dict[str, Any]) -> None:
    ev = event("event", properties=props)
    assert bool(CHECK(copy.deepcopy(ev))) is reference(ev)


def test_integral_floats_become_ints() -> None:
    ev = event(time=float(hour()), exit_code=2.0, duration_ms=5.0)
    assert CHECK(ev) > 0
    assert [type(ev[k]) for k in ("time", "exit_code", "duration_ms")] == [int, int, int]
    custom = event("event", properties={"seconds": 30.0})
    assert CHECK(custom) > 0 and type(custom["properties"]["seconds"]) is int


def test_time_window() -> None:
    now = hour() + 1800.0
    assert window_reason(hour(), now, 90) is None
    assert window_reason(hour(2), now, 90) is None
    assert "future" in str(window_reason(hour(3), now, 90))
    assert "retention" in str(window_reason(hour(-24 * 91), now, 90))


@given(st.text(max_size=60))
def test_reason_labels_are_bounded(reason: str) -> None:
    label = reason_label(reason)
    assert label in ("other", "unknown_field", "missing_field", "not_an_object", "time_window") or (
        reason.startswith(f"field '{label}'")
    )


@given(st.from_regex(VERSION_RE), st.from_regex(PYTHON_RE), st.text(max_size=40))
def test_remembered_version_verdicts_are_the_regexes(version: str, python: str, text: str) -> None:
    versions, pythons = version_checks()
    assert versions[version] and pythons[python]
    assert versions[text] == bool(re.match(VERSION_RE, text))
    assert pythons[text] == bool(re.match(PYTHON_RE, text))


def test_a_long_version_is_refused_without_being_kept() -> None:
    """4,096 requests with a different 1 MB "version" each must not hold 4 GB."""
    versions, _ = version_checks()
    long = "1" * 1_000_000
    assert versions[long] is False
    assert versions["1" * 32] is True
    assert versions["1" * 33] is False
    assert long not in versions and len(versions) == 1
