"""The end-to-end harness: a real collector, a recording relay, and installed tools in a pseudo-tty.

Each test module drives one example tool the way a person would: the console script installed in
``.venv/bin`` runs as a subprocess with a fresh ``HOME`` (and XDG directories), no ``CI`` variable,
and, where a person would answer the opt-in question, a pseudo-terminal on its stdin and stderr.
The tool's ``<APP>_TELEMETRY_ENDPOINT`` points at a :class:`Relay`, a small HTTP server that
keeps every request body it sees (gunzipped) and forwards it unchanged to a real ``optin serve``
on SQLite (:class:`Collector`). Assertions read what the collector stored (its SQLite file) and
search every place data can end up for canary strings (:func:`places`).
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import json
import os
import select
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROMPT = "Share anonymous usage statistics? [y/N]"
#: Variables that make the client think it runs in CI (never passed to the tools).
CI_VARS = ("CI", "CONTINUOUS_INTEGRATION", "BUILD_NUMBER", "GITHUB_ACTIONS", "GITLAB_CI")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(check: Any, timeout: float = 60.0, what: str = "a condition") -> Any:
    """Poll ``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


class Collector:
    """``python -m optin serve`` on SQLite and a free loopback port, its stderr in a log file."""

    def __init__(self, directory: Path, policies: Path) -> None:
        self.db = directory / "collector.db"
        self.log = directory / "collector.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.policies = policies
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Collector:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "optin",
                    "serve",
                    "--db",
                    f"sqlite:///{self.db}",
                    "--policies",
                    str(self.policies),
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.db.parent,
            )
        wait_until(self._healthy, 30, "the collector to answer /healthz")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the collector exited:\n{self.log.read_text()}")
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def events(self, app: str) -> list[dict[str, Any]]:
        """Every raw event the collector stored for ``app``."""
        if not self.db.exists():
            return []
        with contextlib.closing(sqlite3.connect(self.db)) as db:
            try:
                rows = db.execute("SELECT body FROM events WHERE app = ?", (app,)).fetchall()
            except sqlite3.OperationalError:
                return []
        return [json.loads(r[0]) for r in rows]

    def commands(self, app: str) -> list[dict[str, Any]]:
        return [e for e in self.events(app) if e["kind"] == "command"]

    def stored_bytes(self) -> bytes:
        """The database files as bytes (main file, WAL), for canary searches."""
        data = b""
        for suffix in ("", "-wal", "-journal"):
            path = Path(f"{self.db}{suffix}")
            if path.exists():
                data += path.read_bytes()
        return data

    def report(self, app: str, days: int = 30) -> dict[str, Any]:
        """``optin report --json`` for ``app``."""
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "optin",
                "report",
                "--db",
                f"sqlite:///{self.db}",
                "--app",
                app,
                "--days",
                str(days),
                "--policies",
                str(self.policies),
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        result: dict[str, Any] = json.loads(out.stdout)
        return result


class Relay:
    """An HTTP relay that records each request (body gunzipped) and forwards it to the collector."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("content-type", "content-encoding")
                }
                body = raw
                if headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(raw)
                with relay._lock:
                    relay.requests.append({"path": self.path, "headers": headers, "body": body})
                status, answer, extra = relay.forward(self.path, raw, headers)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def forward(self, path: str, raw: bytes, headers: Mapping[str, str]) -> tuple[int, bytes, dict]:
        request = urllib.request.Request(self.target + path, raw, dict(headers), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, r.read(), {}
        except urllib.error.HTTPError as exc:
            with exc:
                extra = {"Retry-After": exc.headers["Retry-After"]} if exc.headers else {}
                return exc.code, exc.read(), {k: v for k, v in extra.items() if v}

    def start(self) -> Relay:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def bodies(self) -> bytes:
        with self._lock:
            return b"\n".join(r["body"] for r in self.requests)

    def count(self) -> int:
        with self._lock:
            return len(self.requests)


@dataclass
class Result:
    code: int
    out: str
    err: str  # stderr; with a pseudo-terminal, everything the terminal showed


@dataclass
class User:
    """One person with a fresh home directory, running one installed tool."""

    tool: str
    home: Path
    endpoint: str
    extra_env: dict[str, str] = field(default_factory=dict)
    transcript: list[Result] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.project = self.home / "project"
        for d in (self.home, self.project):
            d.mkdir(parents=True, exist_ok=True)

    @property
    def prefix(self) -> str:
        return self.tool.upper().replace("-", "_")

    @property
    def state_dir(self) -> Path:
        return self.home / ".local" / "state" / "optin" / self.tool

    @property
    def config_dir(self) -> Path:
        return self.home / ".config" / "optin" / self.tool

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.home),
            "XDG_STATE_HOME": str(self.home / ".local" / "state"),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "COLUMNS": "100",
            f"{self.prefix}_TELEMETRY_ENDPOINT": self.endpoint,
        }
        env.update(self.extra_env)
        env.update(extra)
        for var in CI_VARS:
            env.pop(var, None)
        return env

    def argv(self, *args: str) -> list[str]:
        return [str(BIN / self.tool), *args]

    def run(self, *args: str, cwd: Path | None = None, **env: str) -> Result:
        """Run without a terminal (as a script or a pipe would)."""
        proc = subprocess.run(
            self.argv(*args),
            env=self.env(**env),
            cwd=cwd or self.project,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        self.transcript.append(result)
        return result

    def spawn(self, *args: str, **env: str) -> subprocess.Popen[str]:
        """Start without waiting (a slow command running beside the others)."""
        return subprocess.Popen(
            self.argv(*args),
            env=self.env(**env),
            cwd=self.project,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run_tty(self, *args: str, answer: str | None = None, **env: str) -> Result:
        """Run with a pseudo-terminal on stdin and stderr; type ``answer`` at the prompt.

        The child starts a new session without a controlling terminal, so the client reads the
        answer from stdin (the terminal) as it does when ``/dev/tty`` cannot be opened.
        """
        import pty

        master, slave = pty.openpty()
        try:
            proc = subprocess.Popen(
                self.argv(*args),
                env=self.env(**env),
                cwd=self.project,
                stdin=slave,
                stdout=subprocess.PIPE,
                stderr=slave,
                start_new_session=True,
            )
            os.close(slave)
            slave = -1
            shown = b""
            answered = False
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.05)
                if ready:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:  # EIO: the child closed the terminal
                        chunk = b""
                    if not chunk and proc.poll() is not None:
                        break
                    shown += chunk
                if not answered and answer is not None and PROMPT.encode() in shown:
                    os.write(master, answer.encode() + b"\n")
                    answered = True
                if proc.poll() is not None and not ready:
                    break
            while select.select([master], [], [], 0.05)[0]:  # what it wrote just before exiting
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                shown += chunk
            out = proc.stdout.read() if proc.stdout else b""
            if proc.stdout:
                proc.stdout.close()
            code = proc.wait(10)
        finally:
            os.close(master)
            if slave >= 0:
                os.close(slave)
        text = shown.decode("utf-8", "replace").replace("\r\n", "\n")
        result = Result(code, out.decode("utf-8", "replace"), text)
        self.transcript.append(result)
        return result

    def spool_bytes(self) -> bytes:
        """Every file under the tool's telemetry state directory, concatenated."""
        data = b""
        if self.state_dir.exists():
            for path in sorted(self.state_dir.rglob("*")):
                if path.is_file():
                    data += path.read_bytes()
        return data

    def files(self) -> list[str]:
        """Every file in the telemetry directories (state and config), relative to ``home``."""
        found = []
        for base in (self.state_dir, self.config_dir):
            if base.exists():
                found += [str(p.relative_to(self.home)) for p in base.rglob("*") if p.is_file()]
        return sorted(found)

    def uploading(self) -> bool:
        """Whether a background uploader of this user runs: its job, in its command line, names
        the user's state directory, from the spawn until it exits."""
        mark = os.fsencode(self.state_dir)
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError):  # a process that exited meanwhile
                if mark in cmdline.read_bytes():
                    return True
        return False

    def upload(self, **env: str) -> Result:
        """``<tool> telemetry upload``, retried while a background upload holds the lock."""
        for _ in range(300):
            result = self.run("telemetry", "upload", **env)
            if "another upload is running" not in result.out + result.err:
                return result
            time.sleep(0.2)
        raise AssertionError("the background upload never finished")


@contextlib.contextmanager
def pipeline(tmp: Path, policy: Path) -> Iterator[tuple[Collector, Relay]]:
    """A collector for ``policy`` and a relay in front of it, stopped afterwards."""
    collector = Collector(tmp, policy).start()
    relay = Relay(collector.url).start()
    try:
        yield collector, relay
    finally:
        relay.stop()
        collector.stop()


def places(user: User, collector: Collector, relay: Relay, *extra: str) -> dict[str, bytes]:
    """Every place telemetry data can be: spool, requests, database, collector log, output."""
    return {
        "spool": user.spool_bytes(),
        "requests": relay.bodies(),
        "database": collector.stored_bytes(),
        "collector log": collector.log.read_bytes(),
        **{f"output {i}": text.encode() for i, text in enumerate(extra)},
    }


def assert_no_canary(where: Mapping[str, bytes], canaries: list[str]) -> None:
    leaks = [
        f"{canary!r} found in the {place}"
        for place, data in where.items()
        for canary in canaries
        if canary.encode() in data
    ]
    assert not leaks, "\n".join(leaks)
