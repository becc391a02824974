from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.server.helpers import POLICY, ThreadServer

from optin.server.app import Collector, create_app
from optin.storage import Storage, open_storage


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long fuzz runs here only run when asked for (``-m slow``): the default run stays short."""
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="long run: select it with -m slow")
    here = Path(__file__).parent
    for item in items:
        if "slow" in item.keywords and here in Path(str(item.path)).parents:
            item.add_marker(skip)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'optin.db'}"


@pytest.fixture
def collector(db_url: str) -> Collector:
    return create_app(POLICY, db_url, rate_limit=0)


@pytest.fixture
def server(collector: Collector) -> Iterator[ThreadServer]:
    with ThreadServer(collector) as srv:
        yield srv


@pytest.fixture
def client(server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


@pytest.fixture
def storage(db_url: str, server: ThreadServer) -> Iterator[Storage]:
    """A second connection to the collector's database, to see what it stored."""
    with open_storage(db_url) as s:
        yield s
