"""Run records: WORKDIR/runs/RUN_ID/provenance.json and the step logs beside it."""

from __future__ import annotations

import json
import math
import os
import platform
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

from reanimate import __version__
from reanimate.atomic import write_text
from reanimate.engines.plan import package_versions


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_run_dir(workdir: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = workdir / "runs" / f"{stamp}-{secrets.token_hex(3)}"
    (run_dir / "logs").mkdir(parents=True)
    return run_dir


def environment() -> dict:
    return {
        "reanimate": __version__,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "packages": package_versions(),
    }


def standard_json(value):
    """`value` with non-finite floats as strings, so the record stays standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: standard_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [standard_json(v) for v in value]
    return value


def write_provenance(run_dir: Path, payload: dict) -> Path:
    path = run_dir / "provenance.json"
    text = json.dumps(standard_json(payload), indent=2, sort_keys=False, allow_nan=False,
                      default=str)
    write_text(path, text + "\n")
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, latest)
    return path
