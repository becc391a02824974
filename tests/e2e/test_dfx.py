"""demo-dfx end to end: what DFX's data-capture note (seeds 000, 001) asks for, on a real collector.

One scenario per module (the installed ``demo-dfx``, a pseudo-terminal for the prompt, a real
``optin serve``); each test checks one documented behaviour on what the collector stored.
"""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from tests.e2e.harness import PROMPT, ROOT, User, assert_no_canary, pipeline, places, wait_until

APP = "demo-dfx"
POLICY = ROOT / "examples" / "demo-dfx" / "src" / "demo_dfx" / "telemetry.toml"
VERSION = "0.14.2"

CANISTER = "canary-canister-7f3a"
MISSING = "missing-canary-9b1c"
PRINCIPAL = "canary-principal-2vxsx-fae"
IDENTITY = "canary-identity-42"
AMOUNT_BIG = "1234.5678"
AMOUNT = "7.7777"
MEMO = "8675309123"
NETWORK_URL = "https://canary-network.example:4943"
CANARIES = [CANISTER, MISSING, PRINCIPAL, IDENTITY, AMOUNT_BIG, AMOUNT, MEMO, "canary-network"]

#: (argv, expected exit status) run after the user said yes, in order.
SCENARIO: list[tuple[tuple[str, ...], int]] = [
    (("deploy",), 0),
    (("deploy", CANISTER), 0),
    (("canister", "create", CANISTER), 0),
    (("canister", "install", CANISTER, "--mode", "upgrade"), 0),
    (("canister", "install", MISSING, "--mode", "reinstall"), 255),
    (("ledger", "transfer", PRINCIPAL, "--icp", AMOUNT_BIG, "--memo", MEMO, "--network=ic"), 255),
    (("ledger", "transfer", PRINCIPAL, "--icp", AMOUNT, "--memo", MEMO, "--network=ic"), 0),
    (("identity", "new", IDENTITY, "--storage-mode", "plaintext"), 0),
    (("canister", "install", CANISTER, "--mode", "bogus"), 2),
    (("deploy", "--network", NETWORK_URL), 0),
]


@pytest.fixture(scope="module")
def dfx(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("dfx")
    with pipeline(tmp, POLICY) as (collector, relay):
        # Bob presses Enter at the question: the default is no.
        bob = User(APP, tmp / "bob", relay.url)
        bob_start = bob.run_tty("start", "--background", answer="")
        bob_deploy = bob.run("deploy")
        bob_files = bob.files()
        bob_requests = relay.count()

        alice = User(APP, tmp / "alice", relay.url)
        version = alice.run_tty("--version")
        helped = alice.run_tty("--help")
        started = alice.run_tty("start", "--background", answer="y")
        results = []
        for argv, code in SCENARIO:
            result = alice.run(*argv)
            assert result.code == code, (argv, result)
            results.append(result)
        # The day's one background upload (spawned after "start") is over before the last
        # commands, so their events are pending when `telemetry show` runs.
        wait_until(lambda: not alice.uploading(), what="the background upload")
        project = tmp / "alice" / "my-dapp"
        project.mkdir()
        (project / "dfx.json").write_text('{"canisters": {}}')
        assert alice.run("deploy", cwd=project).code == 0
        assert alice.run("stop").code == 0
        shown = alice.run("telemetry", "show")
        spool = alice.spool_bytes()
        uploaded = alice.upload()
        expected = 2 + len(SCENARIO) + 3  # start, scenario, deploy in project, stop; 2 pings
        wait_until(lambda: len(collector.events(APP)) >= expected, what="every event stored")
        yield SimpleNamespace(
            collector=collector,
            relay=relay,
            alice=alice,
            bob=bob,
            bob_start=bob_start,
            bob_deploy=bob_deploy,
            bob_files=bob_files,
            bob_requests=bob_requests,
            version=version,
            helped=helped,
            started=started,
            shown=shown,
            spool=spool,
            uploaded=uploaded,
            events=collector.events(APP),
            commands=collector.commands(APP),
        )


def by_command(dfx: Any, path: str) -> list[dict[str, Any]]:
    return [e for e in dfx.commands if e["command"] == path]


def test_prompt_on_first_command_default_no(dfx: Any) -> None:
    assert PROMPT in dfx.bob_start.err
    assert "Telemetry stays off" in dfx.bob_start.err
    assert dfx.bob_deploy.code == 0 and PROMPT not in dfx.bob_deploy.err
    # Only the recorded "no" (so that Bob is never asked again); no spool, nothing sent.
    assert dfx.bob_files == [".config/optin/demo-dfx/consent.json"]
    assert dfx.bob_requests == 0


def test_prompt_yes_turns_it_on(dfx: Any) -> None:
    assert PROMPT not in dfx.version.err and PROMPT not in dfx.helped.err
    assert PROMPT in dfx.started.err
    assert "telemetry is on" in dfx.started.err.lower()
    assert dfx.started.code == 0


def test_help_and_version_send_nothing(dfx: Any) -> None:
    assert len(dfx.commands) == len(SCENARIO) + 3  # start, the scenario, deploy, stop


def test_commands_are_enums(dfx: Any) -> None:
    assert Counter(e["command"] for e in dfx.commands) == {
        "start": 1,
        "deploy": 4,
        "canister.create": 1,
        "canister.install": 3,
        "ledger.transfer": 2,
        "identity.new": 1,
        "stop": 1,
    }


def test_options_are_presence_flags(dfx: Any) -> None:
    (start,) = by_command(dfx, "start")
    assert start["options"] == ["background"]
    for transfer in by_command(dfx, "ledger.transfer"):
        assert sorted(transfer["options"]) == ["icp", "memo", "network"]
        assert "values" not in transfer  # never the amount, the memo or the network's value


def test_mode_value_is_an_enum(dfx: Any) -> None:
    installs = by_command(dfx, "canister.install")
    assert [e.get("values") for e in installs if e["outcome"] != "usage_error"] == [
        {"mode": "upgrade"},
        {"mode": "reinstall"},
    ]
    (identity,) = by_command(dfx, "identity.new")
    assert identity["values"] == {"storage_mode": "plaintext"}


def test_positional_count_for_deploy_only(dfx: Any) -> None:
    assert sorted(e["positionals"] for e in by_command(dfx, "deploy")) == [0, 0, 0, 1]
    assert all("positionals" not in e for e in dfx.commands if e["command"] != "deploy")


def test_network_dimension_on_every_command(dfx: Any) -> None:
    networks = {
        e["command"]: e["dimensions"].get("network")
        for e in dfx.commands
        if e["outcome"] != "usage_error"
    }
    assert networks["ledger.transfer"] == "ic"
    assert networks["start"] == "local-shared"
    assert all(e["outcome"] == "usage_error" or "network" in e["dimensions"] for e in dfx.commands)
    deploys = Counter(e["dimensions"]["network"] for e in by_command(dfx, "deploy"))
    assert deploys == {"local-shared": 2, "other": 1, "local-project": 1}


def test_platform_and_version(dfx: Any) -> None:
    for event in dfx.events:
        assert event["os"] == "linux"
        assert event["app_version"] == VERSION
        assert event["python"].startswith("3.")
        assert event["ci"] is False
        assert event["time"] % 3600 == 0


def test_success_and_failure_on_every_command(dfx: Any) -> None:
    outcomes = Counter((e["command"], e["outcome"], e.get("error")) for e in dfx.commands)
    assert outcomes[("canister.install", "failure", "CanisterNotFound")] == 1
    assert outcomes[("ledger.transfer", "failure", "InsufficientFunds")] == 1
    assert outcomes[("ledger.transfer", "success", None)] == 1
    assert outcomes[("canister.install", "usage_error", None)] == 1
    failed = [e for e in dfx.commands if e["outcome"] == "failure"]
    assert {e["exit_code"] for e in failed} == {255}
    assert all(e["outcome"] in ("success", "failure", "usage_error") for e in dfx.commands)


def test_dau_and_mau_from_client_pings_without_id(dfx: Any) -> None:
    pings = [e for e in dfx.events if e["kind"] == "active"]
    assert sorted(e["period"] for e in pings) == ["day", "month"]
    assert all("session" not in e for e in pings)


def test_session_id_is_short_lived_not_a_machine_id(dfx: Any) -> None:
    sessions = {e["session"] for e in dfx.commands}
    assert len(sessions) == 1  # one day, one session id
    secret = (dfx.alice.state_dir / "secret").read_bytes()
    assert secret.hex() not in dfx.relay.bodies().decode()


def test_canaries_appear_nowhere(dfx: Any) -> None:
    where = places(dfx.alice, dfx.collector, dfx.relay, dfx.shown.out)
    where["spool before upload"] = dfx.spool
    assert dfx.spool and dfx.relay.count() >= 2  # there was something to search
    assert_no_canary(where, CANARIES)


def test_show_prints_what_will_be_sent(dfx: Any) -> None:
    # The background upload sent the earlier events: what `show` printed is exactly what was
    # still pending (the last commands' events at least), and each was then stored as printed.
    shown = json.loads(dfx.shown.out)
    assert shown["app"] == APP
    assert {"deploy", "stop"} <= {e.get("command") for e in shown["events"]}
    stored = {e["id"]: e for e in dfx.events}
    for event in shown["events"]:
        assert stored[event["id"]] == event
    assert "uploaded" in dfx.uploaded.out + dfx.uploaded.err


def test_requests_are_gzip_json_batches(dfx: Any) -> None:
    for request in dfx.relay.requests:
        assert request["path"] == "/v1/events"
        assert request["headers"]["Content-Encoding"] == "gzip"
        assert b'"app":"demo-dfx"' in request["body"]


def test_report_shows_the_usage(dfx: Any) -> None:
    report = dfx.collector.report(APP)
    runs = {c["command"]: c["runs"] for c in report["commands"]}
    assert runs["deploy"] == 4 and runs["canister.install"] == 3
    errors = {(e["error"], e["command"]) for e in report["errors"]}
    assert ("CanisterNotFound", "canister.install") in errors
    assert ("InsufficientFunds", "ledger.transfer") in errors
    modes = [
        o for o in report["options"] if (o["command"], o["option"]) == ("canister.install", "mode")
    ]
    assert modes[0]["values"] == {"upgrade": 1, "reinstall": 1}
    assert report["dimensions"]["network"] == {
        "local-shared": 8,
        "ic": 2,
        "local-project": 1,
        "other": 1,
    }
    assert list(report["active"]["mau"].values())[-1] == 1  # one person, counted from a ping
