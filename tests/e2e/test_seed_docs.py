"""The seed pages in docs/seeds/ must stay true: every test they name exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.e2e.harness import ROOT

PAGES = sorted((ROOT / "docs" / "seeds").glob("*.md"))
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def test_there_is_a_page_per_seed_document() -> None:
    assert [p.name for p in PAGES] == ["devsy.md", "dfx.md", "pcfdev.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_named_test_exists(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    references = REFERENCE.findall(text)
    assert len(references) >= 10
    missing = [
        f"{path}::{name}"
        for path, name in references
        if not (ROOT / path).exists()
        or not re.search(rf"^def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.M)
    ]
    assert not missing, f"{page} names tests that do not exist: {missing}"
