"""The surrogate model weights: copied or downloaded, each checked against the registry's pinned hashes."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

from .common import APP, REPO, Failure, sha256_file
from .steps import Steps

DOWNLOAD_TIMEOUT = 60


def git_blob_id(path: Path) -> str:
    """The id git gives a file's content (the registry pins every weight file by it), read in chunks.
    The engine's artcloak/models/loader.py git_blob_id is the reference; tests/test_install.py
    checks both agree."""
    h = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_registry():
    """The engine's model registry, read from the repository by path (hashes live only there)."""
    path = REPO / "engine" / APP / "models" / "registry.py"
    spec = importlib.util.spec_from_file_location("_artcloak_registry", str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building classes
    spec.loader.exec_module(module)
    return module



class WeightSteps(Steps):
    """Put every registered model's weights in the models folder, verified."""

    def install_models(self) -> list[str]:
        """Install the registered models' weights; returns the models whose encoder is in place."""
        a = self.args
        self.step(f"Model weights ({self.models_dir})")
        registry = load_registry()
        names = [n.strip() for n in a.models.split(",") if n.strip()] if a.models else list(registry.MODELS)
        unknown = [n for n in names if n not in registry.MODELS]
        if unknown:
            raise Failure(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(registry.MODELS)}")
        source = Path(a.models_from).expanduser().resolve() if a.models_from else None
        if source is not None and not source.is_dir():
            raise Failure(f"--models-from {source} is not a folder")
        base_url = (a.models_url.rstrip("/") + "/") if a.models_url else registry.UPSTREAM_URL
        self.makedirs(self.models_dir)
        usable = []
        for name in names:
            spec = registry.MODELS[name]
            problems = [self.fetch_weight(wf, source, base_url) for wf in spec.files]
            if not problems[0]:
                usable.append(name)
                detail = f"; no decoder ({problems[1]}): amplification not measured" if problems[1] else ""
                self.say(f"  {name:<8} ok ({spec.serves}){detail}")
            else:
                self.warn(f"model {name} ({spec.serves}) not installed: {problems[0]}")
        if usable:
            lic = self.models_dir / "LICENSE"
            if source is not None and (source / "LICENSE").is_file():
                self.put_file(lic, (source / "LICENSE").read_bytes())
            elif source is None and not lic.exists():
                data = self.download_bytes(base_url + "LICENSE")
                if data:
                    self.put_file(lic, data)
        return usable

    def fetch_weight(self, wf, source: Path | None, base_url: str) -> str:
        """Put one verified weight file in place; returns "" or why it could not be had."""
        dest = self.models_dir / wf.filename
        if dest.is_file() and self.verify(wf, dest) is None:
            if not self.manifest.owns(dest) and not self.dry:
                self.say(f"  {wf.filename} already present (verified; not managed by this installer)")
            return ""
        if source is not None:
            src = source / wf.filename
            if not src.is_file():
                return f"{wf.filename} is not in {source}"
            problem = self.verify(wf, src)
            if problem:
                return f"{src} {problem}"
            self.act(f"copy {wf.filename} from {source}")
            if not self.dry:
                self.place(src, dest, copy=True)
            return ""
        url = base_url + wf.filename
        self.act(f"download {url}")
        if self.dry:
            return ""
        fd, tmp = tempfile.mkstemp(dir=str(self.models_dir), prefix=".download-")
        os.close(fd)
        tmp = Path(tmp)
        try:
            try:
                with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as r, open(tmp, "wb") as f:
                    shutil.copyfileobj(r, f, 1 << 20)
            except Exception as e:  # URLError, timeouts, HTTP errors: report and go on with the rest
                return f"downloading {url} failed: {e}"
            problem = self.verify(wf, tmp)
            if problem:
                return f"the download from {url} {problem}; discarded"
            self.place(tmp, dest, copy=False)
            return ""
        finally:
            if tmp.exists():
                tmp.unlink()

    def verify(self, wf, path: Path) -> str | None:
        if git_blob_id(path) != wf.git_blob:
            return "does not match the pinned git blob id (corrupt or a different file)"
        if wf.sha256 and sha256_file(path) != wf.sha256:
            return "does not match the pinned sha256"
        return None

    def place(self, src: Path, dest: Path, copy: bool) -> None:
        if copy:
            fd, tmp = tempfile.mkstemp(dir=str(dest.parent), prefix=".copy-")
            os.close(fd)
            shutil.copyfile(str(src), tmp)
            src = Path(tmp)
        os.chmod(str(src), 0o644)
        os.replace(str(src), str(dest))
        self.manifest.add_file(dest, sha256_file(dest))
        self.manifest.save()

    def download_bytes(self, url: str) -> bytes | None:
        if self.dry:
            return None
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as r:
                return r.read()
        except Exception:
            return None
