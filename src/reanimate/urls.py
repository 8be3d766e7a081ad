"""Which input paths are remote: the one list of URL schemes reanimate reads without a local copy.

A remote file is read in place (``https://`` and ``root://`` through uproot/fsspec, ``s3://``
through fsspec) and has no sha256 we can check before the run; everything else is a local path,
relative to the spec or catalogue that names it.
"""

from __future__ import annotations

import os

#: URL prefixes of files read where they are (never copied, hashed or staged).
REMOTE_PREFIXES: tuple[str, ...] = ("http://", "https://", "root://", "s3://")


def is_remote(path: str | os.PathLike) -> bool:
    """True for a URL in :data:`REMOTE_PREFIXES`; False for a local path (``Path`` objects too)."""
    return isinstance(path, str) and path.startswith(REMOTE_PREFIXES)
