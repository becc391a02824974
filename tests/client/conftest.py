"""Fixtures of the client's tests: a fresh HOME per test, a loopback collector, the test tool."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.client.helpers.collector import Collector

POLICY = Path(__file__).parents[1] / "data" / "policy.toml"
TOOL = Path(__file__).parent / "helpers" / "tool.py"
SRC = Path(__file__).parents[2] / "src"
PREFIX = "SAMPLE_CLI"
_KEEP = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")


class Env(dict[str, str]):
    """The environment of a test's processes, with its HOME and working directory."""

    home: Path
    cwd: Path

    @property
    def state(self) -> Path:
        return self.home / ".local" / "state" / "optin" / "sample-cli"

    @property
    def config(self) -> Path:
        return self.home / ".config" / "optin" / "sample-cli"

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.home)) for p in self.home.rglob("*"))

    def spooled(self) -> list[Path]:
        d = self.state / "spool"
        return sorted(p for p in d.iterdir() if not p.name.startswith(".")) if d.is_dir() else []


@pytest.fixture
def env(tmp_path: Path) -> Env:
    e = Env({k: v for k, v in os.environ.items() if k in _KEEP})
    e.home = tmp_path / "home"
    e.cwd = tmp_path / "work"
    e.home.mkdir()
    e.cwd.mkdir()
    e["HOME"] = str(e.home)
    e["PYTHONPATH"] = str(SRC)
    return e


def policy_variant(tmp_path: Path, **settings: object) -> Path:
    """A copy of the test policy with some ``[settings]`` changed."""
    text = POLICY.read_text()
    for key, value in settings.items():
        lines = [line for line in text.splitlines() if not line.startswith(f"{key} =")]
        at = lines.index("[settings]") + 1
        lines.insert(at, f"{key} = {value}")
        text = "\n".join(lines) + "\n"
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


def tool(
    env: Env, *args: str, timeout: float = 60, input: str | None = None, policy: Path = POLICY
) -> subprocess.CompletedProcess[str]:
    """Run the test tool as a real process in ``env``."""
    return subprocess.run(
        [sys.executable, str(TOOL), str(policy), *args],
        env=env,
        cwd=env.cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
