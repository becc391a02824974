"""Each example's shipped policy matches its CLI: what ``optin policy init`` drafts from the tree.

A policy that names an option the tool does not have (or spells it differently) would silently
record nothing for it; these tests catch that, and check that the policies load and render.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from tests.e2e.harness import ROOT

from optin.policy import load, loads

TOOLS = ["dfx", "devsy", "cfdev"]


def policy_path(tool: str) -> str:
    return str(ROOT / "examples" / f"demo-{tool}" / "src" / f"demo_{tool}" / "telemetry.toml")


def draft(tool: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "optin", "policy", "init", f"demo_{tool}.cli:command_tree"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout


@pytest.mark.parametrize("tool", TOOLS)
def test_shipped_policy_covers_exactly_the_tree(tool: str) -> None:
    shipped = load(policy_path(tool))
    drafted = loads(draft(tool))
    assert set(shipped.commands) == set(drafted.commands)
    for path, command in shipped.commands.items():
        tree = drafted.commands[path].options
        assert set(command.options) <= set(tree), path
        for name, option in command.options.items():
            if option.values is not None and tree[name].values is not None:
                assert set(option.values) == set(tree[name].values), (path, name)


@pytest.mark.parametrize("tool", TOOLS)
def test_policy_checks_and_renders_a_notice(tool: str) -> None:
    for args in (["policy", "check", policy_path(tool)], ["notice", policy_path(tool)]):
        out = subprocess.run(
            [sys.executable, "-m", "optin", *args], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
    assert "version" not in load(policy_path("devsy")).commands  # sends nothing
