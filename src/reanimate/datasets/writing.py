"""Write NanoAOD-schema ``Events`` trees with uproot, byte-for-byte reproducibly.

uproot (5.7) differs from the real files in one respect and is not reproducible in two:

* it writes the counter of a jagged branch (``nJet``) as a signed ``int32`` TLeafI, while NanoAOD
  counters are unsigned (``uint32``). We retype the counter leaves to ``>u4`` before the tree
  header is written (``_NanoTree`` below), so ``nJet`` reads as ``AsDtype('>u4')`` like the real
  files;
* every TKey/TDirectory carries ``datetime.now()`` and the file header a ``uuid1()``. We pin the
  clock to :data:`FIXED_TIME` while writing and derive the UUID from a caller-given key.

Both fixes touch uproot internals (``uproot.writing._cascadetree.Tree`` and the ``datetime`` name of
three writing modules) for the duration of one write, under a lock. The schema test compares a
generated file with the real one branch by branch and the determinism test compares bytes, so an
uproot release that changes these internals is caught by the tests, not by users.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import threading
import types
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import awkward as ak
import numpy as np
import uproot
import uproot.writing._cascade as _cascade
import uproot.writing._cascadetree as _cascadetree
import uproot.writing.writable as _writable

from reanimate.datasets.schema import (
    COLLECTIONS,
    COUNTER_DTYPE,
    DECIMALS,
    PRECISION_BITS,
    SCALARS,
    reduce_mantissa,
)

#: The timestamp written into every key and directory (ROOT's TDatime cannot hold 1970).
FIXED_TIME = _dt.datetime(2015, 1, 1, 0, 0, 0)

#: zlib level 1 as in the real AGC file; lzma level 1: ~30 % smaller files, ~4x slower to write.
COMPRESSIONS = {"zlib": uproot.ZLIB(1), "lzma": uproot.LZMA(1)}

_LOCK = threading.Lock()
_MODULES = (_cascade, _cascadetree, _writable)


class _FixedClock(_dt.datetime):
    @classmethod
    def now(cls, tz=None):  # noqa: ARG003 - same signature as datetime.now
        return FIXED_TIME


class _NanoTree(_cascadetree.Tree):
    """uproot's TTree writer with NanoAOD's unsigned counters."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for datum in self._branch_data:
            if datum["kind"] == "counter":
                datum["dtype"] = np.dtype(COUNTER_DTYPE)
                datum["fTitle"] = f"{datum['fName']}/i"


@contextmanager
def reproducible_uproot() -> Iterator[None]:
    """While active, uproot writes :data:`FIXED_TIME` in every key/directory and NanoAOD's
    unsigned counters. Use it for any ROOT output (histograms too), with
    ``uproot.recreate(path, uuid_function=lambda: file_uuid(key))``."""
    clock = types.SimpleNamespace(datetime=_FixedClock)
    with _LOCK:
        saved = [m.datetime for m in _MODULES]
        tree_class = _cascadetree.Tree
        try:
            for m in _MODULES:
                m.datetime = clock
            _cascadetree.Tree = _NanoTree
            yield
        finally:
            for m, d in zip(_MODULES, saved, strict=True):
                m.datetime = d
            _cascadetree.Tree = tree_class


def file_uuid(key: str) -> uuid.UUID:
    """A UUID derived from ``key`` (instead of uuid1's clock and MAC address)."""
    return uuid.UUID(bytes=hashlib.sha256(f"reanimate:{key}".encode()).digest()[:16])


def _collection_array(counts: np.ndarray, fields: Mapping[str, np.ndarray], coll: str) -> ak.Array:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    contents = {}
    for field, dtype in COLLECTIONS[coll].items():
        flat = np.ascontiguousarray(fields[field], dtype=np.dtype(dtype).newbyteorder("="))
        name = f"{coll}_{field}"
        if name in DECIMALS:
            flat = np.round(flat, DECIMALS[name]).astype(np.float32)
        if name in PRECISION_BITS:
            flat = reduce_mantissa(flat, PRECISION_BITS[name])
        contents[field] = ak.contents.NumpyArray(flat)
    record = ak.contents.RecordArray(list(contents.values()), list(contents.keys()))
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), record))


def write_events(
    path: str | Path,
    scalars: Mapping[str, np.ndarray],
    collections: Mapping[str, tuple[np.ndarray, Mapping[str, np.ndarray]]],
    *,
    compression: str = "zlib",
    key: str = "",
) -> None:
    """Write one ``Events`` tree in the NanoAOD schema.

    ``scalars``: ``run``, ``luminosityBlock``, ``event`` arrays; ``collections``: for each of
    ``Electron``, ``Muon``, ``Jet``, ``GenPart`` a pair (counts, {field: flat array}). ``key``
    seeds the file UUID, so the same key and content give the same bytes. Float branches are
    stored with NanoAOD's reduced mantissa precision
    (:data:`~reanimate.datasets.schema.PRECISION_BITS`).
    """
    arrays: dict[str, object] = {}
    types_: dict[str, object] = {}
    for name, dtype in SCALARS.items():
        arrays[name] = np.asarray(scalars[name], dtype=np.dtype(dtype).newbyteorder("="))
        types_[name] = arrays[name].dtype
    for coll in COLLECTIONS:
        counts, fields = collections[coll]
        arrays[coll] = _collection_array(np.asarray(counts), fields, coll)
        types_[coll] = arrays[coll].type.content
    fixed_uuid = file_uuid(key)
    with reproducible_uproot():
        with uproot.recreate(
            path, compression=COMPRESSIONS[compression], uuid_function=lambda: fixed_uuid
        ) as out:
            tree = out.mktree("Events", types_, title="Events")
            tree.extend(arrays)
