"""/openapi.json is valid OpenAPI 3.1, lists exactly what is served, and the collector keeps to it
under schemathesis (no 5xx, statuses, headers and bodies as documented)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis import checks
from starlette.routing import Mount, Route
from tests.server.helpers import APP, POLICY, ThreadServer

from optin.server.app import create_app
from optin.server.errors import STATUS_OF
from optin.server.openapi import openapi_document
from optin.storage import open_storage


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = openapi_document()
    assert doc["openapi"].startswith("3.1.")
    validate(doc)


def test_the_document_lists_exactly_the_served_paths(tmp_path: Path) -> None:
    app = create_app(POLICY, f"sqlite:///{tmp_path / 'x.db'}")
    served = {"/v1/events"}
    for route in app.router.routes:
        if isinstance(route, Route):
            served.add(route.path)
        elif isinstance(route, Mount):
            inner = getattr(route.app, "app", route.app)  # the dashboard wraps a Starlette app
            routes = getattr(inner, "routes", [])
            served |= {route.path + r.path for r in routes if isinstance(r, Route)}
    assert set(openapi_document()["paths"]) == served


def test_every_error_code_is_documented() -> None:
    doc = openapi_document()
    assert doc["components"]["schemas"]["Error"]["properties"]["error"]["enum"] == sorted(STATUS_OF)
    documented = doc["paths"]["/v1/events"]["post"]["responses"]
    for code in ("malformed", "too_large", "unsupported_media_type", "no_valid_events"):
        assert str(STATUS_OF[code]) in documented
    for code in ("rate_limited", "unavailable", "insufficient_storage", "timeout"):
        assert str(STATUS_OF[code]) in documented


def test_served_document_is_this_one(client: httpx.Client) -> None:
    assert client.get("/openapi.json").json() == openapi_document()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('st')) / 'optin.db'}"
    with ThreadServer(create_app(POLICY, url, rate_limit=0)) as srv:
        yield srv.url, url


#: The document as served is this one (test above), so it can be loaded before the server runs.
schema = schemathesis.openapi.from_dict(openapi_document())

#: Every response check but the positive / negative data ones: the batch schema is generic (the
#: exact event schema is per app), so schema-valid data is mostly refused (unknown app: 422),
#: and too many events is 413 by contract, which that check does not expect.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.unsupported_method,
    checks.allow_header_conformance,
]


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_schemathesis(case: Any, live: tuple[str, str]) -> None:
    base, url = live
    with open_storage(url) as storage:
        before = len(storage.raw_events(APP))
        response = case.call_and_validate(base_url=base, checks=CHECKS)
        after = len(storage.raw_events(APP))
    assert response.status_code < 500 or response.status_code in (503, 507)
    if response.status_code != 200:
        assert after == before


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_long(case: Any, live: tuple[str, str]) -> None:
    base, _ = live
    case.call_and_validate(base_url=base, checks=CHECKS)
