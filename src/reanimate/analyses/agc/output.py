"""Pseudo-data, and writing the histograms as ROOT TH1s and as AGC reference JSON.

uproot stamps the file UUID and the creation/modification times into a ROOT file; here the UUID
is derived from the histogram contents and the times are fixed
(:func:`reanimate.datasets.writing.reproducible_uproot` at
:func:`~reanimate.datasets.writing.source_date`: SOURCE_DATE_EPOCH, default 2000-01-01), so the
same histograms always give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from reanimate.analyses.agc.objects import REGIONS
from reanimate.analyses.agc.processing import EDGES, MODELLING_VARIATIONS
from reanimate.analyses.agc.samples import BACKGROUNDS
from reanimate.analyses.agc.systematics import BTAG_VARIATIONS, WJETS_SCALE
from reanimate.atomic import atomic_path, write_text

VARIATION_ORDER: tuple[str, ...] = (
    "nominal", "pt_scale_up", "pt_res_up", *BTAG_VARIATIONS, *WJETS_SCALE, *MODELLING_VARIATIONS,
)


def pseudodata(hists: Mapping[str, np.ndarray], prefix: str, width: int) -> np.ndarray:
    """The AGC pseudo-data of one observable (docs/agc-analysis.md §4), a (2, width) array:
    ``(ttbar_ME_var + ttbar_PS_var) / 2 + wjets`` (nominal W+jets, no single top), with the
    variances propagated (sum of weights squared: (ME + PS) / 4 + wjets). A missing histogram
    counts as zero. ``prefix`` is the region (``4j1b``) or the ML feature name."""
    zero = np.zeros((2, width))
    me = hists.get(f"{prefix}_ttbar_ME_var", zero)
    ps = hists.get(f"{prefix}_ttbar_PS_var", zero)
    wjets = hists.get(f"{prefix}_wjets", zero)
    return np.stack([(me[0] + ps[0]) / 2 + wjets[0], (me[1] + ps[1]) / 4 + wjets[1]])


def add_pseudodata(
    hists: dict[str, np.ndarray], prefixes: Iterable[str] = REGIONS, width: int = len(EDGES) + 1
) -> None:
    """Add ``{prefix}_pseudodata`` (:func:`pseudodata`) for every prefix whose sum is non-zero:
    the two regions by default, the ML features with their own prefixes and width. Without the
    backgrounds of the formula (a signal alone, ``--processes signal``) there is none."""
    for prefix in prefixes:
        data = pseudodata(hists, prefix, width)
        if data[0].sum() != 0:
            hists[f"{prefix}_pseudodata"] = data


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
    write_text(path, json.dumps(to_json(hists), indent=2) + "\n")


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
    write_histogram_file(path, ordered(hists), hists, _th1)


def write_histogram_file(path: str | Path, names: list[str], hists: Mapping[str, np.ndarray],
                         th1, salt: bytes = b"") -> None:
    """Write `names` of `hists` (converted by th1(name, values)) as one reproducible ROOT file.

    The file UUID is derived from the content (and `salt`), the clock is frozen, and the
    file appears whole or not at all.
    """
    import uproot

    from reanimate.datasets.writing import reproducible_uproot, source_date

    digest = hashlib.sha256(salt)
    for n in names:
        digest.update(n.encode() + b"\0" + np.ascontiguousarray(hists[n]).tobytes())
    file_uuid = uuid.UUID(bytes=digest.digest()[:16], version=4)
    # ROOT stores the file name: keep_name writes under the final name in a scratch folder
    with atomic_path(path, keep_name=True) as tmp, reproducible_uproot(source_date()):
        with uproot.recreate(tmp, uuid_function=lambda: file_uuid) as f:
            for n in names:
                f[n] = th1(n, hists[n])
