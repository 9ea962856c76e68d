"""The command line: the options, and the Installer that runs the rooms in order (engine, weights,
configuration, plug-ins), or --check / --uninstall."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .check import check
from .common import CONFIG_NAME, MANIFEST_NAME, Failure, launcher_hint
from .gimp import FLATPAK_GRANT, GimpSteps
from .manifest import Manifest, uninstall
from .platforms import DEFAULT_TORCH, PLATFORMS, Layout, this_platform
from .venv import OPTIONAL_PARTS, EngineSteps, engine_version, venv_python
from .weights import WeightSteps


class Installer(EngineSteps, WeightSteps, GimpSteps):
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.dry = args.dry_run
        self.platform = args.platform
        self.layout = Layout(self.platform, Path(os.path.expanduser("~")), dict(os.environ))
        self.base = Path(args.prefix).expanduser().resolve() if args.prefix else self.layout.data_dir()
        self.venv = self.base / "venv"
        self.models_dir = self.base / "models"
        self.manifest = Manifest(self.base / MANIFEST_NAME, self.dry)
        self.changes = 0
        self.planned: set[Path] = set()  # folders a dry run would have created
        self.warnings: list[str] = []


    def run(self) -> int:
        a = self.args
        if hasattr(os, "geteuid") and os.geteuid() == 0 and os.environ.get("SUDO_USER"):
            self.warn("running under sudo installs for root, not for you: run the installer without sudo")
        dry = ": DRY RUN, nothing is changed" if self.dry else ""
        self.say(f"artcloak installer {engine_version()} ({self.platform} layout){dry}")
        self.say(f"  data folder: {self.base}")
        if not a.engine_python:
            # which torch (TORCH_TABLE), decided before anything is created: a refusal leaves nothing behind
            venv_py = venv_python(self.venv)
            base_python = Path(a.python).expanduser() if a.python else Path(sys.executable)
            info = self.python_info(venv_py if venv_py.is_file() else base_python)
            self.torch_specs = self.choose_torch(info)
        self.makedirs(self.base)
        if not self.dry:
            for folder, whole in self.layout.engine_folders():
                self.manifest.note_engine_folder(folder, whole)
            self.manifest.save()
        # absolute, not resolved: a venv's python is a symlink that only works under its own name
        python = Path(a.engine_python).expanduser().absolute() if a.engine_python else venv_python(self.venv)
        self.engine_python = python
        if not a.engine_python:
            self.install_engine()
        elif not self.dry and not python.is_file():
            raise Failure(f"--engine-python {python} does not exist")
        models_ok = self.install_models()
        config = {"python": str(python), "models": str(self.models_dir), "version": engine_version()}
        self.step("Engine configuration")
        self.put_file(self.base / CONFIG_NAME, (json.dumps(config, indent=2) + "\n").encode())
        self.install_plugins(config)
        self.manifest.save()
        self.step("Summary")
        self.say(f"  engine python: {python}")
        self.say("  models: %s" % (", ".join(models_ok) or "NONE"))
        if not a.engine_python and not self.dry:
            got = self.manifest.state.get("parts_installed", "").split(",")
            have = [p.what for p in OPTIONAL_PARTS if p.extra in got]
            self.say("  optional parts: %s" % (", ".join(have) or "none"))
        for w in self.warnings:
            self.say(f"  warning: {w}")
        if not models_ok:
            self.say("FAILED: no surrogate model could be installed; the engine cannot protect anything.")
            return 1
        if self.dry:
            self.say(f"Dry run: {self.changes} change(s) planned, nothing was changed.")
        elif self.changes:
            self.say(f"Installed ({self.changes} change(s)). Check it with: {launcher_hint()} --check")
        else:
            self.say("Everything was already installed; nothing changed.")
        return 0



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Install artcloak (engine, model weights, GIMP plug-ins) for this user.")
    add = p.add_argument
    add("--dry-run", action="store_true", help="print the plan and change nothing")
    add("--uninstall", action="store_true", help="remove everything this installer installed")
    add("--check", action="store_true", help="protect a tiny image through the installed engine")
    add("--prefix", metavar="DIR", help="put the engine environment and weights here instead of "
        "the user's data folder")
    add("--python", metavar="PATH", help="the Python that creates the engine's environment "
        "(3.9+; default: the one running this installer)")
    add("--engine-python", metavar="PATH", help="use this existing Python (with artcloak installed) "
        "as the engine instead of creating an environment")
    add("--device", choices=("auto", "cpu", "cuda"), default="auto",
        help="which torch build: auto = CUDA where nvidia-smi works, else CPU (macOS: default build)")
    add("--torch-spec", help="pip requirement for torch (default: the one TORCH_TABLE gives this platform "
        f"and Python, {DEFAULT_TORCH} on Linux and Windows x86_64)")
    add("--torch-index", metavar="URL", help="package index for torch (e.g. a CUDA wheel index)")
    add("--wheels", metavar="DIR", help="install offline from this folder of wheels "
        "(torch and its dependencies, numpy, Pillow, setuptools)")
    add("--system-site-packages", action="store_true",
        help="let the engine environment see the creating Python's packages (e.g. its torch)")
    add("--minimal", action="store_true", help="leave out the engine's optional parts, onnxruntime and the "
        "LPIPS weights (about 100 MB of downloads). Costs: measuring runs 1.5-2x slower on torch, and the "
        "presets' LPIPS bound is not checked")
    add("--with-onnxruntime", action="store_true", help=argparse.SUPPRESS)  # the default since #18
    add("--models", metavar="A,B", help="install only these models (default: every registered one)")
    add("--models-from", metavar="DIR", help="copy the weights from this folder instead of downloading")
    add("--models-url", metavar="URL", help="download the weights from this mirror instead of upstream")
    add("--gimp-plugins", metavar="DIR", action="append", default=[],
        help="also install the GIMP 3 plug-in into this plug-ins folder (repeatable)")
    add("--gimp2-plugins", metavar="DIR", action="append", default=[],
        help="also install the GIMP 2.10 plug-in into this plug-ins folder (repeatable)")
    add("--no-gimp-search", action="store_true", help="only use the folders given on the command line")
    add("--platform", choices=PLATFORMS, default=this_platform(),
        help="folder rules to follow (default: this machine's); for tests")
    add("--machine", help="the CPU the torch choice is made for (default: the engine Python's); for tests")
    add("--os-version", help="the macOS version the torch choice is made for (default: this one's); "
        "for tests")
    add("--flatpak-permission", choices=("ask", "yes", "no"), default="ask",
        help="for a Flatpak GIMP: allow it to start the engine outside its sandbox (runs "
        f"`{' '.join(FLATPAK_GRANT)}`); ask = ask when run in a terminal, else only say how")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.uninstall or args.check:
            layout = Layout(args.platform, Path(os.path.expanduser("~")), dict(os.environ))
            base = Path(args.prefix).expanduser().resolve() if args.prefix else layout.data_dir()
            return uninstall(base, layout.cache_dir(), args.dry_run) if args.uninstall else check(base)
        return Installer(args).run()
    except Failure as e:
        print(f"\nFAILED: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted; run the installer again to finish (or --uninstall to remove what was done).",
              file=sys.stderr)
        return 130

