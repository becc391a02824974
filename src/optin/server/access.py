"""Who may see the dashboard: the token rule ``optin serve`` enforces before it listens.

On loopback only the machine's own users can connect, so a token is optional there. On any
other address the dashboard would show usage figures to the network: ``optin serve`` refuses to
start without a token, rather than start and leave it open.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping

__all__ = ["ENV", "dashboard_token", "is_loopback"]

ENV = "OPTIN_DASHBOARD_TOKEN"
MIN_LENGTH = 16


def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``: nobody else can connect. Anything else is not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def dashboard_token(
    host: str, given: str | None, environ: Mapping[str, str] = os.environ
) -> tuple[str | None, str | None]:
    """``(token, problem)``: the token from ``--dashboard-token`` or :data:`ENV`, and why the
    collector must not start (no token beyond loopback, or a token too short to guess-proof)."""
    token = given or environ.get(ENV) or None
    if token is not None and len(token) < MIN_LENGTH:
        return None, (
            f"the dashboard token is shorter than {MIN_LENGTH} characters; use a random one, "
            "e.g. from: python -c 'import secrets; print(secrets.token_urlsafe(24))'"
        )
    if token is None and not is_loopback(host):
        return None, (
            f"--host {host} listens beyond loopback, so the dashboard needs a token: pass "
            f"--dashboard-token TOKEN or set {ENV} (or listen on 127.0.0.1)"
        )
    return token, None
