"""Read NanoAOD ``Events`` branches: the one code path for generated and real files.

Every stage that reads events calls :func:`read_events` (or :func:`open_events_tree` to iterate
itself). Each requested branch that reanimate knows (:mod:`reanimate.datasets.schema`) is checked
against the interpretation of the real CMS files before anything is read, so a file that is not
ROOT, is truncated, lacks the ``Events`` tree, or has a missing or mistyped branch is refused
with one :class:`~reanimate.errors.ReanimateError` naming the file and the branch.

Remote files (:data:`reanimate.urls.REMOTE_PREFIXES`) are chosen here, once for every stage
(:func:`source`): a ``root://`` or ``http(s)://`` URL *with* a sha256 is fetched into the input
cache and checked while it streams (:func:`reanimate.datasets.remote.cached`; a later read of
the same digest is a local read), then read locally; without a sha256 it is read in place by
uproot's XRootD or HTTP source (range requests), under ``$REANIMATE_REMOTE_TIMEOUT``. A
timeout, a missing file, a refused connection or a digest mismatch is one ReanimateError
naming the URL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import awkward as ak
import uproot

from reanimate.datasets import remote
from reanimate.datasets.schema import BRANCHES
from reanimate.errors import ReanimateError
from reanimate.urls import is_remote

TREE = "Events"


def _inflate_with_isal() -> None:
    """uproot inflates zlib baskets with ISA-L when installed: the same bytes, ~40 % less CPU
    than zlib (the reading cost of the AGC stage). Only uproot's *decompressor* instance is
    switched; compression of written files stays zlib's, so outputs keep their bytes."""
    try:
        import isal.isal_zlib  # noqa: F401
    except ImportError:
        return
    decompressor = getattr(uproot.compression, "_decompress_ZLIB", None)
    if decompressor is not None and getattr(decompressor, "library", None) == "zlib":
        decompressor.library = "isal"


_inflate_with_isal()


def source(path: str | Path, sha256: str | None = None) -> str | Path:
    """What uproot opens for ``path``: a remote URL with a ``sha256`` becomes its verified copy
    in the input cache (fetched on first use); anything else is returned unchanged."""
    if sha256 is not None and is_remote(str(path)):
        url = str(path)
        if not url.startswith(remote.FETCH_SCHEMES):
            raise ReanimateError(
                f"{url}: a sha256 is given but this scheme can only be read in place "
                f"(fetched and checked: {', '.join(remote.FETCH_SCHEMES)})"
            )
        return str(remote.cached(url, sha256))
    return path


def _remote_options(url: str) -> dict:
    """uproot options for reading ``url`` in place: its own XRootD and HTTP sources (not fsspec),
    which honour the timeout. The host is probed first, so that a refused connection or an
    unknown host is named at once (the XRootD client would retry until its timeout)."""
    if url.startswith("root://"):
        remote.xrootd_client()  # timeouts checked every second
        remote.probe(url, remote.timeout_s())
        return {"handler": uproot.source.xrootd.XRootDSource, "timeout": remote.timeout_s()}
    if url.startswith(("http://", "https://")):
        remote.probe(url, remote.timeout_s())
        return {"handler": uproot.source.http.HTTPSource, "timeout": remote.timeout_s()}
    return {}


def _remote_failure(url: str, exc: BaseException) -> ReanimateError:
    """One line for an exception of uproot's remote sources (its text, less its URL help)."""
    text = " ".join(str(exc).split("\n\n")[0].split()).replace(f" in file {url}", "")
    inner = re.fullmatch(r"file not found \((.*)\)", text)
    text = inner.group(1).strip() if inner else text
    if isinstance(exc, TimeoutError):
        detail = "" if text in ("", "timed out") else f"; {text}"
        return ReanimateError(f"{url}: timed out (no answer for {remote.timeout_s():g} s{detail})")
    if isinstance(exc, FileNotFoundError):
        return ReanimateError(f"{url}: no such file on the server ({text})")
    if isinstance(exc, ConnectionRefusedError):
        return ReanimateError(f"{url}: connection refused")
    return ReanimateError(f"{url}: cannot read it remotely ({type(exc).__name__}: {text})")


def open_events_tree(path: str | Path, sha256: str | None = None):
    """Open ``path`` (local path or URL) and return its ``Events`` TTree (an uproot TTree).

    ``sha256``: the file's digest, if known; for a remote ``path`` it makes the file be fetched
    into the input cache and checked, then read locally (:func:`source`).
    The file stays open as long as the returned tree is referenced; close it with
    ``tree.file.close()`` or use :func:`read_events`.
    """
    opened = source(path, sha256)
    in_place = is_remote(str(opened))
    options = _remote_options(str(opened)) if in_place else {}
    try:
        # no array cache: the stage reads each range once, and the cache (100 MB by default)
        # would keep the arrays alive in the file object's reference cycles until a GC pass
        handle = uproot.open(opened, array_cache=None, **options)
    except FileNotFoundError as exc:
        if in_place:
            raise _remote_failure(str(path), exc) from None
        raise ReanimateError(f"{path}: file not found") from None
    except Exception as exc:  # uproot raises ValueError/OSError/... for non-ROOT input
        if in_place and isinstance(exc, OSError):
            raise _remote_failure(str(path), exc) from None
        raise ReanimateError(f"{path}: not a readable ROOT file ({exc})") from None
    _check_complete(handle, path, opened)
    try:
        obj = handle[TREE]
    except Exception:
        handle.close()
        keys = ", ".join(sorted({k.split(";")[0] for k in handle.keys(recursive=False)})) or "none"
        raise ReanimateError(f"{path}: no '{TREE}' tree (keys: {keys})") from None
    if not isinstance(obj, uproot.TTree):
        handle.close()
        raise ReanimateError(f"{path}: '{TREE}' is a {type(obj).__name__}, not a TTree")
    return obj


def _check_complete(handle, path: str | Path, opened: str | Path | None = None) -> None:
    """Refuse a truncated local file: its ROOT header records where the file ends (``fEND``).

    uproot opens a truncated file without complaint when the tree's metadata precedes the cut,
    and fails only when a basket past the end is read; a stat makes the refusal immediate.
    ``opened`` is the file actually opened (a remote file's cached copy), ``path`` its name.
    """
    opened = path if opened is None else opened
    if is_remote(str(opened)):
        return
    try:
        end, size = int(handle.file.fEND), os.path.getsize(opened)
    except (AttributeError, OSError, TypeError, ValueError):
        return
    if size < end:
        handle.close()
        raise ReanimateError(
            f"{path}: truncated ROOT file ({size} bytes, its header says {end})"
        )


def check_branches(tree, branches: Iterable[str], path: str | Path | None = None) -> None:
    """Raise ReanimateError unless every branch exists with the interpretation of the real files."""
    where = path if path is not None else tree.file.file_path
    for name in branches:
        if name not in tree:
            raise ReanimateError(f"{where}: branch '{name}' missing from tree '{TREE}'")
        spec = BRANCHES.get(name)
        if spec is None:
            continue
        actual = repr(tree[name].interpretation)
        if actual != spec.interpretation:
            raise ReanimateError(
                f"{where}: branch '{name}' has type {actual}, expected {spec.interpretation} "
                f"(as in the CMS NanoAOD files)"
            )


def num_entries(path: str | Path, sha256: str | None = None) -> int:
    tree = open_events_tree(path, sha256)
    try:
        return int(tree.num_entries)
    finally:
        tree.file.close()


def basket_starts(path: str | Path, branches: Iterable[str], sha256: str | None = None,
                  ) -> list[int]:
    """Entries at which every one of ``branches`` starts a basket, from 0 to the number of
    entries (both included): the ranges that can be read without decompressing a basket twice.
    Branches missing from the file are left out (reading them reports the error)."""
    tree = open_events_tree(path, sha256)
    try:
        present = [b for b in branches if b in tree]
        if not present:
            return [0, int(tree.num_entries)]
        return [int(x) for x in tree.common_entry_offsets(filter_name=present)]
    finally:
        tree.file.close()


def aligned_ranges(starts: list[int], size: int) -> list[tuple[int, int]]:
    """Entry ranges of about ``size`` entries whose edges are among ``starts`` (basket starts,
    from :func:`basket_starts`): consecutive baskets are grouped while the range stays within
    ``size``; a basket larger than ``size`` is one range of its own."""
    if size < 1:
        raise ReanimateError(f"chunk size must be positive, got {size}")
    ranges, begin = [], starts[0]
    for previous, edge in zip(starts[:-1], starts[1:], strict=True):
        if edge - begin > size and previous > begin:
            ranges.append((begin, previous))
            begin = previous
    if starts[-1] > begin:
        ranges.append((begin, starts[-1]))
    return ranges


def read_events(
    path: str | Path,
    branches: Iterable[str],
    entry_start: int | None = None,
    entry_stop: int | None = None,
    sha256: str | None = None,
) -> ak.Array:
    """Read ``branches`` of entries [entry_start, entry_stop) of ``path``'s ``Events`` tree.

    Returns a flat record array with one field per branch name (``events.Jet_pt`` is jagged
    float32, ``events.nJet`` uint32, ...), exactly as uproot reads the real CMS files.
    ``sha256`` as for :func:`open_events_tree`.
    """
    branches = list(branches)
    tree = open_events_tree(path, sha256)
    try:
        check_branches(tree, branches, path)
        try:
            return tree.arrays(
                branches, entry_start=entry_start, entry_stop=entry_stop, library="ak"
            )
        except Exception as exc:
            if isinstance(exc, OSError) and is_remote(str(tree.file.file_path)):
                raise _remote_failure(str(path), exc) from None
            raise ReanimateError(f"{path}: cannot read {', '.join(branches)} ({exc})") from None
    finally:
        tree.file.close()


def iterate_events(
    path: str | Path, branches: Iterable[str], step_size: int, sha256: str | None = None
) -> Iterator[tuple[int, int, ak.Array]]:
    """Yield (entry_start, entry_stop, events) chunks of ``step_size`` entries, in file order,
    opening and checking the file once (same arrays as :func:`read_events` on each range)."""
    if step_size < 1:
        raise ReanimateError(f"step_size must be positive, got {step_size}")
    branches = list(branches)
    tree = open_events_tree(path, sha256)
    try:
        check_branches(tree, branches, path)
        for start in range(0, tree.num_entries, step_size):
            stop = min(start + step_size, tree.num_entries)
            try:
                chunk = tree.arrays(branches, entry_start=start, entry_stop=stop, library="ak")
            except Exception as exc:
                if isinstance(exc, OSError) and is_remote(str(tree.file.file_path)):
                    raise _remote_failure(str(path), exc) from None
                raise ReanimateError(
                    f"{path}: cannot read entries {start}-{stop} ({exc})"
                ) from None
            yield start, stop, chunk
    finally:
        tree.file.close()
