"""GIMP: finding every GIMP's plug-in folder (native, Flatpak, Snap, Microsoft Store; 3.x and 2.10) and
installing the plug-in files there with the engine's configuration."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .common import CONFIG_NAME, REPO, launcher_hint
from .platforms import Layout
from .steps import Steps

FLATPAK_APP = "org.gimp.GIMP"
FLATPAK_GRANT = ["flatpak", "override", "--user", "--talk-name=org.freedesktop.Flatpak", FLATPAK_APP]
SHEBANG_GIMP3 = "#!/usr/bin/env python3"
GIMP_VERSION_DIR = re.compile(r"^(2\.10|3\.\d+)$")


class PluginTarget:
    def __init__(self, folder: Path, front: str, label: str, packaging: str = "native"):
        self.folder, self.front, self.label, self.packaging = folder, front, label, packaging



def gimp_targets(layout: Layout) -> list[PluginTarget]:
        """Every plug-in folder of a GIMP (2.10, 3.x) whose version folder exists."""
        found = []
        for packaging, root in layout.gimp_roots():
            if not root.is_dir():
                continue
            for vdir in sorted(p for p in root.iterdir() if p.is_dir() and GIMP_VERSION_DIR.match(p.name)):
                front = "gimp2" if vdir.name == "2.10" else "gimp3"
                found.append(PluginTarget(vdir / "plug-ins", front, f"GIMP {vdir.name} ({packaging})",
                                          packaging))
        return found



def shebang(platform: str, front: str) -> str:
    if front == "gimp3":
        return SHEBANG_GIMP3
    # GIMP 2.10: Linux runs the file itself (the distribution's python2 with gimpfu); on macOS and
    # Windows GIMP's bundled interpreter is registered under the name "python".
    return "#!/usr/bin/env python2" if platform == "linux" else "#!/usr/bin/env python"



def source_files(folder: Path) -> list[Path]:
    """The files of a plug-in source folder (no caches)."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"))


def with_shebang(data: bytes, shebang: str) -> bytes:
    nl = b"\r\n" if b"\r\n" in data[:4096] else b"\n"
    if data.startswith(b"#!"):
        data = data.split(nl, 1)[1] if nl in data else b""
    return shebang.encode() + nl + data



class GimpSteps(Steps):
    """Install the plug-ins into every GIMP found (and the folders named on the command line)."""

    def install_plugins(self, config: dict) -> None:
        a = self.args
        self.step("GIMP plug-ins")
        targets = [PluginTarget(Path(d).expanduser().resolve(), "gimp3", "GIMP 3 (--gimp-plugins)")
                   for d in a.gimp_plugins]
        targets += [PluginTarget(Path(d).expanduser().resolve(), "gimp2", "GIMP 2.10 (--gimp2-plugins)")
                    for d in a.gimp2_plugins]
        if not a.no_gimp_search:
            seen = {str(t.folder) for t in targets}
            targets += [t for t in gimp_targets(self.layout) if str(t.folder) not in seen]
        if not targets:
            self.warn("no GIMP settings folder found (GIMP 3.x or 2.10, native, Flatpak or Snap): no plug-in "
                      "installed. Start GIMP once and run the installer again, or pass --gimp-plugins DIR.")
            return
        common_dir = REPO / "plugin" / "common"
        common = source_files(common_dir) if common_dir.is_dir() else []
        for t in targets:
            fronts = sorted(p for p in (REPO / "plugin" / t.front).iterdir() if p.is_dir()) \
                if (REPO / "plugin" / t.front).is_dir() else []
            fronts = [f for f in fronts if f.name != "__pycache__"]
            if not fronts:
                self.warn(f"{t.label}: this checkout has no plug-in under plugin/{t.front}; skipped")
                continue
            cfg = dict(config)
            if t.packaging == "snap":
                problem = self.snap_problem(Path(config["python"]))
                if problem:
                    self.warn(f"{t.label}: plug-in NOT installed. {problem}")
                    continue
            self.say(f"  {t.label}: {t.folder}")
            if t.packaging in ("flatpak", "snap"):
                cfg["sandbox"] = t.packaging  # the client starts the engine on the host from a Flatpak
            for front in fronts:
                self.install_front(front, t, common, cfg)
            if t.packaging == "flatpak":
                self.flatpak_permission()

    def snap_problem(self, python: Path) -> str | None:
        """Why a Snap GIMP could not run this engine, or None. Strict confinement shows the snap your
        home without its hidden folders (~/.local/...) and a /usr of its own base snap, not your
        system's: the engine, its Python and the interpreter that Python links to must all lie in
        non-hidden folders of your home (~/snap/gimp/common is the snap's own)."""
        home = self.layout.home
        snap_common = home / "snap" / "gimp" / "common"
        fix = (f"A Snap GIMP sees neither hidden folders in your home nor your system's /usr. To use "
               f"artcloak in it, put the engine in the snap's own folder with a self-contained Python "
               f"(python-build-standalone, unpacked under {snap_common}/python): "
               f"{launcher_hint()} --prefix {snap_common}/artcloak "
               f"--python {snap_common}/python/bin/python3 ; "
               "or use GIMP from your distribution, Flathub or gimp.org, which need none of this.")
        paths = [("the engine folder", self.base), ("the engine's Python", python)]
        try:
            paths.append(("the interpreter it runs", python.resolve()))
        except OSError:
            pass
        for what, p in paths:
            try:
                rel = Path(os.path.abspath(str(p))).relative_to(home)
            except ValueError:
                return f"{what} {p} is outside your home. {fix}"
            hidden = [part for part in rel.parts if part.startswith(".")]
            if hidden:
                return f"{what} {p} is in a hidden folder ({hidden[0]}). {fix}"
        return None

    def flatpak_permission(self) -> None:
        """The Flatpak GIMP starts the engine on the host through flatpak-spawn, which needs the
        talk-name org.freedesktop.Flatpak: offer to grant it (`--flatpak-permission`)."""
        if getattr(self, "flatpak_done", False):
            return
        self.flatpak_done = True
        command = " ".join(FLATPAK_GRANT)
        flatpak = shutil.which("flatpak")
        if flatpak:
            shown = subprocess.run([flatpak, "override", "--user", "--show", FLATPAK_APP],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            if shown.returncode == 0 and re.search(r"(?m)^org\.freedesktop\.Flatpak=talk", shown.stdout):
                self.say("  the Flatpak GIMP may already start programs outside its sandbox "
                         "(talk-name org.freedesktop.Flatpak): nothing to change")
                return
        choice = self.args.flatpak_permission
        if choice == "ask":
            if self.dry or not sys.stdin.isatty():
                choice = "no"
            else:
                answer = input("  The Flatpak GIMP needs permission to start the artcloak engine outside its "
                               f"sandbox.\n  Run `{command}` now? [Y/n] ")
                choice = "no" if answer.strip().lower().startswith("n") else "yes"
        if choice == "no" or not flatpak:
            why = "" if flatpak else " (no `flatpak` command found here)"
            self.warn(f"the Flatpak GIMP cannot start the engine until it is allowed to{why}: run\n"
                      f"      {command}\n    (or run the installer again with --flatpak-permission yes)")
            return
        self.act(f"allow the Flatpak GIMP to start the engine outside its sandbox: {command}")
        if self.dry:
            return
        if subprocess.run([flatpak] + FLATPAK_GRANT[1:]).returncode != 0:
            self.warn(f"`{command}` failed; run it yourself, then restart GIMP")
            return
        self.say("  done: the Flatpak GIMP may now start programs on the host (undo: flatpak override "
                 f"--user --no-talk-name=org.freedesktop.Flatpak {FLATPAK_APP})")

    def install_front(self, front: Path, t: PluginTarget, common: list[Path], cfg: dict) -> None:
        dest = t.folder / front.name
        main_name = front.name + ".py"
        for src in source_files(front):
            rel = src.relative_to(front)
            data = src.read_bytes()
            if str(rel) == main_name:
                self.put_file(dest / rel, with_shebang(data, shebang(self.platform, t.front)), 0o755)
            else:
                self.put_file(dest / rel, data, 0o644)
        for src in common:
            rel = src.relative_to(REPO / "plugin" / "common")
            if (front / rel).exists():
                continue  # the front's own file wins
            self.put_file(dest / rel, src.read_bytes(), 0o644)
        self.put_file(dest / CONFIG_NAME, (json.dumps(cfg, indent=2) + "\n").encode())
