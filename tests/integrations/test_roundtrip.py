"""A policy drafted by ``optin policy init`` names commands and options exactly as the adapters
record them: nothing the tool is given falls outside the draft.
"""

from __future__ import annotations

import pytest
from tests.integrations.helpers import RUNNERS, FakeTelemetry

from optin.introspect import draft_policy
from optin.policy import loads

TARGETS = {
    "click": "targets:click_cli",
    "typer": "targets:typer_app",
    "argparse": "targets:arg_parser",
}

LINES = [
    (
        [
            "-v",
            "canister",
            "--network",
            "ic",
            "install",
            "a",
            "--mode",
            "auto",
            "-y",
            "--wasm",
            "w",
        ],
        "canister.install",
        {"verbose": None, "network": "ic", "mode": "auto", "yes": None, "wasm": None},
    ),
    (["canister", "list"], "canister.list", {}),
    (
        ["deploy", "--env", "prod", "--with-cycles", "3"],
        "deploy",
        {"env": None, "with_cycles": None},
    ),
    (["crash", "--how", "custom", "--code", "2"], "crash", {"how": "custom", "code": None}),
]


@pytest.mark.parametrize("framework", sorted(TARGETS))
def test_the_draft_covers_every_command_and_option_the_adapter_records(framework: str) -> None:
    draft = loads(draft_policy(TARGETS[framework]))
    for args, path, options in LINES:
        ran = RUNNERS[framework](args, telemetry=FakeTelemetry(policy=draft))
        rec = ran.one
        assert rec.path == path and path in draft.commands
        # every option given is declared; values only where the CLI has a closed list
        assert rec.options == options
