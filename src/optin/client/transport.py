"""The uploader's one-method seam to the network, after httpx's transports.

``Transport.send(request, timeout) -> Response`` and nothing else. :class:`UrllibTransport`
talks HTTP for real; :class:`MemoryTransport` answers from a function, for unit tests and
in-process simulations. A transport raises :class:`TransportError` when no HTTP answer came
(refused, timed out, DNS, TLS); every HTTP status, error or not, is a :class:`Response`.

This module is imported only by the uploader and by a foreground ``telemetry upload``:
never on a CLI's hot path (``urllib.request`` alone costs tens of milliseconds to import).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "MemoryTransport",
    "Request",
    "Response",
    "Transport",
    "TransportError",
    "UrllibTransport",
]

#: Read at most this much of a response body: the collector's answers are small.
MAX_RESPONSE_BYTES = 1 << 20


class TransportError(Exception):
    """No HTTP answer: connection refused, timed out, name or TLS failure."""


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def batch(self) -> Any:
        """The decoded JSON body (gunzipped if needed): for tests and ``telemetry show``."""
        import gzip
        import json

        raw = self.body
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        return json.loads(raw)


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)  # names in lower case
    body: bytes = b""

    def json(self) -> Any:
        import json

        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Transport(Protocol):
    def send(self, request: Request, timeout: float) -> Response: ...


class MemoryTransport:
    """Answers with ``handler(request)``; keeps every request in ``requests``."""

    def __init__(self, handler: Callable[[Request], Response] | None = None) -> None:
        self.handler = handler or _accept_all
        self.requests: list[Request] = []

    def send(self, request: Request, timeout: float) -> Response:
        self.requests.append(request)
        return self.handler(request)


def _accept_all(request: Request) -> Response:
    import json

    n = len(request.batch()["events"])
    return Response(200, {}, json.dumps({"accepted": n, "duplicates": 0, "rejected": []}).encode())


class UrllibTransport:
    """HTTP(S) with urllib: short timeouts, no redirects followed, a total deadline per request."""

    def __init__(self) -> None:
        import urllib.request

        class _NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None  # a 3xx is an answer, not a new destination for our data

        self._opener = urllib.request.build_opener(_NoRedirect())

    def send(self, request: Request, timeout: float) -> Response:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        req = urllib.request.Request(
            request.url, data=request.body, headers=dict(request.headers), method="POST"
        )
        try:
            try:
                resp = self._opener.open(req, timeout=timeout)
            except urllib.error.HTTPError as err:
                resp = err
            with resp:
                status = resp.status if resp.status is not None else 0
                headers = {k.lower(): v for k, v in resp.headers.items()}
                body = _read(resp, deadline)
        except (OSError, ValueError) as exc:  # URLError, timeouts, resets are OSErrors
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        return Response(status, headers, body)


def _read(resp: Any, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < MAX_RESPONSE_BYTES:
        if time.monotonic() > deadline:
            raise TimeoutError("the collector answered too slowly")
        chunk = resp.read(16384)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
