"""Which input paths are remote: the one list of URL schemes reanimate reads from a server.

A remote file is never staged, uploaded or hashed in place. With a sha256 (in the catalogue or a
bundle) an ``http://``, ``https://`` or ``root://`` file is fetched once into the
content-addressed input cache, its digest checked while it streams, and then read locally
(:mod:`reanimate.datasets.remote`); without one it is read where it is (``https://`` and
``root://`` by uproot's HTTP and XRootD sources, ``s3://`` through fsspec) and nothing can be
checked before the run. Everything else is a local path, relative to the spec or catalogue that
names it.
"""

from __future__ import annotations

import os

#: URL prefixes of files on a server (read in place, or fetched into the input cache when
#: their sha256 is known; never staged or uploaded).
REMOTE_PREFIXES: tuple[str, ...] = ("http://", "https://", "root://", "s3://")


def is_remote(path: str | os.PathLike) -> bool:
    """True for a URL in :data:`REMOTE_PREFIXES`; False for a local path (``Path`` objects too)."""
    return isinstance(path, str) and path.startswith(REMOTE_PREFIXES)
