"""The artcloak installer (standard library only, Python 3.8+), one room per part; install.py runs cli.main.

    platforms.py  which computer this is: platform names, the torch table, each platform's folders
    venv.py       the engine's own Python environment: venv, torch, the engine and its optional parts
    weights.py    the surrogate weights: copied or downloaded, checked against pinned hashes
    gimp.py       finding every GIMP and installing the plug-in files there
    manifest.py   what the installer created, and the uninstaller that removes exactly that
    steps.py      output and the recorded file operations every room uses
    check.py      --check: what is installed, what is missing and what that costs; a tiny protection
    cli.py        the options and the Installer that runs the rooms in order
"""
from __future__ import annotations

from .cli import Installer, main, parse_args
from .common import APP, CONFIG_NAME, MANIFEST_NAME, REPO, Failure, sha256_file
from .gimp import PluginTarget, gimp_targets
from .manifest import Manifest, uninstall
from .platforms import DEFAULT_TORCH, TORCH_TABLE, Layout, machine_name, this_platform, torch_choice
from .venv import OPTIONAL_PARTS, Part, engine_fingerprint, engine_version, part_attempts, venv_python
from .weights import git_blob_id, load_registry

__all__ = ["APP", "CONFIG_NAME", "DEFAULT_TORCH", "MANIFEST_NAME", "OPTIONAL_PARTS", "REPO", "TORCH_TABLE",
           "Failure", "Installer", "Layout", "Manifest", "Part", "PluginTarget", "engine_fingerprint",
           "engine_version", "gimp_targets", "git_blob_id", "load_registry", "machine_name", "main",
           "parse_args", "part_attempts", "sha256_file", "this_platform", "torch_choice", "uninstall",
           "venv_python"]
