"""``optin serve``: the collector on uvicorn (uvloop + httptools), one or more worker processes.

Why uvicorn: the issue's measurements put uvicorn with uvloop + httptools level with granian for a
parse-and-insert endpoint, it is the ASGI server the Starlette world tests against, and its
protocol class can be extended (:mod:`optin.server.protocol` adds 408 / 431). Workers are
processes (``--workers``); each opens its own storage connection(s).

Privacy: uvicorn's access log is off and its logger has no handler (so uvicorn does not even
format a line); the remaining logs (start, stop, warnings) never carry a client address, and a
filter on every handler blanks ``client_addr`` should a library add one.

Shutdown: SIGTERM (or SIGINT) stops accepting, lets requests in flight finish (each waits for its
commit) for at most ``GRACEFUL_SECONDS``, then closes the storage: well within 20 s.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from typing import Any

__all__ = ["GRACEFUL_SECONDS", "app_factory", "log_config", "serve", "server_options"]

GRACEFUL_SECONDS = 15
_ENV = "OPTIN_SERVE_CONFIG"


class ScrubClientAddress(logging.Filter):
    """Blank any client address a log record carries (uvicorn's access records do)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if hasattr(record, "client_addr"):
            record.client_addr = "-"
        return record.name != "uvicorn.access"


def log_config() -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"scrub": {"()": ScrubClientAddress}},
        "formatters": {
            "default": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["scrub"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            # No handler and no propagation: uvicorn sees none and never builds access lines.
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "optin": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }


def server_options() -> dict[str, Any]:
    """uvicorn settings shared by ``serve`` and the tests' in-process servers."""
    return {
        "loop": "uvloop",
        "http": "optin.server.protocol:GuardedHttpToolsProtocol",
        "lifespan": "on",
        "access_log": False,
        "log_config": log_config(),
        "server_header": False,
        # uvicorn would otherwise rewrite the client address from X-Forwarded-For for any peer
        # on loopback; here X-Forwarded-For is read by the rate limiter only, and only if trusted.
        "proxy_headers": False,
        "timeout_keep_alive": 15,
        "timeout_graceful_shutdown": GRACEFUL_SECONDS,
        "limit_concurrency": 1000,
        "backlog": 1024,
    }


def app_factory() -> Any:
    """Build the app in each worker from the settings ``serve`` put in the environment."""
    from optin.server.app import create_app

    settings = json.loads(os.environ[_ENV])
    return create_app(
        settings["policies"],
        settings["db"],
        trust_proxy=settings["trust_proxy"],
        rate_limit=settings["rate_limit"],
        dashboard_token=settings.get("dashboard_token"),
        metrics_dir=settings.get("metrics_dir"),
    )


def serve(args: argparse.Namespace) -> int:
    """Check the policies and the database, then run uvicorn until SIGTERM / SIGINT."""
    import uvicorn

    from optin.server.access import dashboard_token
    from optin.server.ingest import Policies
    from optin.storage import StorageError, open_storage

    token, problem = dashboard_token(args.host, getattr(args, "dashboard_token", None))
    if problem:
        print(f"optin serve: {problem}", file=sys.stderr)
        return 1
    try:
        Policies.load(args.policies)
    except ValueError as exc:  # PolicyError is a ValueError
        print(f"optin serve: {exc}", file=sys.stderr)
        return 1
    try:
        # Opening applies the migrations once, before any worker starts.
        open_storage(args.db).close()
    except StorageError as exc:
        print(f"optin serve: {exc}", file=sys.stderr)
        return 1
    metrics_dir = tempfile.mkdtemp(prefix="optin-metrics-") if args.workers > 1 else None
    os.environ[_ENV] = json.dumps(
        {
            "policies": os.path.abspath(args.policies),
            "db": args.db,
            "trust_proxy": bool(getattr(args, "trust_proxy", False)),
            "rate_limit": float(
                600.0 if getattr(args, "rate_limit", None) is None else args.rate_limit
            ),
            "dashboard_token": token,
            # Workers share one port: each scrape adds up every worker's counts from here.
            "metrics_dir": metrics_dir,
        }
    )
    # uvicorn re-raises the signal that stopped it once it has shut down gracefully; with these
    # handlers in place that re-raise is a no-op and ``optin serve`` exits 0 after a clean stop.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    try:
        uvicorn.run(
            "optin.server.run:app_factory",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers if args.workers > 1 else None,
            **server_options(),
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
