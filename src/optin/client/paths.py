"""Where the client keeps its files: the platform's own state and config directories.

Linux and other Unix: ``$XDG_STATE_HOME/optin/<app>`` (default ``~/.local/state``) and
``$XDG_CONFIG_HOME/optin/<app>`` (default ``~/.config``). macOS: both under
``~/Library/Application Support/optin/<app>`` (``state/`` and ``config/``). Windows:
``%LOCALAPPDATA%\\optin\\<app>\\state`` and ``%APPDATA%\\optin\\<app>``.

Computing a path creates nothing: directories are made only when something is written, so a
user who never consents never gets one.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["config_dir", "state_dir"]


def _home(environ: "Mapping[str, str]") -> str:
    """The home directory; a relative result (no home at all) makes telemetry turn itself off."""
    home = environ.get("HOME") or environ.get("USERPROFILE")
    return home if home else os.path.expanduser("~")


def _xdg(environ: "Mapping[str, str]", var: str, default: str) -> str:
    value = environ.get(var, "")
    # The XDG spec: a relative path is invalid and must be ignored.
    return value if os.path.isabs(value) else os.path.join(_home(environ), default)


def state_dir(app: str, environ: "Mapping[str, str]", platform: str = sys.platform) -> str:
    """The directory for the spool, the session secret and the upload schedule."""
    if platform == "win32":
        base = environ.get("LOCALAPPDATA") or os.path.join(_home(environ), "AppData", "Local")
        return os.path.join(base, "optin", app, "state")
    if platform == "darwin":
        return os.path.join(_home(environ), "Library", "Application Support", "optin", app, "state")
    return os.path.join(
        _xdg(environ, "XDG_STATE_HOME", os.path.join(".local", "state")), "optin", app
    )


def config_dir(app: str, environ: "Mapping[str, str]", platform: str = sys.platform) -> str:
    """The directory of the consent file."""
    if platform == "win32":
        base = environ.get("APPDATA") or os.path.join(_home(environ), "AppData", "Roaming")
        return os.path.join(base, "optin", app)
    if platform == "darwin":
        return os.path.join(
            _home(environ), "Library", "Application Support", "optin", app, "config"
        )
    return os.path.join(_xdg(environ, "XDG_CONFIG_HOME", ".config"), "optin", app)
