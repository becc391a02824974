"""What each adapter records, in-process, for the same command lines on click, typer and argparse.

The three fixture tools build one command tree (``tools/``); a recording stand-in for
``Telemetry`` shows exactly which calls each adapter makes on the recorder.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.integrations.helpers import POLICY, RUNNERS, FakeTelemetry

FRAMEWORKS = sorted(RUNNERS)


def _id(value: object) -> str | None:
    return " ".join(value) or "(none)" if isinstance(value, list) else None


def run(framework: str, args: list[str], **kwargs: Any) -> Any:
    return RUNNERS[framework](args, **kwargs)


# (args, path, options given, positional count passed)
CAPTURE = [
    (["canister", "install", "a", "b"], "canister.install", {}, 2),
    (
        ["-v", "canister", "--network", "ic", "install", "x", "--mode", "reinstall", "-y"],
        "canister.install",
        {"verbose": None, "network": "ic", "mode": "reinstall", "yes": None},
        1,
    ),
    # a value outside the policy's list goes to the client, which records it as "other"
    (["canister", "install", "--mode", "auto"], "canister.install", {"mode": "auto"}, 0),
    # given on the command line, even though it equals the default: present
    (["canister", "install", "--mode", "install"], "canister.install", {"mode": "install"}, 0),
    # --wasm is not in the policy: never passed on, nor its value
    (["canister", "install", "--wasm", "/home/alice/a.wasm"], "canister.install", {}, 0),
    # free text in the CLI, a closed list in the policy: the client coerces the value
    (["deploy", "--env", "staging-eu", "n1"], "deploy", {"env": "staging-eu"}, 1),
    (["deploy", "--with-cycles", "5"], "deploy", {"with_cycles": None}, 0),
    # the policy does not ask for canister.list's positional count
    (["canister", "list"], "canister.list", {}, None),
]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(("args", "path", "options", "count"), CAPTURE, ids=_id)
def test_path_options_values_and_positional_count(
    framework: str, args: list[str], path: str, options: dict[str, Any], count: int | None
) -> None:
    ran = run(framework, args)
    assert ran.code == 0, ran.output
    rec = ran.one
    assert rec.path == path
    assert rec.options == options
    assert rec.count == count
    assert rec.outcome == ("success", 0, None)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_dimension_set_by_the_command_lands_on_its_event(framework: str) -> None:
    rec = run(framework, ["deploy"]).one
    assert rec.dims == {"network": "ic"}


# (args, outcome, exit code per framework (default for all), error class)
OUTCOMES: list[tuple[list[str], str, dict[str, int], type[BaseException] | None]] = [
    (["crash"], "success", {"": 0}, None),
    (["crash", "--how", "exception"], "failure", {"": 1}, RuntimeError),
    (["crash", "--how", "custom"], "failure", {"": 1}, ValueError),
    (["crash", "--how", "exit", "--code", "4"], "failure", {"": 4}, None),
    (["crash", "--how", "exit", "--code", "0"], "success", {"": 0}, None),
    # click turns Ctrl-C into "Aborted!" and 1; typer exits 130; argparse lets it propagate
    (["crash", "--how", "interrupt"], "interrupted", {"": 130, "click": 1}, None),
    (["canister", "install", "--bogus"], "usage_error", {"": 2}, None),
    (["canister", "install", "--mode", "sideways"], "usage_error", {"": 2}, None),
]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(("args", "outcome", "codes", "error"), OUTCOMES, ids=_id)
def test_outcomes_and_exit_codes(
    framework: str,
    args: list[str],
    outcome: str,
    codes: dict[str, int],
    error: type[BaseException] | None,
) -> None:
    ran = run(framework, args)
    code = codes.get(framework, codes.get("", -1))
    assert ran.code == code, ran.output
    rec = ran.one
    assert rec.outcome == (outcome, code, error)
    path = "canister.install" if args[0] == "canister" else "crash"
    assert rec.path == path


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_tools_exception_propagates_unchanged(framework: str) -> None:
    ran = run(framework, ["crash", "--how", "exception"])
    assert isinstance(ran.exception, RuntimeError)
    assert str(ran.exception) == "secret-message /home/alice/token"
    assert ran.one.finished[0][2] is ran.exception  # the client categorises the very exception


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_an_unknown_command_is_a_usage_error_on_a_path_the_policy_lacks(framework: str) -> None:
    ran = run(framework, ["nope"])
    assert ran.code == 2
    rec = ran.one
    assert rec.path not in POLICY.commands  # the client records it as <unknown>
    assert rec.outcome == ("usage_error", 2, None)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(
    "args",
    [["--help"], ["canister", "--help"], ["canister", "install", "--help"], ["--version"]],
    ids=_id,
)
def test_help_and_version_are_not_recorded(framework: str, args: list[str]) -> None:
    ran = run(framework, args)
    assert ran.code == 0, ran.output
    assert ran.recorders == []


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("action", ["on", "off", "local", "status", "show", "upload", "report"])
def test_telemetry_commands_are_forwarded_and_not_recorded(framework: str, action: str) -> None:
    ran = run(framework, ["telemetry", action])
    assert ran.code == 0, ran.output
    assert ran.recorders == []
    assert ran.telemetry.cli_calls == [[action]]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_telemetry_exit_status_is_the_tools(framework: str) -> None:
    class Failing(FakeTelemetry):
        def cli(self, argv: list[str]) -> int:
            super().cli(argv)
            return 1

    ran = run(framework, ["telemetry", "upload"], telemetry=Failing())
    assert ran.code == 1
    assert ran.recorders == []


@pytest.mark.parametrize("framework", ["click", "typer"])
def test_options_from_the_environment_are_not_recorded(framework: str) -> None:
    rec = run(framework, ["canister", "install"], env={"FIXTURE_MODE": "upgrade"}).one
    assert (
        "upgrade" in run(framework, ["canister", "install"], env={"FIXTURE_MODE": "upgrade"}).output
    )
    assert rec.options == {}


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(
    "args",
    [
        ["canister", "install", "a", "--mode", "auto"],
        ["deploy", "x", "y"],
        ["crash", "--how", "exit", "--code", "7"],
        ["crash", "--how", "exception"],
        ["crash", "--how", "interrupt"],
        ["canister", "install", "--bogus"],
        ["nope"],
        ["--help"],
        [],
    ],
    ids=_id,
)
def test_output_and_exit_code_are_those_of_the_uninstrumented_tool(
    framework: str, args: list[str]
) -> None:
    plain = run(framework, args, instrumented=False)
    instrumented = run(framework, args)
    assert instrumented.code == plain.code
    assert type(instrumented.exception) is type(plain.exception)
    if "usage:" not in plain.output.lower():  # usage and help list the `telemetry` command
        assert instrumented.output == plain.output


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_without_a_visible_policy_the_frameworks_closed_lists_decide(framework: str) -> None:
    ran = run(
        framework,
        ["canister", "--network", "ic", "install", "--mode", "auto", "--wasm", "w", "a"],
        telemetry=FakeTelemetry(policy=None),
    )
    rec = ran.one
    # everything given is passed on (the client filters by its policy); values only for choices
    assert rec.options == {"network": "ic", "mode": "auto", "wasm": None}
    assert rec.count == 1


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_broken_telemetry_never_breaks_the_tool(framework: str) -> None:
    class Broken(FakeTelemetry):
        def command(self, path: str) -> Any:
            raise OSError("disk full")

    ran = run(framework, ["deploy", "a"], telemetry=Broken())
    assert ran.code == 0 and "deploy 1 to dev" in ran.output
    failed = run(framework, ["crash", "--how", "exception"], telemetry=Broken())
    assert isinstance(failed.exception, RuntimeError)


class Undecided(FakeTelemetry):
    """A client that would still ask the one-time consent question."""

    class _Decision:
        state = "ask"

    def decision(self) -> Any:
        return self._Decision()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_usage_error_is_never_the_moment_consent_is_asked(framework: str) -> None:
    assert run(framework, ["canister", "install", "--bogus"], telemetry=Undecided()).recorders == []
    assert run(framework, ["nope"], telemetry=Undecided()).recorders == []
    assert run(framework, ["deploy"], telemetry=Undecided()).one.path == "deploy"
