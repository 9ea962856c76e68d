"""Where artcloak keeps things for a user, per platform: the one copy of the rule in the engine.

- data_dir(): the user data folder's `artcloak` (the installer puts the engine's venv, its config
  `artcloak-engine.json` and the model weights (`models/`) there): %LOCALAPPDATA% on Windows,
  ~/Library/Application Support on macOS, $XDG_DATA_HOME or ~/.local/share elsewhere.
- cache_dir(): what can always be rebuilt (exported ONNX graphs, the measured precision):
  ARTCLOAK_CACHE when set, else data_dir()/cache on Windows, ~/Library/Caches/artcloak on macOS,
  $XDG_CACHE_HOME or ~/.cache, then artcloak, elsewhere.
The installer (install_scripts/install.py, standalone) and the plug-ins' client
(plugin/common/artcloak_client.py, Python 2.7) cannot import the engine and carry their own copies;
tests/test_install.py checks that all three give the same folders.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

APP = "artcloak"


def _where(platform: str | None, home: Path | None, env: Mapping[str, str] | None):
    return (platform or sys.platform, (lambda: home) if home is not None else Path.home,
            os.environ if env is None else env)


def data_dir(platform: str | None = None, home: Path | None = None,
             env: Mapping[str, str] | None = None) -> Path:
    """<user data folder>/artcloak (for `platform` as sys.platform names it, default this one)."""
    platform, home_of, env = _where(platform, home, env)
    if platform == "win32":
        base = Path(env.get("LOCALAPPDATA") or home_of() / "AppData" / "Local")
    elif platform == "darwin":
        base = home_of() / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_DATA_HOME") or home_of() / ".local" / "share")
    return base / APP


def cache_dir(platform: str | None = None, home: Path | None = None,
              env: Mapping[str, str] | None = None) -> Path:
    """The per-user cache folder (ARTCLOAK_CACHE overrides): everything there can be rebuilt."""
    platform, home_of, env = _where(platform, home, env)
    if env.get("ARTCLOAK_CACHE"):
        return Path(env["ARTCLOAK_CACHE"])
    if platform == "win32":
        return data_dir(platform, home, env) / "cache"
    if platform == "darwin":
        return home_of() / "Library" / "Caches" / APP
    return Path(env.get("XDG_CACHE_HOME") or home_of() / ".cache") / APP
