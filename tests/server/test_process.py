"""The collector as a real process: no IP anywhere, SIGKILL mid-ingest, SIGTERM, restarts."""

from __future__ import annotations

import signal
import socket
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
from tests.server.helpers import APP, ProcessServer, batch, event

from optin.storage import open_storage

CANARY_IP = "203.0.113.7"
CANARY_AGENT = "canary-agent-5d1f0e"


def _every_file(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _dump(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return "\n".join(conn.iterdump())


def test_no_ip_or_user_agent_anywhere(tmp_path: Path) -> None:
    db = tmp_path / "optin.db"
    server = ProcessServer(tmp_path, f"sqlite:///{db}", "--trust-proxy", "--rate-limit", "20")
    headers = {"x-forwarded-for": CANARY_IP, "user-agent": CANARY_AGENT}
    with server, httpx.Client(base_url=server.url, headers=headers) as client:
        json = {"content-type": "application/json"}
        bodies: list[Any] = [
            batch([event(), event("active"), event("event")]),
            batch([event(os="beos")]),
            batch([event()], app="nobody"),
            {"not": "a batch"},
        ]
        for body in bodies:
            client.post("/v1/events", content=orjson.dumps(body), headers=json)
        client.post("/v1/events", content=b"{", headers=json)
        client.post("/v1/events", content=b"x", headers={"content-type": "text/plain"})
        client.get("/nowhere")
        client.get(f"/v1/apps/{APP}/policy")
        client.get("/metrics")
        for _ in range(25):  # past the rate limit: 429s
            client.post("/v1/events", content=orjson.dumps(batch([event()])), headers=json)
        with socket.create_connection(("127.0.0.1", server.port)) as s:  # a broken request line
            s.sendall(f"GARBAGE {CANARY_IP} \x01\r\nuser-agent: {CANARY_AGENT}\r\n\r\n".encode())
            s.recv(1024)
        running = _every_file(tmp_path)
    stopped = _every_file(tmp_path)
    assert any(p.name == "optin.db" for p in stopped)
    assert any(p.suffix == ".log" and data for p, data in stopped.items())  # it did log
    for files in (running, stopped):
        for path, data in files.items():
            for canary in (CANARY_IP, CANARY_AGENT):
                assert canary.encode() not in data, f"{canary} found in {path}"
                assert canary.encode("utf-16-le") not in data, f"{canary} found in {path}"
    tables = _dump(db)
    assert "INSERT INTO" in tables
    assert CANARY_IP not in tables and CANARY_AGENT not in tables


class Sender(threading.Thread):
    """Sends batches of fresh events until stopped or the server goes away; records acks."""

    def __init__(self, url: str, size: int = 20) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.size = size
        self.sent: list[list[dict[str, Any]]] = []
        self.acked: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set() and len(self.sent) < 2000:
                events = [event() for _ in range(self.size)]
                self.sent.append(events)
                try:
                    r = client.post(
                        "/v1/events",
                        content=orjson.dumps(batch(events)),
                        headers={"content-type": "application/json"},
                    )
                except httpx.TransportError:
                    return
                self.statuses[r.status_code] += 1
                if r.status_code == 200:
                    self.acked.extend(e["id"] for e in events)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan waits for whatever init this machine has to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_sigkill_mid_ingest_loses_no_acknowledged_event(tmp_path: Path, storage_url: str) -> None:
    url = storage_url
    server = ProcessServer(tmp_path, url, "--rate-limit", "0").start()
    senders = [Sender(server.url) for _ in range(3)]
    try:
        for s in senders:
            s.start()
        time.sleep(1.5)
        assert server.proc is not None
        children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children")
        storers = [int(pid) for pid in children.read_text().split()]
        assert storers, "the collector writes through its storage process"
        server.signal(signal.SIGKILL)
        server.wait(10)
        # The storage process sees its input end, finishes its transaction and exits.
        deadline = time.monotonic() + 10
        while any(_running(pid) for pid in storers):
            assert time.monotonic() < deadline, "the storage process outlived its worker"
            time.sleep(0.05)
    finally:
        for s in senders:
            s.stop.set()
            s.join(15)
        server.stop()
    acked = [i for s in senders for i in s.acked]
    assert len(acked) > 100, [s.statuses for s in senders]
    with open_storage(url) as storage:
        stored = Counter(e["id"] for e in storage.raw_events(APP))
    assert not [i for i in acked if stored[i] != 1]
    assert max(stored.values()) == 1

    # Restart on the same database and retry every batch: only the unacknowledged are new.
    sent = [b for s in senders for b in s.sent]
    with (
        ProcessServer(tmp_path, url, "--rate-limit", "0") as again,
        httpx.Client(base_url=again.url, timeout=10) as client,
    ):
        accepted = duplicates = 0
        for events in sent:
            r = client.post(
                "/v1/events",
                content=orjson.dumps(batch(events)),
                headers={"content-type": "application/json"},
            )
            assert r.status_code == 200, r.text
            accepted += r.json()["accepted"]
            duplicates += r.json()["duplicates"]
    every_id = {e["id"] for events in sent for e in events}
    assert duplicates >= len(acked)
    assert accepted + duplicates == len(every_id)
    with open_storage(url) as storage:
        stored = Counter(e["id"] for e in storage.raw_events(APP))
    assert set(stored) == every_id and max(stored.values()) == 1


def test_sigterm_finishes_in_flight_work_and_exits_quickly(
    tmp_path: Path, storage_url: str
) -> None:
    url = storage_url
    server = ProcessServer(tmp_path, url, "--rate-limit", "0").start()
    senders = [Sender(server.url) for _ in range(3)]
    for s in senders:
        s.start()
    time.sleep(1.0)
    start = time.monotonic()
    server.signal(signal.SIGTERM)
    code = server.wait(25)
    elapsed = time.monotonic() - start
    for s in senders:
        s.stop.set()
        s.join(15)
    assert code == 0
    assert elapsed < 20
    assert all(set(s.statuses) <= {200} for s in senders), [s.statuses for s in senders]
    acked = [i for s in senders for i in s.acked]
    with open_storage(url) as storage:
        stored = Counter(e["id"] for e in storage.raw_events(APP))
    assert all(stored[i] == 1 for i in acked)


def _metric(text: str, name: str) -> int:
    return sum(int(float(line.split()[-1])) for line in text.splitlines() if line.startswith(name))


def _worker_metrics_dir(serve_pid: int) -> Path:
    """The directory the workers of ``optin serve`` share, read from a worker's environment."""
    children = Path(f"/proc/{serve_pid}/task/{serve_pid}/children").read_text().split()
    for child in children:
        environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        for entry in environ:
            if entry.startswith(b"OPTIN_SERVE_CONFIG="):
                return Path(orjson.loads(entry.split(b"=", 1)[1])["metrics_dir"])
    raise AssertionError(f"no worker of {serve_pid} found among {children}")


def test_metrics_add_up_every_worker(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optin.db'}"
    json = {"content-type": "application/json", "connection": "close"}
    with ProcessServer(tmp_path, url, "--rate-limit", "0", "--workers", "2") as server:
        assert server.proc is not None
        # Wait until both workers answer (each creates its snapshot at start-up).
        shared = _worker_metrics_dir(server.proc.pid)
        deadline = time.monotonic() + 20
        while len(list(shared.glob("*.json"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        # A fresh connection per request, so the kernel hands them to both workers.
        for _ in range(60):
            r = httpx.post(
                server.url + "/v1/events",
                content=orjson.dumps(batch([event(), event(), {"kind": "bogus"}])),
                headers=json,
            )
            assert r.status_code == 200, r.text
        time.sleep(1.5)  # every worker has written its snapshot since
        snapshots = [orjson.loads(p.read_bytes()) for p in shared.glob("*.json")]
        served = [s["accepted"] for s in snapshots]
        assert len(served) == 2 and all(served), f"both workers must have served: {served}"
        for _ in range(6):
            text = httpx.get(server.url + "/metrics", headers={"connection": "close"}).text
            assert _metric(text, "optin_events_accepted_total") == 120
            assert _metric(text, "optin_events_rejected_total") == 60
            assert _metric(text, 'optin_ingest_responses_total{status="200"}') == 60
            assert _metric(text, "optin_ingest_seconds_count") == 60
    assert not shared.exists(), "optin serve removes the shared metrics directory"
