"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every write goes to a uniquely named temporary file in the target's folder (so concurrent
writers never share one) and is moved over the target with os.replace, which is atomic on
POSIX within one filesystem. On any error the temporary file is removed and the target is
left as it was.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def temporary_sibling(path: str | os.PathLike) -> Path:
    """A fresh, unused name beside `path` (hidden, same folder, so os.replace stays atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, keep_name: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on error it vanishes.

    For writers that want a file name (uproot, matplotlib, xgboost's save_model). With
    `keep_name` the temporary file has the target's own name, inside a fresh hidden folder
    beside it: for formats that record their file name in the file (ROOT does), so that the
    bytes do not depend on the temporary name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if keep_name:
        scratch = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        try:
            yield scratch / path.name
            os.replace(scratch / path.name, path)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    tmp = temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (flushed to disk before the rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return write_bytes(path, text.encode("utf-8"))
