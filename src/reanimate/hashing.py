"""sha256 of files and directories, with a stat-keyed memo so big inputs are hashed once.

The memo (like git's index) trusts a file's (size, mtime_ns, inode, ctime_ns). The ctime is
what makes it sound: the kernel sets it on every write, truncate, chmod or rename and no system
call can set it back (`touch -r` restores the mtime, not the ctime), so a file edited since it
was hashed always misses the memo and is hashed again. Each entry is signed (HMAC-SHA256) with a
key kept outside the work directory (~/.cache/reanimate/memo.key, mode 0600), so a hand-edited
hashes.json cannot vouch for a file: an entry whose signature does not check is ignored. The
memo is only an accelerator, never a source of truth for outputs we produce; concurrent runs
merge their entries under a file lock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from functools import cache
from pathlib import Path

from reanimate.atomic import write_text

CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def sha256_tree(path: Path, memo: HashMemo | None = None) -> str:
    """A directory's digest: sha256 over its sorted (relative path, file digest) pairs."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        file_digest = memo.sha256(file) if memo else sha256_file(file)
        digest.update(f"{rel}\0{file_digest}\n".encode())
    return digest.hexdigest()


def sha256_path(path: Path, memo: HashMemo | None = None) -> str:
    if path.is_dir():
        return sha256_tree(path, memo)
    return memo.sha256(path) if memo else sha256_file(path)


def sha256_files(paths: list[str]) -> dict[str, str | OSError]:
    """sha256 of each distinct path, hashed in parallel threads (hashlib releases the GIL);
    the OSError in place of a digest for a file that cannot be read."""
    from concurrent.futures import ThreadPoolExecutor

    def digest(path: str) -> str | OSError:
        try:
            return sha256_file(path)
        except OSError as exc:
            return exc

    distinct = list(dict.fromkeys(paths))
    if not distinct:
        return {}
    with ThreadPoolExecutor(max(1, min(len(distinct), os.cpu_count() or 1, 8))) as pool:
        return dict(zip(distinct, pool.map(digest, distinct), strict=True))


def stat_fingerprint(path: str | Path) -> list[int]:
    """(size, mtime_ns, inode, ctime_ns) of a file: changes with every change of its content."""
    stat = os.stat(path)
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns]


@cache
def _memo_key() -> bytes | None:
    """The user's memo-signing key (created on first use); None if it cannot be kept."""
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "reanimate"
    path = folder / "memo.key"
    try:
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        key = path.read_text().strip()
        return bytes.fromhex(key) if len(key) == 64 else None
    except (OSError, ValueError):
        return None


def _signature(key: bytes, path: str, fingerprint: list[int], digest: str) -> str:
    message = json.dumps([path, fingerprint, digest]).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class HashMemo:
    """path -> sha256, trusted while the file's stat fingerprint and the entry's signature hold."""

    def __init__(self, store: Path | None) -> None:
        self.store = store
        self.key = _memo_key() if store else None
        self.entries: dict[str, list] = self._read() if self.key else {}
        self.added: dict[str, list] = {}

    def _read(self) -> dict[str, list]:
        try:
            data = json.loads(self.store.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _valid(self, path: str, entry) -> bool:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], list)):
            return False
        fingerprint, digest, signature = entry
        expected = _signature(self.key, path, fingerprint, str(digest))
        return isinstance(signature, str) and hmac.compare_digest(signature, expected)

    def sha256(self, path: Path) -> str:
        key = str(Path(path).resolve())
        fingerprint = stat_fingerprint(path)
        entry = self.entries.get(key)
        if self.key and entry and self._valid(key, entry) and entry[0] == fingerprint:
            return entry[1]
        value = sha256_file(path)
        if self.key and stat_fingerprint(path) == fingerprint:  # unchanged while we read it
            entry = [fingerprint, value, _signature(self.key, key, fingerprint, value)]
            self.entries[key] = self.added[key] = entry
        return value

    def record(self, path: Path, digest: str) -> None:
        """Remember `digest` for `path` without reading it: for a file just hashed while it was
        streamed in (a second pass over a large download would cost as much as the first)."""
        if not self.key:
            return
        key = str(Path(path).resolve())
        fingerprint = stat_fingerprint(path)
        entry = [fingerprint, digest, _signature(self.key, key, fingerprint, digest)]
        self.entries[key] = self.added[key] = entry

    def save(self) -> None:
        """Merge this run's new entries into the store (under a lock: runs may share it)."""
        if not (self.store and self.key and self.added):
            return
        from filelock import FileLock

        self.store.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.store) + ".lock"):
            merged = self._read()
            merged.update(self.added)
            write_text(self.store, json.dumps(merged))
        self.added = {}
