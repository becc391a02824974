"""``optin policy init``: drafts from real click, typer and argparse trees list everything."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from optin.introspect import IntrospectError, draft_policy, find_commands
from optin.policy import Policy, loads

TOOLS = Path(__file__).parent / "integrations" / "tools"


@pytest.fixture(autouse=True)
def _tools_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TOOLS))


def draft(target: str, **kwargs: Any) -> tuple[str, Policy]:
    text = draft_policy(target, **kwargs)
    return text, loads(text)


def options(policy: Policy, path: str) -> dict[str, tuple[str, ...] | None]:
    return {name: o.values for name, o in policy.commands[path].options.items()}


def test_click_group_nested_groups_every_command_and_option() -> None:
    text, policy = draft("shapes:tool")
    assert set(policy.commands) == {"remote.add", "remote.mirror.sync", "status"}
    # the group's --debug is offered on every command below it; --help / --version never
    assert options(policy, "remote.add") == {
        "debug": None,
        "kind": ("git", "hg", "ok.v2"),
        "dry_run": None,
    }
    # a feature switch: two flags setting one name, proposed with their values
    assert options(policy, "remote.mirror.sync") == {"debug": None, "case": ("upper", "lower")}
    assert options(policy, "status") == {"debug": None, "fmt": ("JSON", "plain_text")}
    assert "help" not in text and "version = " not in text.split("[commands", 1)[1]
    assert policy.commands["remote.add"].positional_count is False
    assert "positional_count = false" in text.split('[commands."remote.add"]')[1].split("[")[0]


def test_values_that_are_not_closed_list_values_are_skipped_with_a_comment() -> None:
    text, _ = draft("shapes:tool")
    assert '# value "a b" is not a closed-list value' in text
    assert '# value "other" is implied' in text


def test_every_purpose_says_todo_and_the_draft_loads_as_it_stands() -> None:
    text, policy = draft("shapes:tool", app="my-tool", endpoint="https://t.example.org")
    assert policy.app == "my-tool" and policy.endpoint == "https://t.example.org"
    data = tomllib.loads(text)
    purposes = [data["purpose"]]
    for command in data["commands"].values():
        purposes.append(command["purpose"])
        purposes += [o["purpose"] for o in command.get("options", {}).values()]
    assert purposes and all(p.startswith("TODO") for p in purposes)
    assert "# [settings]" in text and "# slow_threshold_seconds = 10.0" in text
    assert "settings" not in data  # defaults are shown commented, not set


def test_a_group_that_runs_on_its_own_is_a_command_too() -> None:
    _, policy = draft("shapes:bare")
    assert set(policy.commands) == {"bare", "sub"}
    assert options(policy, "sub") == {"color": ("auto", "never")}


def test_a_single_click_command_is_the_root_path() -> None:
    _, policy = draft("shapes:single")
    assert set(policy.commands) == {"single"}
    assert options(policy, "single") == {"level": None}


def test_typer_app_enum_and_literal_choices_and_no_completion_options() -> None:
    _, policy = draft("shapes:app")
    assert set(policy.commands) == {"paint", "db.migrate"}
    # typer spells enum members by value on the command line
    assert options(policy, "paint") == {"color": ("red", "dark-blue"), "shade": ("light", "dark")}
    assert options(policy, "db.migrate") == {"fake": None}


def test_single_command_typer_app() -> None:
    _, policy = draft("shapes:single_app")
    assert set(policy.commands) == {"only"}
    assert options(policy, "only") == {"loud": None}


def test_argparse_from_a_factory_with_aliases_and_nested_subparsers() -> None:
    text, policy = draft("shapes:make_parser")
    assert set(policy.commands) == {"build", "cache.clear"}  # the alias "b" is the same command
    assert options(policy, "build") == {
        "quiet": None,
        "jobs": ("1", "2", "4"),
        "profile": ("debug", "release"),
    }
    assert options(policy, "cache.clear") == {"quiet": None, "everything": None}  # dest, not flag
    assert "positional_count = false" in text.split("[commands.build]")[1].split("[")[0]


def test_argparse_parser_without_subparsers_is_main() -> None:
    _, policy = draft("shapes:flat_parser")
    assert set(policy.commands) == {"main"}
    assert options(policy, "main") == {"fast": None}


def test_the_telemetry_commands_an_integration_adds_are_not_drafted() -> None:
    import argtool
    import clicktool
    import typertool

    class Fake:
        def dimension(self, name: str, value: object) -> None: ...

    from optin.integrations.argparse import instrument

    trees = [
        clicktool.build(Fake()),
        typertool.build(Fake()),
        instrument(argtool.build_parser(), Fake()),
    ]
    for tree in trees:
        _, specs = find_commands(tree)
        assert {s.path for s in specs} == {"canister.install", "canister.list", "deploy", "crash"}


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("shapes", "expected MODULE:OBJECT"),
        ("no_such_module_here:x", "cannot import"),
        ("shapes:missing", "has no 'missing'"),
        ("shapes:not_a_cli", "is not a click command"),
        ("shapes:main", "ran a command line instead of returning one"),
    ],
)
def test_bad_targets_are_clear_errors(target: str, message: str) -> None:
    with pytest.raises(IntrospectError, match=message):
        draft_policy(target)


def test_optin_policy_init_writes_a_file_that_policy_check_accepts(tmp_path: Path) -> None:
    out = tmp_path / "telemetry.toml"
    env = {"PYTHONPATH": str(TOOLS), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "optin", "policy", "init", "shapes:tool", "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "review every purpose" in done.stderr
    check = subprocess.run(
        [sys.executable, "-m", "optin", "policy", "check", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "optin", "policy", "init", "shapes:not_a_cli"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
