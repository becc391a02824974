"""Real collectors on loopback for the tests: in a thread (fast) or a subprocess (real signals)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from optin.server.protocol import GuardedHttpToolsProtocol
from optin.server.run import server_options

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "tests" / "data" / "policy.toml"
APP = "sample-cli"
VERSION = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def hour(offset_hours: int = 0) -> int:
    return (int(time.time()) // 3600 + offset_hours) * 3600


def event(kind: str = "command", **fields: Any) -> dict[str, Any]:
    """A valid event of ``tests/data/policy.toml`` for the current hour."""
    base: dict[str, Any] = {
        "id": os.urandom(16).hex(),
        "kind": kind,
        "time": hour(),
        "app_version": "1.2.3",
        "os": "linux",
        "arch": "x86_64",
        "python": "3.12",
        "ci": False,
        "interactive": True,
    }
    if kind == "active":
        base["period"] = "day"
    elif kind == "event":
        base.update(
            session="0123456789abcdef",
            name="start_finish",
            properties={"ok": True, "seconds": 5},
            dimensions={"network": "ic"},
        )
    else:
        base.update(
            session="0123456789abcdef",
            command="canister.install",
            options=["mode"],
            values={"mode": "upgrade"},
            dimensions={"network": "local-project"},
            outcome="success",
            exit_code=0,
            duration_ms=1234,
            slow=False,
        )
    base.update(fields)
    return base


def batch(events: list[Any], app: str = APP, version: int = VERSION) -> dict[str, Any]:
    return {"app": app, "policy_version": version, "events": events}


class ThreadServer:
    """uvicorn (uvloop + the guarded httptools protocol) serving ``app`` in a thread."""

    def __init__(self, app: Any, protocol: type[Any] = GuardedHttpToolsProtocol) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        options = {
            **server_options(),
            "http": protocol,
            "log_config": None,
            "log_level": "warning",
            "timeout_graceful_shutdown": 5,
        }
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the collector did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class ProcessServer:
    """``optin serve`` in a child process; its stderr goes to ``log``."""

    def __init__(self, workdir: Path, db: str, *args: str, port: int | None = None) -> None:
        self.workdir = workdir
        self.db = db
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args
        self.log = workdir / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ProcessServer:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "optin", "serve", "--db", self.db),
                    *("--policies", str(POLICY), "--host", "127.0.0.1", "--port", str(self.port)),
                    *self.args,
                ],
                cwd=self.workdir,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"optin serve exited: {self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"optin serve did not start: {self.log.read_text()}")
            time.sleep(0.05)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ProcessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
