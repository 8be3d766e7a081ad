"""Read NanoAOD ``Events`` branches: the one code path for generated and real files.

Every stage that reads events calls :func:`read_events` (or :func:`open_events_tree` to iterate
itself). Each requested branch that reanimate knows (:mod:`reanimate.datasets.schema`) is checked
against the interpretation of the real CMS files before anything is read, so a file that is not
ROOT, is truncated, lacks the ``Events`` tree, or has a missing or mistyped branch is refused
with one :class:`~reanimate.errors.ReanimateError` naming the file and the branch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import awkward as ak
import uproot

from reanimate.datasets.schema import BRANCHES
from reanimate.errors import ReanimateError
from reanimate.urls import is_remote

TREE = "Events"


def open_events_tree(path: str | Path):
    """Open ``path`` (local path or URL) and return its ``Events`` TTree (an uproot TTree).

    The file stays open as long as the returned tree is referenced; close it with
    ``tree.file.close()`` or use :func:`read_events`.
    """
    try:
        handle = uproot.open(path)
    except FileNotFoundError:
        raise ReanimateError(f"{path}: file not found") from None
    except Exception as exc:  # uproot raises ValueError/OSError/... for non-ROOT input
        raise ReanimateError(f"{path}: not a readable ROOT file ({exc})") from None
    _check_complete(handle, path)
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


def _check_complete(handle, path: str | Path) -> None:
    """Refuse a truncated local file: its ROOT header records where the file ends (``fEND``).

    uproot opens a truncated file without complaint when the tree's metadata precedes the cut,
    and fails only when a basket past the end is read; a stat makes the refusal immediate.
    """
    if is_remote(str(path)):
        return
    try:
        end, size = int(handle.file.fEND), os.path.getsize(path)
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


def num_entries(path: str | Path) -> int:
    tree = open_events_tree(path)
    try:
        return int(tree.num_entries)
    finally:
        tree.file.close()


def read_events(
    path: str | Path,
    branches: Iterable[str],
    entry_start: int | None = None,
    entry_stop: int | None = None,
) -> ak.Array:
    """Read ``branches`` of entries [entry_start, entry_stop) of ``path``'s ``Events`` tree.

    Returns a flat record array with one field per branch name (``events.Jet_pt`` is jagged
    float32, ``events.nJet`` uint32, ...), exactly as uproot reads the real CMS files.
    """
    branches = list(branches)
    tree = open_events_tree(path)
    try:
        check_branches(tree, branches, path)
        try:
            return tree.arrays(
                branches, entry_start=entry_start, entry_stop=entry_stop, library="ak"
            )
        except Exception as exc:
            raise ReanimateError(f"{path}: cannot read {', '.join(branches)} ({exc})") from None
    finally:
        tree.file.close()


def iterate_events(
    path: str | Path, branches: Iterable[str], step_size: int
) -> Iterator[tuple[int, int, ak.Array]]:
    """Yield (entry_start, entry_stop, events) chunks of ``step_size`` entries, in file order,
    opening and checking the file once (same arrays as :func:`read_events` on each range)."""
    if step_size < 1:
        raise ReanimateError(f"step_size must be positive, got {step_size}")
    branches = list(branches)
    tree = open_events_tree(path)
    try:
        check_branches(tree, branches, path)
        for start in range(0, tree.num_entries, step_size):
            stop = min(start + step_size, tree.num_entries)
            try:
                chunk = tree.arrays(branches, entry_start=start, entry_stop=stop, library="ak")
            except Exception as exc:
                raise ReanimateError(
                    f"{path}: cannot read entries {start}-{stop} ({exc})"
                ) from None
            yield start, stop, chunk
    finally:
        tree.file.close()
