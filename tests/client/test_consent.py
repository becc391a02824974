"""consent.resolve: the order of the overrides, fail-closed values, version and expiry."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.client.conftest import POLICY

from optin.client import consent
from optin.policy import load

POL = load(POLICY)
NOW = 1_795_000_000.0  # 2026-11-18


def decide(
    tmp_path: Path, env: dict[str, str] | None = None, interactive: bool = False, **kw: object
) -> consent.Decision:
    return consent.resolve(
        "sample-cli",
        lambda: POL,
        env or {},
        str(tmp_path / "config"),
        now=kw.pop("now", NOW),  # type: ignore[arg-type]
        interactive=interactive,
        cwd=str(tmp_path),
        **kw,  # type: ignore[arg-type]
    )


def store(tmp_path: Path, state: str, version: int = 2, when: float = NOW) -> None:
    consent.write_stored(str(tmp_path / "config"), state, version, when)


@pytest.mark.parametrize(
    ("env", "state", "source"),
    [
        ({"DO_NOT_TRACK": "1", "SAMPLE_CLI_TELEMETRY": "on"}, "off", "DO_NOT_TRACK"),
        ({"DO_NOT_TRACK": "0", "SAMPLE_CLI_TELEMETRY": "on"}, "on", "SAMPLE_CLI_TELEMETRY"),
        ({"SAMPLE_CLI_DISABLE_TELEMETRY": "true"}, "off", "SAMPLE_CLI_DISABLE_TELEMETRY"),
        ({"SAMPLE_CLI_DISABLE_TELEMETRY": "false"}, "on", "stored choice"),
        ({"SAMPLE_CLI_TELEMETRY": "LOCAL"}, "local", "SAMPLE_CLI_TELEMETRY"),
        ({"SAMPLE_CLI_TELEMETRY": "off"}, "off", "SAMPLE_CLI_TELEMETRY"),
        ({"SAMPLE_CLI_TELEMETRY": "1"}, "off", "SAMPLE_CLI_TELEMETRY"),  # fail closed
        ({"CI": "true"}, "off", "CI"),
        ({"CI": "true", "SAMPLE_CLI_TELEMETRY": "on"}, "on", "SAMPLE_CLI_TELEMETRY"),
        ({"CI": "false"}, "on", "stored choice"),
    ],
)
def test_environment_overrides(
    tmp_path: Path, env: dict[str, str], state: str, source: str
) -> None:
    store(tmp_path, "on")
    d = decide(tmp_path, env)
    assert (d.state, d.source) == (state, source)


def test_host_override(tmp_path: Path) -> None:
    store(tmp_path, "on")
    assert decide(tmp_path, override=lambda: None).state == "on"
    d = decide(tmp_path, override=lambda: ("off", "TELEMETRY=false in context dev"))
    assert (d.state, d.source, d.reason) == (
        "off",
        "host override",
        "TELEMETRY=false in context dev",
    )
    assert decide(tmp_path, override=lambda: "off").state == "off"

    def broken() -> None:
        raise RuntimeError("boom")

    assert decide(tmp_path, override=broken).state == "off"


@pytest.mark.parametrize(
    ("text", "stored", "state"),
    [
        ('telemetry = "off"\n', "on", "off"),
        ('[sample-cli]\ntelemetry = "off"\n', "on", "off"),
        ('[other-tool]\ntelemetry = "off"\n', "on", "on"),
        ('telemetry = "local"\n', "on", "local"),
        ('telemetry = "on"\n', "off", "off"),  # a project cannot consent for a user
        ('telemetry = "maybe"\n', "on", "off"),
        ("not toml [", "on", "off"),
    ],
)
def test_project_file(tmp_path: Path, text: str, stored: str, state: str) -> None:
    store(tmp_path, stored)
    (tmp_path / ".optin.toml").write_text(text)
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    d = consent.resolve(
        "sample-cli",
        lambda: POL,
        {},
        str(tmp_path / "config"),
        now=NOW,
        interactive=False,
        cwd=str(nested),
    )
    assert d.state == state


def test_unset_asks_only_at_a_terminal(tmp_path: Path) -> None:
    assert decide(tmp_path).state == "off"
    assert decide(tmp_path, interactive=True).state == "ask"


def test_raised_version_reasks_a_yes_never_a_no(tmp_path: Path) -> None:
    store(tmp_path, "on", version=1)
    assert decide(tmp_path, interactive=True).state == "ask"
    assert decide(tmp_path).state == "off"  # meanwhile, without a terminal: off
    store(tmp_path, "off", version=1)
    assert decide(tmp_path, interactive=True).state == "off"


def test_consent_expires(tmp_path: Path) -> None:
    year = 365 * 86400
    store(tmp_path, "on", when=NOW - year + 5 * 86400)
    assert decide(tmp_path, interactive=True).state == "on"
    store(tmp_path, "on", when=NOW - year - 86400)
    assert decide(tmp_path, interactive=True).state == "ask"
    store(tmp_path, "off", when=NOW - 3 * year)
    assert decide(tmp_path, interactive=True).state == "off"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        '{"state": "yes", "policy_version": 2, "date": "2026-01-01"}',
        "[1]",
        '{"state": "on", "policy_version": "2", "date": "2026-01-01"}',
        '{"state": "on", "policy_version": 2, "date": "yesterday"}',
    ],
)
def test_a_damaged_consent_file_is_off_and_never_asks(tmp_path: Path, text: str) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "consent.json").write_text(text)
    d = decide(tmp_path, interactive=True)
    assert (d.state, d.source) == ("off", "consent file")


def test_hand_written_json_is_read(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "consent.json").write_text(
        '{\n  "date": "2026-11-01",\n  "state": "local",\n  "policy_version": 2\n}'
    )
    assert decide(tmp_path).state == "local"


def test_the_stored_file_is_small_json(tmp_path: Path) -> None:
    import json

    store(tmp_path, "local")
    data = json.loads((tmp_path / "config" / "consent.json").read_text())
    assert data == {
        "state": "local",
        "policy_version": 2,
        "date": time.strftime("%Y-%m-%d", time.gmtime(NOW)),
    }


def test_deciding_off_never_loads_the_policy(tmp_path: Path) -> None:
    def no_policy() -> None:
        raise AssertionError("the policy was loaded")

    store(tmp_path, "off")
    d = consent.resolve(
        "sample-cli",
        no_policy,
        {},
        str(tmp_path / "config"),
        now=NOW,
        interactive=True,  # type: ignore[arg-type]
        cwd=str(tmp_path),
    )
    assert d.state == "off"
