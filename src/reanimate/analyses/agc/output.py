"""Pseudo-data, and writing the histograms as ROOT TH1s and as AGC reference JSON.

uproot stamps the file UUID and the creation/modification times into a ROOT file; here the UUID
is derived from the histogram contents and the times are fixed (SOURCE_DATE_EPOCH, default
2000-01-01), so the same histograms always give the same bytes.
"""

from __future__ import annotations

import datetime as _datetime
import hashlib
import json
import os
import tempfile
import types
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from reanimate.steps.agc.objects import REGIONS
from reanimate.steps.agc.processing import EDGES, MODELLING_VARIATIONS
from reanimate.steps.agc.samples import BACKGROUNDS
from reanimate.steps.agc.systematics import BTAG_VARIATIONS, WJETS_SCALE

VARIATION_ORDER: tuple[str, ...] = (
    "nominal", "pt_scale_up", "pt_res_up", *BTAG_VARIATIONS, *WJETS_SCALE, *MODELLING_VARIATIONS,
)


def add_pseudodata(hists: dict[str, np.ndarray]) -> None:
    """{region}_pseudodata = (ttbar_ME_var + ttbar_PS_var) / 2 + wjets (variances propagate)."""
    for region in REGIONS:
        zero = np.zeros((2, len(EDGES) + 1))
        me = hists.get(f"{region}_ttbar_ME_var", zero)
        ps = hists.get(f"{region}_ttbar_PS_var", zero)
        wjets = hists.get(f"{region}_wjets", zero)
        data = np.stack([(me[0] + ps[0]) / 2 + wjets[0], (me[1] + ps[1]) / 4 + wjets[1]])
        if data[0].sum() != 0:
            hists[f"{region}_pseudodata"] = data


def _sort_key(name: str) -> tuple:
    region, _, rest = name.partition("_")
    if rest == "pseudodata":
        return (region, 0, "", 0, "")
    for i, process in enumerate(BACKGROUNDS):
        if rest == process or rest.startswith(process + "_"):
            variation = rest[len(process) + 1 :] or "nominal"
            if variation in VARIATION_ORDER:
                return (region, 1, "", i, VARIATION_ORDER.index(variation))
    return (region, 2, rest, 0, 0)


def ordered(hists: Mapping[str, np.ndarray]) -> list[str]:
    """Names with a non-zero sum of weights, in a canonical order (region, process, variation)."""
    return sorted((n for n, h in hists.items() if h[0].sum() != 0), key=_sort_key)


def to_json(hists: Mapping[str, np.ndarray]) -> dict:
    """The AGC reference format: {name: {"edges": [26], "contents": [27 with flow]}}."""
    edges = [float(e) for e in EDGES]
    return {
        n: {"edges": edges, "contents": [float(v) for v in hists[n][0]]} for n in ordered(hists)
    }


def write_json(path: str | Path, hists: Mapping[str, np.ndarray]) -> None:
    _atomic_write_text(Path(path), json.dumps(to_json(hists), indent=2) + "\n")


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fixed_time() -> _datetime.datetime:
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "946684800"))
    return _datetime.datetime.fromtimestamp(epoch, tz=_datetime.UTC).replace(tzinfo=None)


@contextmanager
def _frozen_uproot_clock() -> Iterator[None]:
    """Make uproot's writer see a fixed 'now' (it calls datetime.datetime.now())."""
    import uproot.writing._cascade as cascade
    import uproot.writing._cascadetree as cascadetree
    import uproot.writing.writable as writable

    fixed = _fixed_time()

    class _FrozenDatetime(_datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return fixed

    shim = types.SimpleNamespace(**vars(_datetime))
    shim.datetime = _FrozenDatetime
    modules = (cascade, cascadetree, writable)
    saved = [m.datetime for m in modules]
    for m in modules:
        m.datetime = shim
    try:
        yield
    finally:
        for m, original in zip(modules, saved, strict=True):
            m.datetime = original


def _th1(name: str, h: np.ndarray):
    """A TH1D with contents/variances including flow bins; fEntries = effective entries."""
    from uproot.writing.identify import to_TAxis, to_TH1x

    values = np.ascontiguousarray(h[0], dtype=np.float64)
    variances = np.ascontiguousarray(h[1], dtype=np.float64)
    centers = (EDGES[:-1] + EDGES[1:]) / 2
    inner = values[1:-1]
    sumw2_all = variances.sum()
    entries = float(values.sum() ** 2 / sumw2_all) if sumw2_all > 0 else 0.0
    axis = to_TAxis("xaxis", "", len(EDGES) - 1, float(EDGES[0]), float(EDGES[-1]))
    return to_TH1x(
        fName=name,
        fTitle=name,
        data=values,
        fEntries=entries,
        fTsumw=float(inner.sum()),
        fTsumw2=float(variances[1:-1].sum()),
        fTsumwx=float((inner * centers).sum()),
        fTsumwx2=float((inner * centers**2).sum()),
        fSumw2=variances,
        fXaxis=axis,
    )


def write_root(path: str | Path, hists: Mapping[str, np.ndarray]) -> None:
    """Write the non-zero-sum histograms as TH1D, byte-deterministically, atomically."""
    import uproot

    names = ordered(hists)
    digest = hashlib.sha256()
    for n in names:
        digest.update(n.encode() + b"\0" + np.ascontiguousarray(hists[n]).tobytes())
    file_uuid = uuid.UUID(bytes=digest.digest()[:16], version=4)
    path = Path(path)
    # ROOT stores the file name: write under the final name in a scratch folder, then move
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as scratch:
        tmp = Path(scratch) / path.name
        with _frozen_uproot_clock():
            with uproot.recreate(tmp, uuid_function=lambda: file_uuid) as f:
                for n in names:
                    f[n] = _th1(n, hists[n])
        os.replace(tmp, path)
