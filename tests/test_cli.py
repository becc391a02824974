"""`optin` as a user runs it: a real subprocess, exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

POLICY = Path(__file__).parent / "data" / "policy.toml"


def optin(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optin", *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_policy_check_accepts_a_good_policy() -> None:
    done = optin("policy", "check", str(POLICY))
    assert done.returncode == 0, done.stderr
    assert "ok (sample-cli, policy version 2, 3 commands)" in done.stdout


def test_policy_check_lists_every_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        POLICY.read_text()
        .replace('values = ["fresh", "resume"]', "values = []")
        .replace('type = "bool"', 'type = "text"')
    )
    done = optin("policy", "check", str(bad))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert f"{bad}: events.start_finish.properties.phase.values: is empty" in lines[1]
    assert f"{bad}: events.start_finish.properties.ok.type: 'text'" in lines[0]


def test_policy_schema_prints_a_draft_2020_12_schema() -> None:
    done = optin("policy", "schema", str(POLICY))
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_notice_renders_markdown() -> None:
    done = optin("notice", str(POLICY))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# What sample-cli collects, and why")


def test_a_missing_policy_is_a_clear_error(tmp_path: Path) -> None:
    done = optin("notice", str(tmp_path / "nope.toml"))
    assert done.returncode == 1
    assert "nope.toml: cannot read the policy" in done.stderr
    assert "Traceback" not in done.stderr


def _commands() -> list[list[str]]:
    return [
        [],
        ["policy"],
        ["policy", "init"],
        ["policy", "check"],
        ["policy", "schema"],
        ["notice"],
        ["serve"],
        ["report"],
        ["purge"],
        ["publish"],
    ]


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "optin")
def test_every_command_explains_itself(command: list[str]) -> None:
    done = optin(*command, "--help")
    assert done.returncode == 0
    assert "usage: optin" in done.stdout
    # a description beyond the usage line, and every option has help text
    body = done.stdout.split("\n\n", 1)[1]
    assert len(body.strip()) > 40


def test_a_missing_collector_extra_is_a_clear_error() -> None:
    # Block uvicorn and starlette as if `optin[server]` were not installed.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('uvicorn', 'starlette'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from optin.cli import main\n"
        f"sys.exit(main(['serve', '--policies', {str(POLICY)!r}, '--port', '0']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "is not installed; install the collector with: pip install 'optin[server]'" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
