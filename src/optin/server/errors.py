"""The one error body every refusal carries: ``{"error": CODE, "message": TEXT}``.

``rejected`` is added on 422 (which events, and why). Every status the collector answers with is
listed in :data:`STATUS_OF` so the OpenAPI document, the tests and the handlers agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

__all__ = ["STATUS_OF", "HTTPError", "error_body", "rejected_list"]

#: error code -> HTTP status. The codes are part of the contract (docs/design.md).
STATUS_OF = {
    "malformed": 400,
    "not_found": 404,
    "method_not_allowed": 405,
    "timeout": 408,
    "too_large": 413,
    "unsupported_media_type": 415,
    "no_valid_events": 422,
    "unknown_app": 422,
    "unknown_policy_version": 422,
    "rate_limited": 429,
    "headers_too_large": 431,
    "internal": 500,
    "not_implemented": 501,
    "unavailable": 503,
    "insufficient_storage": 507,
}


def rejected_list(rejected: Sequence[tuple[int, str]]) -> list[dict[str, Any]]:
    """``[(index, reason)]`` as the wire's ``[{"index": i, "reason": "..."}]``."""
    return [{"index": index, "reason": reason} for index, reason in rejected]


def error_body(code: str, message: str, rejected: Sequence[tuple[int, str]] | None = None) -> bytes:
    """The JSON bytes of an error response."""
    body: dict[str, Any] = {"error": code, "message": message}
    if rejected is not None:
        body["rejected"] = rejected_list(rejected)
    return orjson.dumps(body)


class HTTPError(Exception):
    """A refusal: raised anywhere on the ingest path, turned into one response at the top."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retry_after: int | None = None,
        rejected: Sequence[tuple[int, str]] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = STATUS_OF[code]
        self.message = message
        self.retry_after = retry_after
        self.rejected = rejected
        #: Ask the server to close the connection (the rest of the body is not worth reading).
        self.close = close

    def body(self) -> bytes:
        return error_body(self.code, self.message, self.rejected)

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"content-type", b"application/json")]
        if self.retry_after is not None:
            headers.append((b"retry-after", str(self.retry_after).encode("ascii")))
        if self.close:
            headers.append((b"connection", b"close"))
        return headers
