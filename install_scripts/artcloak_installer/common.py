"""What every room of the installer shares: the checkout it installs from, file names, the error type."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent  # the checkout: install_scripts/artcloak_installer/..
APP = "artcloak"
CONFIG_NAME = "artcloak-engine.json"
MANIFEST_NAME = "install-manifest.json"


class Failure(Exception):
    """A step that cannot go on; the message says what to do."""



def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()



def launcher_hint() -> str:
    if sys.platform == "win32":
        return "powershell -ExecutionPolicy Bypass -File install_scripts\\install.ps1"
    return "install_scripts/install.sh"

