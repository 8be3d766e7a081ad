"""Byte-deterministic JSON: sorted keys, two-space indent, repr floats, no NaN, newline at end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reanimate.atomic import write_text
from reanimate.errors import ReanimateError


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, indent=2, allow_nan=False) + "\n"


def write(path: str | Path, obj: Any) -> None:
    """Write atomically (reanimate.atomic): a failure never leaves half a file."""
    write_text(path, dumps(obj))


def read(path: str | Path, what: str = "JSON file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise ReanimateError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReanimateError(f"{path}: not valid JSON ({exc})") from None


def rounded(x: float, digits: int = 12) -> float:
    """A float rounded to `digits` significant digits (hides last-bit noise of minimisers)."""
    x = float(x)
    if x == 0.0 or not (abs(x) < float("inf")):
        return 0.0 if x == 0.0 else x
    return float(f"{x:.{digits}g}")
