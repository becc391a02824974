"""The direction of imports, held by an AST walk (see STYLE.md).

client/ and integrations/ run inside the user's CLI: standard library, policy and events only.
server/, storage/, analytics/ never import the client. Nothing imports cli.py.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "optin"
CLIENT_SIDE = ("client", "integrations")
COLLECTOR_SIDE = ("server", "storage", "analytics")
FOUNDATION = {"optin", "optin.policy", "optin.events"}
FRAMEWORKS = {"click", "typer"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules(part: str) -> list[Path]:
    return sorted((SRC / part).rglob("*.py")) if (SRC / part).is_dir() else []


@pytest.mark.parametrize("part", CLIENT_SIDE)
def test_client_side_imports_only_stdlib_policy_and_events(part: str) -> None:
    stdlib = sys.stdlib_module_names
    for path in _modules(part):
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "optin":
                ok = name in FOUNDATION or name.startswith(("optin.client", "optin.integrations"))
                assert ok, f"{path.relative_to(SRC)} imports {name}"
            elif part == "integrations" and top in FRAMEWORKS:
                continue
            else:
                assert top in stdlib or top == "__future__", f"{path.relative_to(SRC)}: {name}"


@pytest.mark.parametrize("part", COLLECTOR_SIDE)
def test_collector_side_never_imports_the_client(part: str) -> None:
    for path in _modules(part):
        for name in _imports(path):
            assert not name.startswith(("optin.client", "optin.integrations", "optin.cli")), (
                f"{path.relative_to(SRC)} imports {name}"
            )


def test_nothing_imports_the_cli() -> None:
    for path in SRC.rglob("*.py"):
        if path.name in ("cli.py", "__main__.py"):
            continue
        assert "optin.cli" not in _imports(path), path


def test_import_optin_loads_no_network_module() -> None:
    code = (
        "import sys, optin, optin.policy, optin.events\n"
        "bad = [m for m in ('urllib.request', 'http.client', 'socket', 'ssl', 'json', "
        "'subprocess', 'click', 'typer') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
