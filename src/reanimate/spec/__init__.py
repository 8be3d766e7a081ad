"""The analysis spec: models, loading with positions, checks and the step graph.

The names below load on first use (PEP 562), so that light submodules such as
:mod:`reanimate.spec.schema` (the packaged JSON Schema) import without pydantic.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "LoadedSpec": "reanimate.spec.loader",
    "load_spec": "reanimate.spec.loader",
    "validate_text": "reanimate.spec.loader",
    "Spec": "reanimate.spec.models",
    "Problem": "reanimate.spec.problems",
}

__all__ = ["LoadedSpec", "Problem", "Spec", "load_spec", "validate_text"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
