"""Content-addressed step cache: WORKDIR/cache/STEP/KEY/ holds a step's outputs and its meta.

KEY = sha256 of the plan's key payload (engines/plan.py: the step definition without
description, resources and dask settings, its parameter values, the sha256 of every input, the
digest of the code it runs, the versions of the key packages). The payload is stored in the
meta, so `reanimate plan` can say what changed since an entry was made.

An entry is valid while every output file keeps the (size, mtime_ns, ctime_ns) recorded when
it was stored: an edit, even one followed by `touch -r`, changes the ctime. Entries are made
for concurrent runs: only the declared outputs are moved into a private `.partial` folder, which
is renamed into place in one step; an existing valid entry is never replaced (the first run to
store a key wins and later ones adopt it), and one key is produced by one run at a time
(`key_lock`), so what a provenance record names is what the cache holds.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from reanimate.atomic import write_text
from reanimate.errors import ReanimateError
from reanimate.hashing import sha256_path

META = ".reanimate-meta.json"


def _fingerprints(path: Path) -> dict[str, list[int]]:
    files = [path] if not path.is_dir() else sorted(p for p in path.rglob("*")
                                                    if p.is_file() or p.is_symlink())
    out = {}
    for file in files:
        stat = file.lstat()
        out[file.relative_to(path).as_posix() if file != path else ""] = [
            stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns,
        ]
    return out


def check_links(path: Path, root: Path) -> None:
    """Refuse symlinks that would not resolve once `root` is moved: absolute ones, and relative
    ones that leave `root`."""
    links = [path] if path.is_symlink() else []
    if path.is_dir() and not path.is_symlink():
        links += [p for p in path.rglob("*") if p.is_symlink()]
    for link in links:
        target = os.readlink(link)
        inside = os.path.normpath(os.path.join(os.path.dirname(link), target))
        if os.path.isabs(target) or not Path(inside).is_relative_to(root):
            raise ReanimateError(f"output {link.relative_to(root)} is a symlink to {target}, "
                                 "outside the step's folder; write the file itself")


class StepCache:
    def __init__(self, workdir: Path) -> None:
        self.root = workdir / "cache"

    def entry_dir(self, step: str, key: str) -> Path:
        return self.root / step / key

    def key_lock(self, step: str, key: str):
        """An exclusive lock on producing (step, key); concurrent runs wait for each other."""
        from filelock import FileLock

        (self.root / step).mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / step / f".{key}.lock"))

    def lookup(self, step: str, key: str, outputs: dict[str, str]) -> dict | None:
        """The meta of a valid entry, or None (missing, incomplete, malformed or modified)."""
        directory = self.entry_dir(step, key)
        try:
            meta = json.loads((directory / META).read_text())
            recorded = meta["outputs"]
            if not isinstance(recorded, dict) or set(recorded) != set(outputs):
                return None
            for info in recorded.values():
                path = directory / info["path"]
                if not path.exists() or _fingerprints(path) != info["files"]:
                    return None
                str(info["sha256"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        return meta

    def latest(self, step: str) -> dict | None:
        """The meta of the step's most recently stored entry (for naming what changed)."""
        folder = self.root / step
        metas = []
        for path in folder.glob(f"*/{META}") if folder.is_dir() else []:
            try:
                metas.append((path.stat().st_mtime_ns, path))
            except OSError:
                continue
        for _, path in sorted(metas, reverse=True):
            try:
                meta = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(meta, dict):
                return meta
        return None

    def store(self, step: str, key: str, scratch: Path, outputs: dict[str, str],
              record: dict, memo, payload: dict | None = None) -> dict:
        """Move a finished step's declared outputs into the cache; return the entry's meta.

        The caller holds key_lock(step, key). Files the step left beside its outputs are not
        cached. If a valid entry already exists (a concurrent run stored it), it is kept and
        returned, and this run's outputs are dropped.
        """
        folder = self.root / step
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{key}-{uuid.uuid4().hex[:8]}.partial"
        partial.mkdir()
        try:
            recorded = {}
            for name, rel in outputs.items():
                clean = rel.rstrip("/")
                check_links(scratch / clean, scratch)
                destination = partial / clean
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.rename(scratch / clean, destination)
                recorded[name] = {"path": clean, "sha256": sha256_path(destination, memo),
                                  "files": _fingerprints(destination)}
            meta = {"key": key, "step": step, "outputs": recorded, "record": record,
                    "key_payload": payload}
            write_text(partial / META, json.dumps(meta, indent=2, sort_keys=True, default=str))
            existing = self.lookup(step, key, outputs)
            if existing is not None:
                return existing
            target = self.entry_dir(step, key)
            if target.exists():  # an invalid entry (modified or half-made): set it aside
                trash = folder / f".{key}-{uuid.uuid4().hex[:8]}.trash"
                os.rename(target, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.rename(partial, target)
            partial = None
            return meta
        finally:
            if partial is not None:
                shutil.rmtree(partial, ignore_errors=True)
