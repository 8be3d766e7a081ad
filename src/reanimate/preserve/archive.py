"""Opening a bundle safely: what a zip may hold before anything of it is read or written.

A bundle comes from elsewhere, so before a byte is extracted its central directory is checked,
and every refusal is one line (exit 2) that names the member:

* the file itself: not larger than ``max_bundle``; a readable zip (a corrupt or truncated one is
  refused);
* every member name: relative, in POSIX form, without ``..``, ``.``, empty or absolute parts,
  backslashes, drive letters or NUL; no name twice; no name that is both a file and a folder;
* every member: a regular file or a folder (a symbolic link, device or FIFO is refused), not
  encrypted, compressed with a method zipfile knows;
* sizes: the declared uncompressed total at most ``max_unpacked``; a member of more than 1 MiB
  that expands more than ``max_ratio`` times is a zip bomb; at most ``max_members`` members.
  While a member is read its bytes are counted: one that yields more than it declares is cut
  off and refused; the CRC is checked at its end.

Extraction writes only under the target folder (created fresh, or an empty one), each file
opened with O_EXCL|O_NOFOLLOW in folders the extraction made; on any failure what it wrote is
removed again, so a refused bundle leaves nothing behind. The digests of a bundle's files are
checked against its ro-crate-metadata.json as they are read (`Bundle`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from reanimate.errors import ReanimateError

KB, MB, GB = 1000, 1000**2, 1000**3
KIB, MIB, GIB = 1024, 1024**2, 1024**3
UNITS = {"": 1, "B": 1, "KB": KB, "MB": MB, "GB": GB, "TB": 1000**4,
         "K": KIB, "M": MIB, "G": GIB, "KIB": KIB, "MIB": MIB, "GIB": GIB, "TIB": 1024**4}
METADATA = "ro-crate-metadata.json"
METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
RATIO_FLOOR = MIB  # members smaller than this are never called bombs
CHUNK = 1 << 20


class BundleRefused(ReanimateError):
    """A bundle (or a zip inside one) that is not opened: unsafe, corrupt or inconsistent."""


def parse_size(text: str) -> int:
    """`100MB` -> 100000000, `2GiB` -> 2147483648, `512` -> 512 (bytes)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    unit = match and match.group(2).upper()
    if not match or unit not in UNITS:
        raise ReanimateError(f"{text!r}: not a size (examples: 100MB, 2GiB, 512)")
    return int(float(match.group(1)) * UNITS[unit])


def human_size(size: int | float) -> str:
    """1234567 -> '1.2 MB' (decimal units, as parse_size reads them)."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


@dataclass(frozen=True)
class Limits:
    max_bundle: int = 64 * GB  # the zip file's own size
    max_unpacked: int = 256 * GB  # the sum of its members' sizes
    max_ratio: float = 200.0  # uncompressed / compressed, for a member over 1 MiB
    max_members: int = 100_000
    max_metadata: int = 64 * MB  # ro-crate-metadata.json


def check_name(name: str) -> str:
    """A member's name as a safe relative POSIX path (a folder's without its trailing /)."""
    clean = name[:-1] if name.endswith("/") else name
    parts = clean.split("/")
    if (not clean or "\0" in name or "\\" in name or name.startswith("/")
            or re.match(r"^[A-Za-z]:", name)
            or any(p in ("", ".", "..") for p in parts)):
        raise BundleRefused(f"unsafe member name {name!r} (absolute, '..', or not a plain "
                            "relative path); refusing the archive")
    return clean


class SafeZip:
    """A zip whose central directory passed the checks above; members read with counting."""

    def __init__(self, path: Path, limits: Limits = Limits(), what: str = "bundle") -> None:
        self.path, self.limits, self.what = Path(path), limits, what
        try:
            size = self.path.stat().st_size
        except OSError as exc:
            raise BundleRefused(f"{path}: cannot read the {what} ({exc.strerror})") from None
        if not self.path.is_file():
            raise BundleRefused(f"{path}: not a file")
        if size > limits.max_bundle:
            raise BundleRefused(f"{path}: the {what} is {size} bytes, over the limit of "
                                f"{limits.max_bundle} bytes (--max-size)")
        try:
            self.zf = zipfile.ZipFile(self.path)
            infos = self.zf.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
                NotImplementedError) as exc:
            raise BundleRefused(f"{path}: not a readable zip, corrupt or truncated "
                                f"({exc})") from None
        try:
            self._check(infos)
        except BaseException:
            self.zf.close()
            raise

    def _check(self, infos: list[zipfile.ZipInfo]) -> None:
        path, limits = self.path, self.limits
        self.files: dict[str, zipfile.ZipInfo] = {}
        self.folders: set[str] = set()
        total = 0
        if len(infos) > limits.max_members:
            raise BundleRefused(f"{path}: {len(infos)} members, over the limit of "
                                f"{limits.max_members}")
        for info in infos:
            clean = check_name(info.filename)
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode) if info.create_system == 3 else 0
            if kind == stat.S_IFLNK:
                raise BundleRefused(f"member {info.filename!r} is a symbolic link; refusing "
                                    "the archive")
            is_dir = info.filename.endswith("/") or kind == stat.S_IFDIR
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR) or (kind == stat.S_IFDIR
                                                               and not info.is_dir()):
                raise BundleRefused(f"member {info.filename!r} is not a regular file or folder; "
                                    "refusing the archive")
            if info.flag_bits & 0x1:
                raise BundleRefused(f"member {info.filename!r} is encrypted; refusing the archive")
            if info.compress_type not in METHODS:
                raise BundleRefused(f"member {info.filename!r} uses compression method "
                                    f"{info.compress_type}, which is not supported")
            if clean in self.files or clean in self.folders:
                raise BundleRefused(f"member {clean!r} appears twice; refusing the archive")
            if is_dir:
                self.folders.add(clean)
                continue
            total += info.file_size
            if total > limits.max_unpacked:
                raise BundleRefused(f"{path}: its members add up to more than "
                                    f"{limits.max_unpacked} bytes unpacked (--max-unpacked); "
                                    "refusing it")
            if info.file_size > RATIO_FLOOR and \
                    info.file_size > limits.max_ratio * max(info.compress_size, 1):
                raise BundleRefused(
                    f"member {clean!r} expands {info.file_size} bytes from "
                    f"{info.compress_size} (more than {limits.max_ratio:g} times): a zip bomb; "
                    "refusing the archive")
            self.files[clean] = info
        for name in self.files:
            parents = name.split("/")[:-1]
            for i in range(1, len(parents) + 1):
                if "/".join(parents[:i]) in self.files:
                    raise BundleRefused(f"member {'/'.join(parents[:i])!r} is a file and a "
                                        f"folder (of {name!r}); refusing the archive")
                self.folders.add("/".join(parents[:i]))

    def close(self) -> None:
        self.zf.close()

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def chunks(self, name: str) -> Iterator[bytes]:
        """The bytes of a member, refused if it yields more than it declares or is corrupt."""
        info = self.files[name]
        read = 0
        try:
            with self.zf.open(info) as handle:
                while block := handle.read(CHUNK):
                    read += len(block)
                    if read > info.file_size:
                        raise BundleRefused(f"member {name!r} holds more than the "
                                            f"{info.file_size} bytes it declares: a zip bomb; "
                                            "refusing the archive")
                    yield block
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError) as exc:
            raise BundleRefused(f"member {name!r} is corrupt ({exc}); refusing the "
                                f"{self.what}") from None
        if read != info.file_size:
            raise BundleRefused(f"member {name!r} holds {read} bytes, not the {info.file_size} "
                                "it declares; refusing the archive")

    def read(self, name: str, limit: int) -> bytes:
        if self.files[name].file_size > limit:
            raise BundleRefused(f"member {name!r} is over {limit} bytes")
        return b"".join(self.chunks(name))

    def digest(self, name: str) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        for block in self.chunks(name):
            digest.update(block)
            size += len(block)
        return digest.hexdigest(), size

    def extract(self, target: Path,
                check: Callable[[str, str, int], None] | None = None) -> list[str]:
        """Every member under `target` (fresh or empty); `check(name, sha256, size)` may refuse
        one after it is written. On any failure `target` is left as it was found."""
        target = Path(target)
        created = not target.exists()
        if not created and (not target.is_dir() or target.is_symlink() or any(target.iterdir())):
            raise ReanimateError(f"{target}: exists and is not an empty folder; give a new one")
        try:
            target.mkdir(parents=True, exist_ok=True)
            root = target.resolve()
            for folder in sorted(self.folders):
                (root / folder).mkdir(mode=0o755, parents=True, exist_ok=True)
            written = []
            for name in sorted(self.files):
                path = root / name
                path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                if not path.parent.resolve().is_relative_to(root):  # cannot happen: checked
                    raise BundleRefused(f"member {name!r} would land outside {target}")
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                digest, size = hashlib.sha256(), 0
                with os.fdopen(os.open(path, flags, 0o644), "wb") as out:
                    for block in self.chunks(name):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
                if check is not None:
                    check(name, digest.hexdigest(), size)
                written.append(name)
            return written
        except BaseException:
            if created:
                shutil.rmtree(target, ignore_errors=True)
            else:
                for child in list(target.iterdir()):
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
            raise


# -- a bundle: the zip and its RO-Crate metadata ------------------------------------------
def entity_path(identifier: str) -> str | None:
    """The member a data entity's @id names, or None for a URL or a contextual entity."""
    if identifier.startswith("#") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", identifier):
        return None
    return unquote(identifier).rstrip("/")


def is_url(identifier: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", identifier))


def types(entity: dict) -> set[str]:
    value = entity.get("@type", [])
    return set(value if isinstance(value, list) else [value])


class Bundle:
    """A bundle opened safely, with its metadata read and every member described by it."""

    def __init__(self, path: Path, limits: Limits = Limits()) -> None:
        self.path = Path(path)
        self.zip = SafeZip(self.path, limits)
        try:
            if METADATA not in self.zip.files:
                raise BundleRefused(f"{path}: no {METADATA}; not a bundle")
            try:
                doc = json.loads(self.zip.read(METADATA, limits.max_metadata))
                graph = doc["@graph"]
                self.entities = {e["@id"]: e for e in graph}
                if len(self.entities) != len(graph):
                    raise ValueError("an @id appears twice")
            except (ValueError, KeyError, TypeError) as exc:
                raise BundleRefused(f"{path}: {METADATA} is not valid RO-Crate JSON-LD "
                                    f"({exc})") from None
            self.files: dict[str, dict] = {}  # member -> its File entity
            self.by_url: dict[str, dict] = {}  # URL -> File entity (not in the bundle)
            for identifier, entity in self.entities.items():
                if "File" not in types(entity):
                    continue
                member = entity_path(identifier)
                if member is None:
                    if is_url(identifier):
                        self.by_url[identifier] = entity
                    continue
                if member not in self.zip.files:
                    raise BundleRefused(f"{path}: {METADATA} describes {member}, which is not in "
                                        "the bundle")
                if not (isinstance(entity.get("sha256"), str)
                        and re.fullmatch(r"[0-9a-f]{64}", entity["sha256"])):
                    raise BundleRefused(f"{path}: {METADATA} gives no sha256 for {member}")
                if not re.fullmatch(r"[0-9]+", str(entity.get("contentSize", "0"))):
                    raise BundleRefused(f"{path}: {METADATA} gives {member} a contentSize that "
                                        "is not a number of bytes")
                self.files[member] = entity
            for member in self.zip.files:
                if member != METADATA and member not in self.files:
                    raise BundleRefused(f"{path}: member {member} is not described in "
                                        f"{METADATA}; refusing the bundle")
        except BaseException:
            self.zip.close()
            raise

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def root(self) -> dict:
        about = self.entities.get(METADATA, {}).get("about", {}).get("@id", "./")
        return self.entities.get(about, {})

    def ref(self, value) -> dict:
        """The entity a {"@id": ...} value names ({} if none)."""
        if isinstance(value, dict) and "@id" in value:
            return self.entities.get(value["@id"], {"@id": value["@id"]})
        return {}

    def refs(self, value) -> list[dict]:
        values = value if isinstance(value, list) else [value] if value else []
        return [self.ref(v) for v in values]

    def mismatch(self, name: str, sha: str, size: int) -> str | None:
        entity = self.files[name]
        if entity["sha256"] != sha:
            return f"{name}: sha256 {sha} does not match the metadata's {entity['sha256']}"
        declared = entity.get("contentSize")
        if declared is not None and str(declared) != str(size):
            return f"{name}: {size} bytes, the metadata says {declared}"
        return None

    def check_digests(self) -> list[str]:
        """Every member whose bytes do not match the metadata (read, nothing written)."""
        problems = []
        for name in sorted(self.files):
            sha, size = self.zip.digest(name)
            problem = self.mismatch(name, sha, size)
            if problem:
                problems.append(problem)
        return problems

    def extract(self, target: Path) -> None:
        """Unpack into `target`, refusing (and removing what was written) on a digest mismatch."""
        def check(name: str, sha: str, size: int) -> None:
            if name == METADATA:
                return
            problem = self.mismatch(name, sha, size)
            if problem:
                raise BundleRefused(f"{problem}; refusing the bundle")

        self.zip.extract(target, check)
