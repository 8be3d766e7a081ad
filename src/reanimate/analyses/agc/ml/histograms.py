"""The 20 ML feature histograms: names, binning, filling and ``histograms_ml.root``.

Names ``{feature}_{process}`` (nominal) or ``{feature}_{process}_{variation}``, e.g.
``deltar_leptonbtoplep_ttbar`` or ``pt_w1_wjets_scale_var_up``. 25 bins per feature over the
AGC ranges (:data:`reanimate.analyses.agc.ml.features.BIN_LOW` / ``BIN_HIGH``), with under-
and overflow; partial histograms are (2, 27) float64 arrays (sum of weights, sum of squared
weights), like the histogram stage's, so the same ordered merge applies. Only non-zero
histograms are written, byte-deterministically (the same clock freeze,
:func:`reanimate.datasets.writing.reproducible_uproot`, and a content-derived UUID, as
``histograms.root``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import boost_histogram as bh
import numpy as np

from reanimate.analyses.agc.ml.features import BIN_HIGH, BIN_LOW, FEATURE_NAMES, NBINS

_INDEX = {name: k for k, name in enumerate(FEATURE_NAMES)}
# longest first, so that a feature name that prefixes another cannot steal its histograms
_BY_LENGTH = sorted(FEATURE_NAMES, key=len, reverse=True)


def edges(k: int) -> np.ndarray:
    return np.linspace(BIN_LOW[k], BIN_HIGH[k], NBINS + 1)


def histogram_name(feature: str, process: str, variation: str) -> str:
    base = f"{feature}_{process}"
    return base if variation == "nominal" else f"{base}_{variation}"


def feature_of(name: str) -> str | None:
    """The feature a histogram name belongs to, or None if it is not an ML histogram."""
    for feature in _BY_LENGTH:
        if name.startswith(feature + "_"):
            return feature
    return None


def is_ml_histogram(name: str) -> bool:
    return feature_of(name) is not None


def split(hists: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """(regular histograms, ML histograms) of a merged histogram dictionary."""
    regular, ml = {}, {}
    for name, h in hists.items():
        (ml if is_ml_histogram(name) else regular)[name] = h
    return regular, ml


def fill(k: int, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A (2, 27) partial histogram of feature ``k``."""
    h = bh.Histogram(
        bh.axis.Regular(NBINS, float(BIN_LOW[k]), float(BIN_HIGH[k])), storage=bh.storage.Weight()
    )
    h.fill(np.asarray(values, dtype=np.float64), weight=np.asarray(weights, dtype=np.float64))
    view = h.view(flow=True)
    return np.stack([np.array(view.value), np.array(view.variance)])


_LOW = np.asarray(BIN_LOW, dtype=np.float64)
_WIDTH = np.asarray(BIN_HIGH, dtype=np.float64) - _LOW


def flow_bins(features: np.ndarray) -> np.ndarray:
    """(E, 20) bin of each feature value, flow included (0 underflow, 26 overflow and NaN).

    boost-histogram's regular axis in numpy: z = (x - low) / (high - low), bin int(z * 25)
    for 0 <= z < 1 — the same float64 operations, hence the same bins as :func:`fill`.
    """
    z = (np.asarray(features, dtype=np.float64) - _LOW) / _WIDTH
    inside = (z >= 0) & (z < 1)
    bins = np.where(inside, z * NBINS, 0.0).astype(np.int64) + 1
    bins[~inside & (z < 0)] = 0
    bins[~inside & ~(z < 0)] = NBINS + 1  # z >= 1 or NaN
    return bins


def fill_features(
    features: np.ndarray, weights: Mapping[str, np.ndarray]
) -> dict[str, list[np.ndarray]]:
    """{variation: the 20 (2, 27) partial histograms of ``features`` (E, 20)}.

    Equal, bit for bit, to :func:`fill` per feature: each bin sums its weights (and squares) in
    event order, in float64, as boost-histogram does; one pass over all 20 features.
    """
    n, width = len(features), NBINS + 2
    flat = (flow_bins(features) + width * np.arange(len(FEATURE_NAMES))).ravel()
    size = width * len(FEATURE_NAMES)
    out = {}
    for variation, w in weights.items():
        w = np.asarray(w, dtype=np.float64)
        if len(w) != n:
            raise ValueError(f"{variation}: {len(w)} weights for {n} events")
        sums = np.stack(  # (20, 2, 27): each feature's (2, 27) histogram is contiguous
            [
                np.bincount(flat, np.repeat(v, len(FEATURE_NAMES)), size).reshape(-1, width)
                for v in (w, w * w)
            ],
            axis=1,
        )
        out[variation] = list(sums)
    return out


def _sort_key(name: str) -> tuple:
    from reanimate.analyses.agc.output import VARIATION_ORDER
    from reanimate.analyses.agc.samples import BACKGROUNDS

    feature = feature_of(name)
    rest = name[len(feature) + 1 :]
    if rest == "pseudodata":
        return (_INDEX[feature], 0, 0, 0, "")
    for i, process in enumerate(BACKGROUNDS):
        if rest == process or rest.startswith(process + "_"):
            variation = rest[len(process) + 1 :] or "nominal"
            if variation in VARIATION_ORDER:
                return (_INDEX[feature], 1, i, VARIATION_ORDER.index(variation), "")
    return (_INDEX[feature], 2, 0, 0, rest)


def ordered(hists: Mapping[str, np.ndarray]) -> list[str]:
    """ML names with a non-zero sum of weights: feature order, then process, then variation."""
    return sorted(
        (n for n, h in hists.items() if is_ml_histogram(n) and h[0].sum() != 0), key=_sort_key
    )


def to_json(hists: Mapping[str, np.ndarray]) -> dict:
    """The AGC reference format: {name: {"edges": [26], "contents": [27 with flow]}}."""
    return {
        n: {
            "edges": [float(e) for e in edges(_INDEX[feature_of(n)])],
            "contents": [float(v) for v in hists[n][0]],
        }
        for n in ordered(hists)
    }


def _th1(name: str, h: np.ndarray, k: int):
    from uproot.writing.identify import to_TAxis, to_TH1x

    e = edges(k)
    values = np.ascontiguousarray(h[0], dtype=np.float64)
    variances = np.ascontiguousarray(h[1], dtype=np.float64)
    centers = (e[:-1] + e[1:]) / 2
    inner = values[1:-1]
    sumw2_all = variances.sum()
    return to_TH1x(
        fName=name,
        fTitle=name,
        data=values,
        fEntries=float(values.sum() ** 2 / sumw2_all) if sumw2_all > 0 else 0.0,
        fTsumw=float(inner.sum()),
        fTsumw2=float(variances[1:-1].sum()),
        fTsumwx=float((inner * centers).sum()),
        fTsumwx2=float((inner * centers**2).sum()),
        fSumw2=variances,
        fXaxis=to_TAxis("xaxis", "", NBINS, float(e[0]), float(e[-1])),
    )


def write_root(path: str | Path, hists: Mapping[str, np.ndarray]) -> None:
    """Write the non-zero ML histograms as TH1D, byte-deterministically, atomically."""
    from reanimate.analyses.agc.output import write_histogram_file

    write_histogram_file(path, ordered(hists), hists,
                         lambda n, values: _th1(n, values, _INDEX[feature_of(n)]),
                         salt=b"histograms_ml\0")
