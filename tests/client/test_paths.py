"""Where the client keeps its files, per platform; computing a path creates nothing."""

from __future__ import annotations

from pathlib import Path

from optin.client.telemetry import platform_config_dir as config_dir
from optin.client.telemetry import platform_state_dir as state_dir


def test_linux_follows_xdg(tmp_path: Path) -> None:
    env = {"HOME": "/home/u"}
    assert state_dir("app", env, "linux") == "/home/u/.local/state/optin/app"
    assert config_dir("app", env, "linux") == "/home/u/.config/optin/app"
    env = {"HOME": "/home/u", "XDG_STATE_HOME": "/s", "XDG_CONFIG_HOME": "/c"}
    assert state_dir("app", env, "linux") == "/s/optin/app"
    assert config_dir("app", env, "linux") == "/c/optin/app"
    env = {"HOME": "/home/u", "XDG_STATE_HOME": "relative/ignored"}
    assert state_dir("app", env, "linux") == "/home/u/.local/state/optin/app"


def test_macos_and_windows() -> None:
    mac = {"HOME": "/Users/u"}
    assert state_dir("app", mac, "darwin") == (
        "/Users/u/Library/Application Support/optin/app/state"
    )
    assert config_dir("app", mac, "darwin").endswith("Application Support/optin/app/config")
    win = {"HOME": "/h", "LOCALAPPDATA": "/L", "APPDATA": "/R"}
    assert state_dir("app", win, "win32").replace("\\", "/") == "/L/optin/app/state"
    assert config_dir("app", win, "win32").replace("\\", "/") == "/R/optin/app"


def test_nothing_is_created(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    state_dir("app", env)
    config_dir("app", env)
    assert list(tmp_path.iterdir()) == []
