"""uvicorn's httptools protocol plus two limits it lacks: 408 for slow headers, 431 for big ones.

What uvicorn 0.54 gives by itself: ``timeout_keep_alive`` closes a connection idle *between*
requests; nothing bounds the time a client takes to send its request head (a slowloris holds
the connection for ever), and httptools accepts headers of any size (uvicorn's
``h11_max_incomplete_event_size`` only applies to the pure-Python h11 protocol, and answers 400,
not 431). A body that stalls is handled by the application (``read_body`` answers 408).

This subclass arms a timer when a connection opens and again when a request begins, disarms it
when the head is complete, and counts the bytes of the request line and headers: past the time
it answers 408 and closes, past the size 431 and closes. Both answers carry the collector's
one JSON error body.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from optin.server.errors import error_body

__all__ = ["HEADER_TIMEOUT", "MAX_HEADER_BYTES", "GuardedHttpToolsProtocol"]

#: Seconds a client has to send its request line and headers.
HEADER_TIMEOUT = 10.0
#: Bytes of request line plus headers.
MAX_HEADER_BYTES = 16 * 1024

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class _HeadTooLarge(Exception):
    pass


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout = HEADER_TIMEOUT
    max_header_bytes = MAX_HEADER_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._head_started = False
        self._refused = False

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timeout)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._refused = True
        self._disarm()
        if self.transport.is_closing():
            return
        body = error_body(code, message)
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, _REASONS[status], len(body), body)
        )
        self.transport.close()

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self._head_started:
            self._refuse(408, "timeout", "the request headers did not arrive in time")
        elif not self.transport.is_closing():
            self.transport.close()  # opened and never used: nothing to answer

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except _HeadTooLarge:
            self._refuse(431, "headers_too_large", "the request headers are too large")
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse(431, "headers_too_large", "the request headers are too large")
            else:
                raise
        except httptools.HttpParserError:
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    # --- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._head_started = True
        if self._head_timer is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._head_started = False
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            raise _HeadTooLarge
