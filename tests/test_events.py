"""The reference validator and the JSON Schema must agree on every event."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from tests.strategies import mutated_events, valid_events

from optin import events, policy

POLICY = policy.load(Path(__file__).parent / "data" / "policy.toml")
SCHEMA = events.json_schema(POLICY)
SCHEMA_CHECK = jsonschema.Draft202012Validator(SCHEMA)


def reference_ok(event: Any) -> bool:
    try:
        events.validate_event(POLICY, event)
    except events.Invalid:
        return False
    return True


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(valid_events(POLICY))
def test_generated_valid_events_pass_both(event: dict[str, Any]) -> None:
    assert reference_ok(event)
    assert SCHEMA_CHECK.is_valid(event)


@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_events(POLICY))
def test_schema_and_validator_agree_on_mutations(event: Any) -> None:
    assert SCHEMA_CHECK.is_valid(copy.deepcopy(event)) == reference_ok(event), event


def _command(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": "0" * 32,
        "kind": "command",
        "time": 1_795_420_800,
        "session": "a" * 16,
        "app_version": "1.2.3",
        "os": "linux",
        "arch": "x86_64",
        "python": "3.12",
        "ci": False,
        "interactive": True,
        "command": "canister.install",
        "options": ["mode"],
        "values": {"mode": "upgrade"},
        "dimensions": {"network": "ic"},
        "outcome": "success",
        "exit_code": 0,
        "duration_ms": 12,
        "slow": False,
    }
    event.update(changes)
    return event


def test_a_valid_command_event_passes() -> None:
    events.validate_event(POLICY, _command())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"os": "beos"}, "field 'os'"),
        ({"time": 1_795_420_801}, "not truncated to the hour"),
        ({"command": "rm -rf /home/alice"}, "field 'command'"),
        ({"options": ["password"]}, "not an option of 'canister.install'"),
        ({"values": {"mode": "nuke"}}, "field 'values.mode'"),
        ({"values": {"yes": "other"}}, "not declared in the policy"),
        ({"positionals": 1}, "does not capture it"),
        ({"error": "alice@example.com could not connect"}, "field 'error'"),
        ({"message": "free text"}, "unknown field"),
        ({"exit_code": True}, "field 'exit_code'"),
        ({"dimensions": {"network": "mainnet"}}, "field 'dimensions.network'"),
        ({"session": "not-hex"}, "field 'session'"),
    ],
)
def test_invalid_command_events_say_why(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(events.Invalid, match=reason):
        events.validate_event(POLICY, _command(**changes))
    assert not SCHEMA_CHECK.is_valid(_command(**changes))


def test_refusal_never_echoes_a_long_value() -> None:
    secret = "token-" + "x" * 200
    with pytest.raises(events.Invalid) as info:
        events.validate_event(POLICY, _command(app_version=secret))
    assert secret not in str(info.value)


def test_batch_keeps_the_valid_events_beside_invalid_ones() -> None:
    result = events.validate_batch(POLICY, [_command(), {"kind": "command"}, _command(os="beos")])
    assert [e["id"] for e in result.valid] == ["0" * 32]
    assert [i for i, _ in result.rejected] == [1, 2]


@pytest.mark.parametrize("field", ["id", "session", "app_version", "python"])
def test_a_trailing_newline_is_refused_by_both(field: str) -> None:
    event = _command()
    event[field] = event[field] + "\n"
    assert not reference_ok(event)
    assert not SCHEMA_CHECK.is_valid(event)
