"""Where the container machinery keeps what it makes once per machine (never in a repository).

``$REANIMATE_CACHE`` if set, else ``$XDG_CACHE_HOME/reanimate``, else ``~/.cache/reanimate``:

* ``containers/`` — the base root file system tarball, locks, temporary build contexts, the
  virtual environment that builds the reanimate wheel;
* ``wheelhouse/`` — wheels downloaded from PyPI, by file name, each checked against its pin;
* ``wheels/reanimate/SOURCE_DIGEST/`` — reanimate wheels built from a source tree.

Removing any of them is safe: the next build makes it again.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    if os.environ.get("REANIMATE_CACHE"):
        return Path(os.environ["REANIMATE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "reanimate"


def cache_dir(*parts: str) -> Path:
    """A folder under the cache root, created on first use."""
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_lock(name: str, timeout: float = 3600):
    """An inter-process lock in ``containers/locks/`` (filelock), for one maker at a time."""
    from filelock import FileLock

    return FileLock(str(cache_dir("containers", "locks") / f"{name}.lock"), timeout=timeout)
