"""A small real collector for the client's tests: loopback HTTP, scripted answers.

Not the product's collector (``optin.server``): this one only records what arrives and answers
what a test tells it to, including the bad days (413, 429, 503, slow, black hole, refused).
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Answer:
    """One scripted answer: a status, headers, a JSON body; ``delay`` seconds before it."""

    def __init__(
        self,
        status: int = 200,
        headers: dict[str, str] | None = None,
        body: Any = None,
        delay: float = 0.0,
    ) -> None:
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.delay = delay


class Collector:
    """``url``; ``script`` (answers used in order, then ``default``); what arrived."""

    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.default: Answer | None = None  # None: accept every event
        self.max_events: int | None = None  # answer 413 above this many events
        self.connections = 0
        self.requests: list[dict[str, Any]] = []  # {"headers", "raw", "batch"}
        self.accepted: Counter[str] = Counter()
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                collector._handle(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def process_request(self, request: Any, client_address: Any) -> None:
                with collector._lock:
                    collector.connections += 1
                super().process_request(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length", "0"))
        raw = h.rfile.read(length)
        data = gzip.decompress(raw) if h.headers.get("Content-Encoding") == "gzip" else raw
        batch = json.loads(data)
        with self._lock:
            self.requests.append({"headers": dict(h.headers), "raw": data, "batch": batch})
            answer = self.script.pop(0) if self.script else self.default
        if answer is None and self.max_events and len(batch["events"]) > self.max_events:
            answer = Answer(413, body={"error": "too_large", "message": "too many events"})
        if answer is None:
            ids = [e["id"] for e in batch["events"]]
            with self._lock:
                dup = sum(1 for i in ids if i in self.accepted)
                self.accepted.update(ids)
            answer = Answer(
                200, body={"accepted": len(ids) - dup, "duplicates": dup, "rejected": []}
            )
        if answer.delay:
            time.sleep(answer.delay)
        body = json.dumps(answer.body if answer.body is not None else {}).encode()
        try:
            h.send_response(answer.status)
            for k, v in answer.headers.items():
                h.send_header(k, v)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except OSError:
            pass

    def events(self) -> list[dict[str, Any]]:
        """Every event that arrived, in order (accepted or not)."""
        return [e for r in self.requests for e in r["batch"]["events"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class BlackHole:
    """A loopback port that accepts connections (kernel backlog) and never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()


def refused_url() -> str:
    """A loopback address where nothing listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
