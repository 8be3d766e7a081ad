"""Compare two sets of AGC histograms (ROOT or JSON) with the AGC validation semantics (§8).

One side is the reference: as in the AGC's ``validate_histograms.py --reference``, every
histogram of the reference must exist on the other side and agree; histograms only on the other
side are listed as information and do not fail the comparison.

A histogram passes when its edges agree and its contents (including under/overflow) agree to
rtol 1e-5 (``numpy.isclose`` defaults). ``*pt_res_up*`` contents are skipped (the reference
draws that smearing at random). A run of adjacent mismatching bins still passes when every bin
of it differs by at most two events' worth of weight and the run's sums agree (rtol 1e-5): one
event migrating across a bin edge because of float32 rounding.

An event's worth of weight is sumw2/sumw of a bin (exact for the AGC's uniformly weighted
samples), the largest over the bins of either side that stores variances; for JSON files on
both sides (no variances) it is the smallest non-zero |content| of either side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reanimate.errors import ReanimateError

RTOL, ATOL = 1e-5, 1e-8


@dataclass
class Histogram:
    edges: np.ndarray
    contents: np.ndarray  # with under/overflow
    variances: np.ndarray | None = None


@dataclass
class Mismatch:
    name: str
    reason: str
    bins: list[int] = field(default_factory=list)  # indices into contents (0 = underflow)

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def load(path: str | Path) -> dict[str, Histogram]:
    """Histograms of a ROOT file (every TH1) or an AGC reference JSON file."""
    path = Path(path)
    if not path.is_file():
        raise ReanimateError(f"{path}: file not found")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"root":
        return _load_root(path)
    try:
        doc = json.loads(path.read_text())
        return {
            name: Histogram(np.asarray(h["edges"], float), np.asarray(h["contents"], float))
            for name, h in doc.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ReanimateError(
            f"{path}: neither a ROOT file nor AGC histogram JSON "
            f"({{name: {{edges, contents}}}}): {exc}"
        ) from None


def _load_root(path: Path) -> dict[str, Histogram]:
    import uproot

    out = {}
    try:
        with uproot.open(path) as f:
            for key, classname in f.classnames(recursive=False).items():
                if not classname.startswith("TH1"):
                    continue
                h = f[key]
                name = key.split(";")[0]
                variances = h.variances(flow=True) if len(h.member("fSumw2")) else None
                out[name] = Histogram(
                    np.asarray(h.axis().edges(), float),
                    np.asarray(h.values(flow=True), float),
                    None if variances is None else np.asarray(variances, float),
                )
    except OSError as exc:
        raise ReanimateError(f"{path}: cannot read: {exc}") from None
    return out


def _event_weight(a: Histogram, b: Histogram) -> float:
    ratios = []
    for h in (a, b):
        if h.variances is not None:
            nz = h.contents != 0
            ratios.extend(np.abs(h.variances[nz] / h.contents[nz]))
    if ratios:
        return float(max(ratios))
    nonzero = np.abs(np.concatenate([a.contents, b.contents]))
    nonzero = nonzero[nonzero > 0]
    return float(nonzero.min()) if len(nonzero) else 0.0


def _runs(indices: np.ndarray) -> list[list[int]]:
    runs: list[list[int]] = []
    for i in indices.tolist():
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def compare_histogram(name: str, a: Histogram, b: Histogram) -> Mismatch | None:
    if a.edges.shape != b.edges.shape or not np.allclose(a.edges, b.edges):
        return Mismatch(name, f"edges differ: {a.edges.tolist()} vs {b.edges.tolist()}")
    if a.contents.shape != b.contents.shape:
        return Mismatch(name, f"{len(a.contents)} vs {len(b.contents)} bins")
    if "pt_res_up" in name:
        return None
    close = np.isclose(a.contents, b.contents, rtol=RTOL, atol=ATOL)
    if close.all():
        return None
    weight = _event_weight(a, b)
    bad = []
    for run in _runs(np.flatnonzero(~close)):
        diff = np.abs(a.contents[run] - b.contents[run])
        migrates = bool((diff <= 2 * weight * (1 + RTOL)).all()) and np.isclose(
            a.contents[run].sum(), b.contents[run].sum(), rtol=RTOL, atol=ATOL
        )
        if not migrates:
            bad.extend(run)
    if not bad:
        return None
    detail = ", ".join(
        f"bin {i} ({_bin_label(i, a.edges)}): {a.contents[i]:.8g} vs {b.contents[i]:.8g}"
        for i in bad
    )
    return Mismatch(name, f"contents differ in {len(bad)} bin(s): {detail}", bad)


def _bin_label(i: int, edges: np.ndarray) -> str:
    if i == 0:
        return "underflow"
    if i == len(edges):
        return "overflow"
    return f"[{edges[i - 1]:g}, {edges[i]:g})"


def compare(reference: dict[str, Histogram], other: dict[str, Histogram]) -> list[Mismatch]:
    """Every mismatch of ``other`` against ``reference``, over the reference's names only.

    As the AGC validator does, each histogram of the reference must be in ``other`` and agree;
    histograms only in ``other`` are not compared (:func:`extras` lists them).
    """
    out = []
    for name in sorted(reference):
        if name not in other:
            out.append(Mismatch(name, "only in the reference (missing from the other file)"))
        else:
            m = compare_histogram(name, reference[name], other[name])
            if m is not None:
                out.append(m)
    return out


def extras(reference: dict[str, Histogram], other: dict[str, Histogram]) -> list[str]:
    """The names of ``other`` the reference lacks (reported as information, never a failure)."""
    return sorted(set(other) - set(reference))


@dataclass
class Comparison:
    mismatches: list[Mismatch]
    compared: int  # the reference's histograms
    extras: list[str]  # only in the other file, not compared


def compare_files(reference: str | Path, other: str | Path) -> Comparison:
    """Compare ``other`` against ``reference`` (ROOT or JSON each)."""
    ref, oth = load(reference), load(other)
    return Comparison(compare(ref, oth), len(ref), extras(ref, oth))
