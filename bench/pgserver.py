"""A throwaway PostgreSQL server for the benchmarks (the tests have their own in conftest.py).

    with throwaway_postgres() as url:      # postgresql://postgres@127.0.0.1:PORT/postgres
        ...

Runs as the ``postgres`` system user when we are root (initdb refuses root), listens on
127.0.0.1 only, and keeps fsync on: benchmark numbers should be those of a real server.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bindir() -> Path:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False)
        if (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(directory) / "initdb").exists():
            return Path(directory)
    raise SystemExit("PostgreSQL server binaries not found: run `make system-deps`")


@contextmanager
def throwaway_postgres(root: str | None = None, options: str = "") -> Iterator[str]:
    """Start a server in a temp dir (under ``root`` if given); yield its URL; remove it.

    ``options``: more ``-c name=value`` settings for the server."""
    bindir = _bindir()
    base = Path(tempfile.mkdtemp(prefix="optin-bench-pg-", dir=root))
    as_root = os.geteuid() == 0
    if as_root:
        shutil.chown(base, "postgres", "postgres")
    base.chmod(0o700)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    def run(*argv: str) -> None:
        cmd = [str(bindir / argv[0]), *argv[1:]]
        if as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)

    data = base / "data"
    run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
    opts = (
        f"-h 127.0.0.1 -p {port} -k {base} -c shared_buffers=256MB -c max_wal_size=4GB "
        f"-c checkpoint_timeout=15min -c max_connections=100 {options}"
    )
    run("pg_ctl", "-D", str(data), "-l", str(base / "log"), "-o", opts, "-w", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)
