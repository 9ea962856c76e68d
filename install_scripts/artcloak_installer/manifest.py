"""The manifest (everything the installer created) and the uninstaller that removes exactly that."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .common import MANIFEST_NAME, sha256_file


class Manifest:
    """What this installer created: directories (in creation order), files (with hashes), trees."""

    def __init__(self, path: Path, dry: bool):
        self.path, self.dry = path, dry
        # engine_dirs / engine_trees: folders that did not exist at install and that the engine may create
        # later (its cache's parents; onnxruntime's device-id folder): removed on uninstall (dirs only when
        # empty), since the installer brought the program that made them
        self.data = {"format": 1, "dirs": [], "files": {}, "trees": [], "state": {}, "engine_dirs": [],
                     "engine_trees": []}
        if path.is_file():
            loaded = json.loads(path.read_text(encoding="utf-8"))
            for key in self.data:
                self.data[key] = loaded.get(key, self.data[key])

    def add_dir(self, d: Path) -> None:
        if str(d) not in self.data["dirs"]:
            self.data["dirs"].append(str(d))

    def add_file(self, p: Path, digest: str) -> None:
        self.data["files"][str(p)] = digest

    def add_tree(self, d: Path) -> None:
        if str(d) not in self.data["trees"]:
            self.data["trees"].append(str(d))

    def note_engine_folder(self, folder: Path, whole: bool) -> None:
        """Record `folder` (when `whole`) and its missing parents if they do not exist yet; a folder already
        recorded stays recorded (the engine may have created it since)."""
        missing = []
        p = folder
        while not p.exists() and p.parent != p:
            missing.append(p)
            p = p.parent
        if whole and folder in missing:
            missing.remove(folder)
            if str(folder) not in self.data["engine_trees"]:
                self.data["engine_trees"].append(str(folder))
        for d in reversed(missing):  # outermost first, like "dirs"
            if str(d) not in self.data["engine_dirs"]:
                self.data["engine_dirs"].append(str(d))

    def owns(self, p: Path) -> bool:
        return str(p) in self.data["files"] or str(p) in self.data["trees"]

    @property
    def state(self) -> dict:
        return self.data["state"]

    def save(self) -> None:
        if self.dry:
            return
        text = json.dumps(self.data, indent=1, sort_keys=True) + "\n"
        if self.path.is_file() and self.path.read_text(encoding="utf-8") == text:
            return  # a run that changes nothing leaves even the manifest untouched
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(str(tmp), str(self.path))



def uninstall(base: Path, cache: Path, dry: bool) -> int:
    """Remove exactly what the manifest lists (changed files are kept and named) and the engine's cache."""
    path = base / MANIFEST_NAME
    if not path.is_file():
        print(f"Nothing to uninstall: no installer manifest at {path}")
        return 0
    m = Manifest(path, dry)
    verb = "would remove" if dry else "remove"
    kept = []
    for tree in m.data["trees"]:
        if Path(tree).exists():
            print(f"  {verb} {tree}")
            if not dry:
                shutil.rmtree(tree)
    if cache.is_dir():
        print(f"  {verb} the engine's cache {cache}")
        if not dry:
            shutil.rmtree(str(cache))
    for tree in m.data["engine_trees"]:
        if Path(tree).is_dir():
            print(f"  {verb} {tree} (written by the engine's packages; absent before the install)")
            if not dry:
                shutil.rmtree(tree)
    for f, digest in sorted(m.data["files"].items()):
        p = Path(f)
        if not p.is_file():
            continue
        if sha256_file(p) != digest:
            kept.append(f)
            continue
        print(f"  {verb} {p}")
        if not dry:
            p.unlink()
    for d in reversed([Path(d) for d in m.data["dirs"]]):
        if d == base and not dry and path.is_file():
            path.unlink()  # the manifest goes last, just before its own folder
        remove_dir_if_ours(d, verb, dry)
    if not dry and path.is_file():
        path.unlink()
    for d in reversed([Path(d) for d in m.data["engine_dirs"]]):
        if d.is_dir() and not dry and not any(d.iterdir()):
            d.rmdir()  # absent before the install, made for the engine's cache, empty again
            print(f"  {verb} folder {d}")
    for f in kept:
        print(f"  kept {f}: changed since it was installed")
    print("Uninstalled." if not dry else "Dry run: nothing was removed.")
    return 0


def remove_dir_if_ours(d: Path, verb: str, dry: bool) -> None:
    """A folder the installer created goes once empty; caches Python wrote there go with it."""
    if not d.is_dir():
        return
    cache = d / "__pycache__"
    if cache.is_dir() and not dry:
        shutil.rmtree(str(cache))
    if dry:
        return
    try:
        d.rmdir()
        print(f"  {verb} folder {d}")
    except OSError:
        print(f"  kept folder {d}: it holds files the installer did not put there")

