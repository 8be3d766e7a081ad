"""The content-addressed blob store: every bundle, uploaded campaign file and plot is a file
`blobs/ab/cd/<sha256>` under the store folder, written once and never changed.

An upload is streamed to a temporary file in `tmp/` (hashed and counted while it is written,
refused as soon as it passes the size limit), then fsynced and moved into place with one atomic
`os.replace`: a blob path either does not exist or holds exactly the bytes its name says. A
server killed mid-upload leaves at most a temporary file in `tmp/`, which no reader ever sees
and which `sweep()` removes at the next start once it is an hour old.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from reanimate.errors import ReanimateError

SHA_RE = re.compile(r"[0-9a-f]{64}")
CHUNK = 1 << 20
STALE_S = 3600


class UploadRefused(ReanimateError):
    """An upload refused while it streamed: `status` is 413 (too large) or 422."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Incoming:
    """An upload complete in `tmp/`, not yet a blob."""

    path: Path
    sha256: str
    size: int


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class BlobStore:
    def __init__(self, settings) -> None:
        self.root = Path(settings.blobs)
        self.tmp = Path(settings.tmp)

    def path(self, sha: str) -> Path:
        if not SHA_RE.fullmatch(sha):
            raise ReanimateError(f"{sha!r}: not a sha256 digest (64 lowercase hex digits)")
        return self.root / sha[:2] / sha[2:4] / sha

    def exists(self, sha: str) -> bool:
        return SHA_RE.fullmatch(sha) is not None and self.path(sha).is_file()

    def temp(self) -> tuple[Path, object]:
        self.tmp.mkdir(parents=True, exist_ok=True)
        path = self.tmp / f"upload-{os.getpid()}-{secrets.token_hex(8)}.part"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        return path, os.fdopen(fd, "wb")

    async def receive(self, chunks: AsyncIterator[bytes], *, max_size: int,
                      expected_sha256: str | None = None, what: str = "upload") -> Incoming:
        """Stream `chunks` into `tmp/`; refused (413) the moment it passes `max_size` bytes,
        (422) when its digest is not `expected_sha256`. The temporary file is removed on any
        failure, a client that disconnects included."""
        path, handle = self.temp()
        digest, size = hashlib.sha256(), 0
        try:
            with handle:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_size:
                        raise UploadRefused(f"the {what} is over the limit of {max_size} bytes",
                                            413)
                    digest.update(chunk)
                    handle.write(chunk)
            sha = digest.hexdigest()
            if expected_sha256 is not None and sha != expected_sha256:
                raise UploadRefused(f"the {what} has sha256 {sha}, not the {expected_sha256} "
                                    "given in X-Bundle-SHA256 (corrupted in transit?)", 422)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Incoming(path, sha, size)

    def place(self, incoming: Incoming) -> str:
        """The upload as its blob (fsync, atomic rename); an existing blob is kept as it is."""
        target = self.path(incoming.sha256)
        if target.is_file():
            self.discard(incoming)
            return incoming.sha256
        with open(incoming.path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(incoming.path, 0o444)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(incoming.path, target)
        _fsync_dir(target.parent)
        return incoming.sha256

    def discard(self, incoming: Incoming) -> None:
        Path(incoming.path).unlink(missing_ok=True)

    def put_file(self, path: Path) -> str:
        """A copy of a local file as a blob (the file itself is left alone)."""
        out, handle = self.temp()
        digest, size = hashlib.sha256(), 0
        try:
            with handle, open(path, "rb") as source:
                while block := source.read(CHUNK):
                    digest.update(block)
                    size += len(block)
                    handle.write(block)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        return self.place(Incoming(out, digest.hexdigest(), size))

    def put_bytes(self, data: bytes) -> str:
        out, handle = self.temp()
        try:
            with handle:
                handle.write(data)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        return self.place(Incoming(out, hashlib.sha256(data).hexdigest(), len(data)))

    def sweep(self, older_than: float = STALE_S) -> int:
        """Remove temporary files older than `older_than` seconds (a killed server's)."""
        removed, now = 0, time.time()
        if not self.tmp.is_dir():
            return 0
        for child in self.tmp.iterdir():
            try:
                if child.is_file() and now - child.stat().st_mtime > older_than:
                    child.unlink()
                    removed += 1
            except OSError:
                pass
        return removed
