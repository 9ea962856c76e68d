"""The installer's base: its output (what it does, what it would do in a dry run) and the recorded file
operations every step uses, so that the manifest lists each folder and file it creates."""
from __future__ import annotations

import hashlib
import os
import stat
import sys
import tempfile
from pathlib import Path

from .common import sha256_file
from .manifest import Manifest


class Steps:
    """Shared by the installer's rooms (venv, weights, gimp); cli.Installer sets the attributes."""

    args: object
    dry: bool
    platform: str
    manifest: Manifest
    changes: int
    planned: set
    warnings: list

    # -- output
    def say(self, msg: str) -> None:
        print(msg, flush=True)

    def step(self, msg: str) -> None:
        self.say("\n== " + msg)

    def act(self, msg: str) -> None:
        """Report a change; in a dry run, the change that would be made."""
        self.changes += 1
        self.say(("  would " if self.dry else "  ") + msg)

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
        self.say("  WARNING: " + msg)

    # -- recorded file operations
    def makedirs(self, d: Path) -> None:
        missing = []
        p = d
        while not p.exists() and p not in self.planned:
            missing.append(p)
            p = p.parent
        for m in reversed(missing):
            self.act(f"create folder {m}")
            self.planned.add(m)
            if not self.dry:
                m.mkdir()
                self.manifest.add_dir(m)
        if missing:
            self.manifest.save()

    def put_file(self, dest: Path, data: bytes, mode: int = 0o644) -> None:
        """Write dest atomically unless it already holds exactly this content and mode."""
        digest = hashlib.sha256(data).hexdigest()
        if dest.is_file() and sha256_file(dest) == digest:
            if sys.platform != "win32" and stat.S_IMODE(dest.stat().st_mode) != mode:
                self.act(f"set mode {mode:o} on {dest}")
                if not self.dry:
                    os.chmod(str(dest), mode)
            if not self.manifest.owns(dest) and not self.dry:
                self.manifest.add_file(dest, digest)  # same content as ours: ours to remove later
                self.manifest.save()
            return
        self.makedirs(dest.parent)
        if dest.exists():
            if not self.manifest.owns(dest):
                self.say(f"  replacing {dest} (not from this installer)")
            self.act(f"update {dest}")
        else:
            self.act(f"write {dest}")
        if self.dry:
            return
        fd, tmp = tempfile.mkstemp(dir=str(dest.parent), prefix=".artcloak-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, mode)
            os.replace(tmp, str(dest))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self.manifest.add_file(dest, digest)
        self.manifest.save()

