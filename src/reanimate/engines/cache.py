"""Content-addressed step cache: WORKDIR/cache/STEP/KEY/ holds a step's outputs and its meta.

KEY = sha256 of the step definition (without description, resources and dask settings, which
must not change results), its parameter values, the sha256 of every input, the code version of
its program and the versions of the key packages. An entry is valid while every output file
still has the size and mtime recorded when it was produced.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from reanimate import __version__
from reanimate.hashing import sha256_path
from reanimate.spec.models import Step

FORMAT = 1
META = ".reanimate-meta.json"
KEY_PACKAGES = ("numpy", "awkward", "uproot", "dask", "distributed", "hist", "xgboost", "pyhf")


@cache
def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in KEY_PACKAGES + ("pydantic", "mlflow", "iminuit", "matplotlib"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@cache
def code_version(program: str | None) -> str:
    """Digest of the source a program step runs: its package's tree for reanimate.steps."""
    if not program:
        return ""
    try:
        found = importlib.util.find_spec(program)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.origin:
        return f"missing:{program}"
    origin = Path(found.origin)
    if program.startswith("reanimate.steps"):
        root = Path(__file__).resolve().parents[1] / "steps"
        files = sorted(root.rglob("*.py"))
    else:
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
    digest = hashlib.sha256(__version__.encode())
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def step_key(step: Step, parameters: dict[str, Any], input_digests: dict[str, list[str]]) -> str:
    definition = step.model_dump(mode="json", exclude={"description", "resources", "dask"})
    payload = {
        "format": FORMAT,
        "definition": definition,
        "parameters": parameters,
        "inputs": input_digests,
        "code": code_version(step.program),
        "packages": {k: v for k, v in package_versions().items() if k in KEY_PACKAGES},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


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

    def store(self, step: str, key: str, scratch: Path, outputs: dict[str, str],
              record: dict, memo) -> dict:
        """Move a finished step's scratch directory into the cache; return its meta."""
        recorded = {}
        for name, rel in outputs.items():
            path = scratch / rel
            recorded[name] = {
                "path": rel.rstrip("/"),
                "sha256": sha256_path(path, memo),
                "files": _fingerprints(path),
            }
        meta = {"key": key, "step": step, "outputs": recorded, "record": record}
        (scratch / META).write_text(json.dumps(meta, indent=2, sort_keys=True))
        target = self.entry_dir(step, key)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(scratch, target)
        # mtimes survive the rename, so the fingerprints above stay valid
        return meta
