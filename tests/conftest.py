"""Shared fixtures: a real, throwaway PostgreSQL 15 server for the whole session.

``pg_server`` starts it once (initdb into a temp dir, listening on 127.0.0.1 on a free port,
fsync off: it is thrown away) and stops it at the end. initdb refuses to run as root, so when the
tests run as root the server runs as the ``postgres`` system user. Missing binaries fail the
tests with a message instead of skipping them: ``make test`` installs them.

``pg_url`` gives a fresh, empty database per test; ``storage_url`` is parametrized over
``sqlite`` and ``postgres`` so every storage test runs on both back-ends.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bindir() -> Path | None:
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for directory in candidates:
        if directory and (Path(directory) / "initdb").exists():
            return Path(directory)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PgServer:
    """A PostgreSQL server in a temp dir; ``stop``/``start`` let a test take it down."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="optin-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)

    def init(self) -> None:
        done = self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        if done.returncode:
            pytest.fail(f"initdb failed:\n{done.stdout}\n{done.stderr}", pytrace=False)

    def start(self) -> None:
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        done = self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        if done.returncode:
            log = self.log.read_text() if self.log.exists() else ""
            pytest.fail(f"PostgreSQL did not start:\n{done.stderr}\n{log[-2000:]}", pytrace=False)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = _bindir()
    if bindir is None:
        pytest.fail(
            "PostgreSQL server binaries not found (pg_config --bindir, /usr/lib/postgresql/*/bin):"
            " run `make system-deps` or install the postgresql package",
            pytrace=False,
        )
    server = PgServer(bindir)
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh empty database on the session's PostgreSQL server."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return pg_server.create_database()
        except Exception:
            # A test may just have stopped and restarted the server.
            if time.monotonic() > deadline:
                raise
            pg_server.start()
            time.sleep(0.2)


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL, once per back-end."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'optin.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url
