"""Write ROOT files with uproot, byte-for-byte reproducibly; NanoAOD-schema ``Events`` trees.

uproot (5.7) differs from the real files in one respect and is not reproducible in two:

* it writes the counter of a jagged branch (``nJet``) as a signed ``int32`` TLeafI, while NanoAOD
  counters are unsigned (``uint32``). We retype the counter leaves to ``>u4`` before the tree
  header is written (``_NanoTree`` below), so ``nJet`` reads as ``AsDtype('>u4')`` like the real
  files;
* every TKey/TDirectory carries ``datetime.now()`` and the file header a ``uuid1()``. We pin the
  clock while writing (:func:`reproducible_uproot`: :data:`FIXED_TIME` for samples,
  :func:`source_date` for histogram files) and derive the UUID from a caller-given key.

Both fixes touch uproot internals (``uproot.writing._cascadetree.Tree`` and the ``datetime`` name of
three writing modules) for the duration of one write, under a lock. :func:`reproducible_uproot`
is the one place that does this, for every ROOT file reanimate writes (samples, histograms). The
schema test compares a generated file with the real one branch by branch and the determinism
tests compare bytes, so an uproot release that changes these internals is caught by the tests,
not by users. ROOT also stores the file's own name: write through
``reanimate.atomic.atomic_path(path, keep_name=True)`` so that a temporary name never gets in.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
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

from reanimate.atomic import atomic_path
from reanimate.datasets.schema import (
    COLLECTIONS,
    COUNTER_DTYPE,
    DECIMALS,
    PRECISION_BITS,
    SCALARS,
    reduce_mantissa,
)

#: The timestamp written into every key and directory of the samples (ROOT's TDatime cannot
#: hold 1970).
FIXED_TIME = _dt.datetime(2015, 1, 1, 0, 0, 0)

#: The default of :func:`source_date`: 2000-01-01 00:00:00 UTC.
DEFAULT_SOURCE_DATE_EPOCH = 946684800

#: zlib level 1 as in the real AGC file; lzma level 1: ~30 % smaller files, ~4x slower to write.
COMPRESSIONS = {"zlib": uproot.ZLIB(1), "lzma": uproot.LZMA(1)}

_LOCK = threading.Lock()
_MODULES = (_cascade, _cascadetree, _writable)


def source_date() -> _dt.datetime:
    """``$SOURCE_DATE_EPOCH`` (default 2000-01-01) as a naive UTC datetime: the time stamped
    into histogram files, overridable as reproducible-builds tools expect."""
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_SOURCE_DATE_EPOCH))
    return _dt.datetime.fromtimestamp(epoch, tz=_dt.UTC).replace(tzinfo=None)


def _clock(when: _dt.datetime) -> types.SimpleNamespace:
    """A stand-in for the ``datetime`` module whose ``datetime.now()`` is always ``when``."""

    class _FixedClock(_dt.datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ARG003 - same signature as datetime.now
            return when

    shim = types.SimpleNamespace(**vars(_dt))
    shim.datetime = _FixedClock
    return shim


class _NanoTree(_cascadetree.Tree):
    """uproot's TTree writer with NanoAOD's unsigned counters."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for datum in self._branch_data:
            if datum["kind"] == "counter":
                datum["dtype"] = np.dtype(COUNTER_DTYPE)
                datum["fTitle"] = f"{datum['fName']}/i"


@contextmanager
def reproducible_uproot(when: _dt.datetime | None = None) -> Iterator[None]:
    """While active, uproot writes ``when`` (default :data:`FIXED_TIME`) in every key and
    directory, and NanoAOD's unsigned counters in trees. Use it for any ROOT output (histograms
    too), with ``uproot.recreate(path, uuid_function=lambda: file_uuid(key))`` or another
    content-derived UUID."""
    clock = _clock(FIXED_TIME if when is None else when)
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
    seeds the file UUID, so the same key and content give the same bytes; the file appears
    whole or not at all (atomic rename). Float branches are stored with NanoAOD's reduced
    mantissa precision (:data:`~reanimate.datasets.schema.PRECISION_BITS`).
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
    with atomic_path(path, keep_name=True) as tmp, reproducible_uproot():
        with uproot.recreate(
            tmp, compression=COMPRESSIONS[compression], uuid_function=lambda: fixed_uuid
        ) as out:
            tree = out.mktree("Events", types_, title="Events")
            tree.extend(arrays)
