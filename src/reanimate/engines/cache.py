"""Content-addressed step cache: WORKDIR/cache/STEP/KEY/ holds a step's outputs and its meta.

KEY = sha256 of the plan's key payload (engines/plan.py: the step definition without
description, resources and dask settings, its parameter values, the sha256 of every input, the
digest of the code it runs, the versions of the key packages). The payload is stored in the
meta, so `reanimate plan` can say what changed since an entry was made. An entry is valid while
every output file still has the size and mtime recorded when it was produced.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from reanimate.atomic import write_text
from reanimate.hashing import sha256_path

META = ".reanimate-meta.json"


def _fingerprints(path: Path) -> dict[str, list[int]]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    out = {}
    for file in files:
        stat = file.stat()
        out[file.relative_to(path).as_posix() if file != path else ""] = [
            stat.st_size, stat.st_mtime_ns,
        ]
    return out


class StepCache:
    def __init__(self, workdir: Path) -> None:
        self.root = workdir / "cache"

    def entry_dir(self, step: str, key: str) -> Path:
        return self.root / step / key

    def lookup(self, step: str, key: str, outputs: dict[str, str]) -> dict | None:
        """The meta of a valid entry, or None (missing, incomplete or modified)."""
        directory = self.entry_dir(step, key)
        try:
            meta = json.loads((directory / META).read_text())
        except (OSError, ValueError):
            return None
        recorded = meta.get("outputs", {})
        if set(recorded) != set(outputs):
            return None
        for info in recorded.values():
            path = directory / info["path"]
            if not path.exists() or _fingerprints(path) != info["files"]:
                return None
        return meta

    def latest(self, step: str) -> dict | None:
        """The meta of the step's most recently stored entry (for naming what changed)."""
        folder = self.root / step
        metas = sorted(folder.glob(f"*/{META}"), key=lambda p: p.stat().st_mtime_ns) \
            if folder.is_dir() else []
        for path in reversed(metas):
            try:
                return json.loads(path.read_text())
            except (OSError, ValueError):
                continue
        return None

    def store(self, step: str, key: str, scratch: Path, outputs: dict[str, str],
              record: dict, memo, payload: dict | None = None) -> dict:
        """Move a finished step's scratch directory into the cache; return its meta."""
        recorded = {}
        for name, rel in outputs.items():
            path = scratch / rel
            recorded[name] = {
                "path": rel.rstrip("/"),
                "sha256": sha256_path(path, memo),
                "files": _fingerprints(path),
            }
        meta = {"key": key, "step": step, "outputs": recorded, "record": record,
                "key_payload": payload}
        write_text(scratch / META, json.dumps(meta, indent=2, sort_keys=True, default=str))
        target = self.entry_dir(step, key)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(scratch, target)
        # mtimes survive the rename, so the fingerprints above stay valid
        return meta
