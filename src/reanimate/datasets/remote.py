"""Remote inputs: a streamed fetch-and-verify over HTTP(S) and XRootD, and the input cache.

:func:`fetch` downloads one URL once, hashing the bytes as they arrive into a temporary file
beside the destination, and renames it into place only when the sha256 matches; every failure
(a digest mismatch, a timeout, a missing file, a refused connection, a closed connection) is one
:class:`~reanimate.errors.ReanimateError` line naming the URL, and no partial file is left.

:func:`cached` is the content-addressed input cache on top of it: a file with a known digest is
kept at ``ROOT/sha256/ab/abcd…`` (``ROOT`` is the folder given, else ``$REANIMATE_INPUT_CACHE``,
else ``~/.cache/reanimate/inputs``), fetched once, made read-only, and re-checked on each use
through the stat-keyed memo of :mod:`reanimate.hashing` (a cache entry changed on disk is hashed
again, refused and fetched anew). A file lock keeps two fetchers of one file (Dask workers, two
runs) from downloading it twice.

Schemes: ``http://`` and ``https://`` (urllib; the system CA store, ``SSL_CERT_FILE`` to add
one), ``root://`` (the XRootD Python client, ``root://host[:port]//abs/path``). The timeout is in
seconds without progress (connecting, or waiting for the next block), not for the whole file:
``$REANIMATE_REMOTE_TIMEOUT``, default 60 (:func:`timeout_s`). Only the standard library is
imported at module level; the XRootD client is imported on the first ``root://`` fetch.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

from reanimate.atomic import temporary_sibling
from reanimate.errors import DigestMismatch, ReanimateError
from reanimate.hashing import HashMemo, sha256_file

CACHE_ENV = "REANIMATE_INPUT_CACHE"
TIMEOUT_ENV = "REANIMATE_REMOTE_TIMEOUT"
DEFAULT_TIMEOUT_S = 60.0
#: Schemes :func:`fetch` can download (``s3://`` is read in place by fsspec only).
FETCH_SCHEMES: tuple[str, ...] = ("http://", "https://", "root://")
BLOCK = 8 << 20  # bytes per read: large enough for XRootD's round trips, small in memory
_DEFAULT_PORTS = {"http": 80, "https": 443, "root": 1094}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

#: ``progress(bytes_so_far, total_bytes_or_None)``, called after every block and once at the end.
Progress = Callable[[int, int | None], None]


def timeout_s() -> float:
    """Seconds without progress before a remote read gives up: ``$REANIMATE_REMOTE_TIMEOUT``."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ReanimateError(f"${TIMEOUT_ENV}={text!r}: expected a positive number of seconds")
    return value


def cache_root(cache: str | os.PathLike | None = None) -> Path:
    """The input cache folder: ``cache``, else ``$REANIMATE_INPUT_CACHE``, else
    ``$XDG_CACHE_HOME/reanimate/inputs`` (``~/.cache/reanimate/inputs``)."""
    if cache is not None:
        return Path(cache)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reanimate" / "inputs"


def cache_path(sha256: str, cache: str | os.PathLike | None = None) -> Path:
    """Where the file of digest ``sha256`` lives in the cache: ``ROOT/sha256/ab/abcd…``."""
    _check_digest(sha256, "")
    return cache_root(cache) / "sha256" / sha256[:2] / sha256


def _check_digest(sha256: str | None, url: str) -> None:
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.match(sha256)):
        where = f"{url}: " if url else ""
        raise ReanimateError(f"{where}sha256 {sha256!r} is not 64 lowercase hex digits")


def _check_url(url: str) -> None:
    if not isinstance(url, str) or not url.startswith(FETCH_SCHEMES):
        raise ReanimateError(
            f"{url}: cannot fetch: not a {', '.join(s[:-3] for s in FETCH_SCHEMES)} URL"
        )
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        raise ReanimateError(f"{url}: no host in the URL")


def fetch(
    url: str,
    sha256: str | None,
    dest: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: Progress | None = None,
) -> Path:
    """Download ``url`` to ``dest`` once, checking ``sha256`` while streaming; return ``dest``.

    With a digest, a ``dest`` that already holds those bytes is kept without a download; the
    new bytes replace ``dest`` (atomically) only when their digest matches, otherwise
    :class:`~reanimate.errors.DigestMismatch` is raised and ``dest`` is left as it was. Without
    a digest the file is downloaded and replaces ``dest`` whole (its length checked against the
    server's). Timeouts, missing files, refused connections: one ReanimateError naming ``url``.
    """
    _check_url(url)
    _check_digest(sha256, url)
    if not (isinstance(timeout, int | float) and timeout > 0):
        raise ReanimateError(f"{url}: timeout must be a positive number of seconds")
    dest = Path(dest)
    with _fetch_lock(dest, cache_root()):
        if sha256 is not None and _holds(dest, sha256):
            return dest
        _download_verified(url, sha256, dest, float(timeout), progress)
    return dest


def cached(
    url: str,
    sha256: str,
    *,
    cache: str | os.PathLike | None = None,
    timeout: float | None = None,
    progress: Progress | None = None,
) -> Path:
    """The local copy of ``url`` in the input cache, fetched (and verified) on first use.

    A present entry is re-checked through the signed stat-keyed memo (``ROOT/hashes.json``):
    a fetched file is recorded there with the digest computed while it streamed, so it is never
    hashed again while untouched; a changed entry is hashed, refused and fetched anew.
    """
    _check_url(url)
    if sha256 is None:
        raise ReanimateError(f"{url}: the input cache needs the file's sha256")
    path = cache_path(sha256, cache)
    memo = HashMemo(cache_root(cache) / "hashes.json")
    try:
        if _holds(path, sha256, memo):
            return path
        with _fetch_lock(path, cache_root(cache)):
            if not _holds(path, sha256, memo):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # a corrupt entry (the memo refused it): fetch it again
                _download_verified(url, sha256, path, timeout or timeout_s(), progress)
                path.chmod(0o444)
                memo.record(path, sha256)
        return path
    finally:
        with contextlib.suppress(OSError):
            memo.save()


def _holds(path: Path, sha256: str, memo: HashMemo | None = None) -> bool:
    try:
        if not path.is_file():
            return False
        return (memo.sha256(path) if memo else sha256_file(path)) == sha256
    except OSError:
        return False


@contextlib.contextmanager
def _fetch_lock(dest: Path, root: Path) -> Iterator[None]:
    """An exclusive lock per destination, kept in the cache's ``locks/`` folder (never beside
    ``dest``, so no stray file lands in a bundle). It only saves a second download: two
    fetchers without it would still each write a unique temporary file and rename verified bytes.
    """
    from filelock import FileLock

    key = hashlib.sha256(str(Path(dest).resolve()).encode()).hexdigest()
    folder = root / "locks"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(folder / f"{key}.lock"))
        lock.acquire()
    except OSError:  # no writable cache folder: correctness does not depend on the lock
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _download_verified(
    url: str, sha256: str | None, dest: Path, timeout: float, progress: Progress | None
) -> None:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReanimateError(f"{url}: cannot create {dest.parent} ({exc.strerror})") from None
    tmp = temporary_sibling(dest)
    try:
        try:
            out = open(tmp, "wb")
        except OSError as exc:
            raise ReanimateError(f"{url}: cannot write {dest} ({exc.strerror})") from None
        with out:
            digest, size = _stream(url, _Sink(out, dest, url, progress), timeout)
        if sha256 is not None and digest != sha256:
            raise DigestMismatch(
                f"{url}: sha256 {digest} of the {size} bytes fetched differs from the expected "
                f"{sha256} (nothing kept)"
            )
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class _Sink:
    """Where the streamed blocks go: the sha256, the temporary file, the progress callback.

    A failed local write (a full disk) is a ReanimateError naming the destination, never taken
    for a network error (it is not an OSError when it reaches the streaming loops)."""

    def __init__(self, out, dest: Path, url: str, progress: Progress | None) -> None:
        self.out, self.dest, self.url, self.progress = out, dest, url, progress
        self.digest = hashlib.sha256()
        self.size = 0

    def __call__(self, block: bytes, total: int | None) -> None:
        self.digest.update(block)
        try:
            self.out.write(block)
        except OSError as exc:
            raise ReanimateError(
                f"{self.url}: cannot write {self.dest} ({exc.strerror or exc})"
            ) from None
        self.size += len(block)
        if self.progress is not None:
            self.progress(self.size, total)

    def finish(self, total: int | None) -> None:
        try:
            self.out.flush()
            os.fsync(self.out.fileno())
        except OSError as exc:
            raise ReanimateError(
                f"{self.url}: cannot write {self.dest} ({exc.strerror or exc})"
            ) from None
        if self.progress is not None:
            self.progress(self.size, total)


def _stream(url: str, sink: _Sink, timeout: float) -> tuple[str, int]:
    """Copy ``url`` into ``sink``; (sha256 hex digest, bytes)."""
    probe(url, timeout)
    if url.startswith("root://"):
        total = _stream_xrootd(url, sink, timeout)
    else:
        total = _stream_http(url, sink, timeout)
    if total is not None and sink.size != total:
        raise ReanimateError(f"{url}: the connection closed after {sink.size} of {total} bytes")
    sink.finish(total)
    return sink.digest.hexdigest(), sink.size


def probe(url: str, timeout: float) -> None:
    """Connect once to the URL's host and port, so that an unknown host or a refused connection
    is named as such (the XRootD client retries those until its timeout and calls it expired)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise ReanimateError(f"{url}: invalid port in the URL") from None
    if scheme != "root" and _uses_proxy(url):
        return  # the proxy is what we connect to
    try:
        with socket.create_connection((parts.hostname, port), timeout):
            pass
    except socket.gaierror as exc:
        raise ReanimateError(f"{url}: unknown host {parts.hostname} ({exc.strerror})") from None
    except TimeoutError:
        raise ReanimateError(f"{url}: timed out connecting (after {timeout:g} s)") from None
    except OSError as exc:
        raise ReanimateError(f"{url}: cannot connect to {parts.hostname}:{port} "
                             f"({exc.strerror or exc})") from None


def _uses_proxy(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies()
    return parts.scheme in proxies and not urllib.request.proxy_bypass(parts.hostname or "")


def _stream_http(url: str, sink: _Sink, timeout: float) -> int | None:
    import http.client

    request = urllib.request.Request(
        url, headers={"Accept-Encoding": "identity", "User-Agent": "reanimate"}
    )
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            raise ReanimateError(
                f"{url}: no such file on the server (HTTP {exc.code} {exc.reason})"
            ) from None
        raise ReanimateError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise ReanimateError(f"{url}: {_reason(exc.reason, timeout)}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise ReanimateError(f"{url}: {_reason(exc, timeout)}") from None
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        try:
            while block := response.read(BLOCK):
                sink(block, total)
        except (OSError, http.client.HTTPException) as exc:
            raise ReanimateError(f"{url}: {_reason(exc, timeout)}") from None
    return total


def _reason(exc: object, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out (no answer for {timeout:g} s)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    import http.client

    if isinstance(exc, http.client.IncompleteRead):
        return f"the connection closed after {len(exc.partial)} bytes of a block"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


@cache
def xrootd_client():
    """The XRootD client module, with timeouts checked every second (its default is 15 s, so a
    60 s timeout would otherwise fire anywhere up to 75 s)."""
    try:
        from XRootD import client
    except ImportError as exc:  # the xrootd wheel is a dependency; a broken install
        raise ReanimateError(f"root:// needs the XRootD Python client ({exc})") from None
    client.EnvPutInt("TimeoutResolution", 1)
    return client


def _xrootd_error(url: str, status, timeout: float) -> ReanimateError:
    message = " ".join(str(status.message).split())
    if status.code == 206 or "Operation expired" in message:  # errOperationExpired
        return ReanimateError(f"{url}: timed out (no answer for {timeout:g} s; XRootD: {message})")
    if status.errno == 3011:  # kXR_NotFound
        return ReanimateError(f"{url}: no such file on the server (XRootD: {message})")
    return ReanimateError(f"{url}: XRootD: {message}")


def _stream_xrootd(url: str, sink: _Sink, timeout: float) -> int:
    client = xrootd_client()
    from XRootD.client.flags import OpenFlags

    seconds = max(1, math.ceil(timeout))
    handle = client.File()
    status, _ = handle.open(url, OpenFlags.READ, timeout=seconds)
    if not status.ok:
        raise _xrootd_error(url, status, timeout)
    try:
        status, info = handle.stat(timeout=seconds)
        if not status.ok:
            raise _xrootd_error(url, status, timeout)
        total, offset = int(info.size), 0
        while offset < total:
            status, block = handle.read(offset, min(BLOCK, total - offset), timeout=seconds)
            if not status.ok:
                raise _xrootd_error(url, status, timeout)
            if not block:
                break
            sink(block, total)
            offset += len(block)
        return total
    finally:
        with contextlib.suppress(Exception):
            handle.close(timeout=seconds)
