"""The collector as one ASGI application: ``create_app(policies, storage_url, ...)``.

``POST /v1/events`` is a plain ASGI callable in front of everything else: it is the only hot path,
and skipping Starlette's request object and middleware stack for it is measurable at small batches
(see ``bench/bench_ingest.py``). Every other route is an ordinary Starlette route, and so is the
room left for the dashboard (``dashboard=`` is mounted at ``/dashboard``).

Nothing here reads the client address except the rate limiter, which hashes it at once; nothing
here logs a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from optin.events import json_schema
from optin.policy import to_data
from optin.server.errors import HTTPError, error_body, rejected_list
from optin.server.ingest import (
    MAX_WIRE_BYTES,
    Policies,
    check_media_type,
    inflate,
    parse_batch,
)
from optin.server.metrics import Metrics
from optin.server.openapi import openapi_document
from optin.server.ratelimit import RateLimiter, source_of
from optin.server.validate import reason_label
from optin.server.writer import Writer

__all__ = ["Collector", "create_app"]

log = logging.getLogger("optin.server")
_JSON = [(b"content-type", b"application/json")]
_CODES = {404: "not_found", 405: "method_not_allowed", 500: "internal"}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def _error(code: str, message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(code, message), status, headers, media_type="application/json")


class _Incomplete(Exception):
    """The client went away before the body was complete."""


async def read_body(receive: Receive, limit: int, timeout: float) -> bytes:
    """The whole request body, refused past ``limit`` bytes or ``timeout`` seconds."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Incomplete
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise HTTPError(
                        "too_large", f"the body is over {limit >> 20} MiB on the wire", close=True
                    )
                if not message.get("more_body", False):
                    if not chunks:
                        return chunk
                    chunks.append(chunk)
                    return b"".join(chunks)
                chunks.append(chunk)
    except TimeoutError:
        raise HTTPError(
            "timeout", f"the body did not arrive within {timeout:g} s", close=True
        ) from None


class Collector:
    """The ASGI application; see the module docstring."""

    def __init__(
        self,
        policies: Policies,
        storage_url: str,
        *,
        trust_proxy: bool = False,
        rate_limit: float = 600.0,
        body_timeout: float = 20.0,
        writer_inline: bool = False,
        dashboard: ASGIApp | None = None,
        extra_routes: Sequence[BaseRoute] = (),
        metrics_dir: str | None = None,
    ) -> None:
        self.policies = policies
        self.metrics = Metrics(metrics_dir)
        self.trust_proxy = trust_proxy
        #: ``rate_limit`` requests per minute per source, with a burst of as many.
        self.limiter = RateLimiter(rate_limit / 60.0, max(1.0, rate_limit))
        self.body_timeout = body_timeout
        self.writer = Writer(storage_url, self.metrics, inline=writer_inline)
        self._openapi = orjson.dumps(openapi_document())
        routes: list[BaseRoute] = [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics_page, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/v1/apps/{app}/policy", self.policy, methods=["GET"]),
            Route("/v1/apps/{app}/notice", self.notice, methods=["GET"]),
            *extra_routes,
        ]
        self.dashboard = dashboard
        if dashboard is not None:
            routes.append(Mount("/dashboard", app=dashboard))
        self.router = Starlette(
            routes=routes,
            lifespan=self._lifespan,
            exception_handlers={HTTPException: self._http_exception, Exception: self._crash},
        )

    # --- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/events":
            if scope["method"] == "POST":
                await self.ingest(scope, receive, send)
            else:
                body = error_body("method_not_allowed", "use POST /v1/events")
                length = (b"content-length", str(len(body)).encode())
                await send(
                    {
                        "type": "http.response.start",
                        "status": 405,
                        "headers": [*_JSON, (b"allow", b"POST"), length],
                    }
                )
                await send({"type": "http.response.body", "body": body})
            return
        await self.router(scope, receive, send)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        publisher = None
        if self.metrics.shared_dir is not None:
            publisher = asyncio.create_task(self._publish_metrics())
        try:
            yield
        finally:
            if publisher is not None:
                publisher.cancel()
                self.metrics.publish()
            await self.writer.aclose()
            close = getattr(self.dashboard, "close", None)
            if close is not None:
                await asyncio.to_thread(close)

    async def _publish_metrics(self) -> None:
        """Every second, this worker's counts for the other workers' ``/metrics`` answers."""
        while True:
            try:
                self.metrics.publish()
            except OSError as exc:
                log.warning("cannot write the metrics snapshot: %s", exc)
            await asyncio.sleep(1.0)

    # --- POST /v1/events --------------------------------------------------------------------

    async def ingest(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        try:
            status, body = await self._ingest(scope, receive)
            headers = _JSON
        except HTTPError as exc:
            status, body, headers = exc.status, exc.body(), exc.headers()
        except _Incomplete:
            status, body, headers = 400, error_body("malformed", "incomplete body"), _JSON
        except Exception as exc:  # a bug here: still one error shape, and the cause in the log
            log.error("ingest failed: %s", type(exc).__name__, exc_info=exc)
            status, body = 500, error_body("internal", "the collector failed; this is a bug")
            headers = _JSON
        headers = [*headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.metrics.observe(status, time.perf_counter() - start)

    async def _ingest(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        content_type = content_encoding = content_length = None
        for name, value in headers:
            if name == b"content-type":
                content_type = value
            elif name == b"content-encoding":
                content_encoding = value
            elif name == b"content-length":
                content_length = value
        wait = self.limiter.acquire(source_of(scope.get("client"), headers, self.trust_proxy))
        if wait:
            self.metrics.rate_limited += 1
            raise HTTPError(
                "rate_limited",
                "too many requests from this source; retry later",
                retry_after=self.limiter.retry_after(wait),
            )
        gzipped = check_media_type(content_type, content_encoding)
        if content_length is not None:
            if not content_length.isdigit():
                raise HTTPError("malformed", "Content-Length is not a number")
            if int(content_length) > MAX_WIRE_BYTES:
                raise HTTPError(
                    "too_large",
                    f"the body is over {MAX_WIRE_BYTES >> 20} MiB on the wire",
                    close=True,
                )
        body = await read_body(receive, MAX_WIRE_BYTES, self.body_timeout)
        raw = inflate(body) if gzipped else body
        batch = parse_batch(raw, self.policies, time.time())
        rejected = batch.rejected
        if rejected:
            counts = self.metrics.rejected
            for _, reason in rejected:
                counts[reason_label(reason)] += 1
        if not batch.valid:
            message = (
                "the batch has no events"
                if not rejected
                else f"none of the {len(rejected)} events is valid"
            )
            raise HTTPError("no_valid_events", message, rejected=rejected)
        result = await self.writer.store(batch.app, batch.valid)
        metrics = self.metrics
        metrics.accepted += result.accepted
        metrics.duplicates += result.duplicates
        metrics.conflicts += result.conflicts
        return 200, orjson.dumps(
            {
                "accepted": result.accepted,
                # A conflict (same id, other content) is, for the client, one more copy not kept.
                "duplicates": result.duplicates + result.conflicts,
                "rejected": rejected_list(rejected),
            }
        )

    # --- everything else --------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        try:
            await self.writer.ping()
        except HTTPError as exc:
            return _error(exc.code, exc.message, exc.status, {"retry-after": str(exc.retry_after)})
        return _json({"status": "ready"})

    async def metrics_page(self, request: Request) -> Response:
        return Response(
            self.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def openapi(self, request: Request) -> Response:
        return Response(self._openapi, media_type="application/json")

    async def policy(self, request: Request) -> Response:
        app = request.path_params["app"]
        policy = self.policies.latest(app)
        if policy is None:
            return _error("not_found", "this collector accepts no events for that app", 404)
        return _json(
            {
                "policy": to_data(policy),
                "schema": json_schema(policy),
                "versions": sorted(self.policies.by_app[app]),
            }
        )

    async def notice(self, request: Request) -> Response:
        policy = self.policies.latest(request.path_params["app"])
        if policy is None:
            return _error("not_found", "this collector accepts no events for that app", 404)
        try:
            from optin.notice import render
        except ImportError:  # pragma: no cover - the notice module ships with the package
            return _error("not_implemented", "the notice renderer is not available", 501)
        return Response(render(policy), media_type="text/markdown; charset=utf-8")

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _CODES.get(exc.status_code, "malformed")
        message = {404: "no such endpoint", 405: "method not allowed"}.get(
            exc.status_code, str(exc.detail)
        )
        return _error(code, message, exc.status_code, dict(exc.headers or {}))

    async def _crash(self, request: Request, exc: Exception) -> Response:
        return _error("internal", "the collector failed; this is a bug", 500)


def create_app(
    policies: Policies | str | Path,
    storage_url: str,
    **options: Any,
) -> Collector:
    """The collector for ``policies`` (loaded, or a file / directory of them) and a database URL.

    Options: ``trust_proxy``, ``rate_limit`` (requests per minute per source; 0 turns it off),
    ``body_timeout`` (seconds), ``writer_inline``, ``dashboard`` (an ASGI app for
    ``/dashboard``; default :class:`~optin.server.dashboard.Dashboard`), ``dashboard_token``
    (required by the default dashboard when given), ``extra_routes``, ``metrics_dir`` (where
    the workers of one ``optin serve --workers N`` share their counts).
    """
    if not isinstance(policies, Policies):
        policies = Policies.load(policies)
    token = options.pop("dashboard_token", None)
    if "dashboard" not in options:
        from optin.server.dashboard import Dashboard

        options["dashboard"] = Dashboard(policies, storage_url, token=token)
    return Collector(policies, storage_url, **options)
