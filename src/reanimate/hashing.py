"""sha256 of files and directories, with a stat-keyed memo so big inputs are hashed once.

The memo (like git's index) trusts (size, mtime_ns, inode): a rewrite that changes any of them is
hashed again. It lives in the work directory and is only an accelerator, never a source of truth
for outputs we produce.
"""

from __future__ import annotations

import hashlib
import json
import os
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


class HashMemo:
    def __init__(self, store: Path | None) -> None:
        self.store = store
        self.entries: dict[str, list] = {}
        if store and store.exists():
            try:
                self.entries = json.loads(store.read_text())
            except (OSError, ValueError):
                self.entries = {}

    def sha256(self, path: Path) -> str:
        stat = os.stat(path)
        key = str(Path(path).resolve())
        fingerprint = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        entry = self.entries.get(key)
        if entry and entry[:3] == fingerprint:
            return entry[3]
        value = sha256_file(path)
        self.entries[key] = fingerprint + [value]
        return value

    def save(self) -> None:
        if self.store:
            self.store.parent.mkdir(parents=True, exist_ok=True)
            write_text(self.store, json.dumps(self.entries))
