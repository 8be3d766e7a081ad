"""The analysis code of a bundle: the reanimate wheel of the exact source in use.

Built by the container machinery's `reanimate.containers.wheelhouse.reanimate_wheel` (one
builder for images and bundles): from a temporary copy of the checkout's sources, with pinned
setuptools and wheel and SOURCE_DATE_EPOCH fixed, so the same source gives the same bytes, and
cached by source digest (nothing is left in the repository).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Wheel:
    path: Path  # the .whl file (in the cache)
    sha256: str
    source_sha256: str  # the digest of the sources (and build tools) it was built from


def build_wheel(progress: Callable[[str], None] | None = None) -> Wheel:
    """The wheel of the checkout reanimate runs from (built once per source digest)."""
    from reanimate.containers.requirements import project_root
    from reanimate.containers.wheelhouse import reanimate_wheel

    path, sha = reanimate_wheel(project_root(), progress)
    return Wheel(path, sha, path.parent.name)
