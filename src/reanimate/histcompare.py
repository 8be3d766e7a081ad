"""Compare two sets of 1-D histograms (ROOT files or AGC-style JSON) bin by bin.

The generic core of the AGC validation rules (docs/agc-analysis.md §8), for any analysis and for
`reanimate verify`; `analyses/agc/compare.py` adds the AGC's own exceptions on top.

One side is the reference: every histogram of the reference must exist on the other side and
agree; histograms only on the other side are listed as information and do not fail.

A histogram passes when its edges agree and its contents (including under/overflow) agree to
``rtol`` (1e-5, ``numpy.isclose`` defaults). A run of adjacent mismatching bins still passes when
every bin of it differs by at most two events' worth of weight and the run's sums agree: one
event migrating across a bin edge because of float32 rounding.

An event's worth of weight is sumw2/sumw of a bin (exact for uniformly weighted samples), the
largest over the bins of either side that stores variances; for JSON files on both sides (no
variances) it is the smallest non-zero |content| of either side.

numpy and uproot are imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reanimate.errors import ReanimateError

RTOL, ATOL = 1e-5, 1e-8

#: A predicate on a histogram's name: True when its contents are not compared (edges still are).
Skip = Callable[[str], bool]


def _never(name: str) -> bool:
    return False


@dataclass
class Histogram:
    edges: Any  # numpy array of the bin edges
    contents: Any  # numpy array, with under/overflow
    variances: Any | None = None


@dataclass
class Mismatch:
    name: str
    reason: str
    bins: list[int] = field(default_factory=list)  # indices into contents (0 = underflow)

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def is_histogram_json(doc: Any) -> bool:
    """True for ``{name: {"edges": [...], "contents": [...]}, ...}`` (the AGC reference format)."""
    return (isinstance(doc, dict) and bool(doc) and all(
        isinstance(h, dict) and "edges" in h and "contents" in h for h in doc.values()))


def from_json(doc: dict) -> dict[str, Histogram]:
    import numpy as np

    return {name: Histogram(np.asarray(h["edges"], float), np.asarray(h["contents"], float))
            for name, h in doc.items()}


def load(path: str | Path) -> dict[str, Histogram]:
    """Histograms of a ROOT file (every TH1) or a JSON file ``{name: {edges, contents}}``."""
    path = Path(path)
    if not path.is_file():
        raise ReanimateError(f"{path}: file not found")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"root":
        return load_root(path)
    try:
        return from_json(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ReanimateError(
            f"{path}: neither a ROOT file nor AGC histogram JSON "
            f"({{name: {{edges, contents}}}}): {exc}"
        ) from None


def load_root(path: Path) -> dict[str, Histogram]:
    """Every TH1 at the top of a ROOT file, by name (without the cycle)."""
    import numpy as np
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
    except (OSError, ValueError) as exc:
        raise ReanimateError(f"{path}: cannot read: {exc}") from None
    return out


def event_weight(a: Histogram, b: Histogram) -> float:
    """One event's worth of weight in these histograms (see the module's docstring)."""
    import numpy as np

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


def runs(indices) -> list[list[int]]:
    """Adjacent indices grouped: [1, 2, 5] -> [[1, 2], [5]]."""
    out: list[list[int]] = []
    for i in list(indices):
        i = int(i)
        if out and out[-1][-1] == i - 1:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def bin_label(i: int, edges) -> str:
    """`underflow`, `overflow` or `[low, high)` of bin `i` of the contents with flow bins."""
    if i == 0:
        return "underflow"
    if i == len(edges):
        return "overflow"
    return f"[{edges[i - 1]:g}, {edges[i]:g})"


def compare_histogram(name: str, a: Histogram, b: Histogram, *, rtol: float = RTOL,
                      atol: float = ATOL, skip_contents: Skip = _never) -> Mismatch | None:
    """None when `b` agrees with `a`; else what differs (edges, bin count or contents)."""
    import numpy as np

    if a.edges.shape != b.edges.shape or not np.allclose(a.edges, b.edges):
        return Mismatch(name, f"edges differ: {a.edges.tolist()} vs {b.edges.tolist()}")
    if a.contents.shape != b.contents.shape:
        return Mismatch(name, f"{len(a.contents)} vs {len(b.contents)} bins")
    if skip_contents(name):
        return None
    close = np.isclose(a.contents, b.contents, rtol=rtol, atol=atol)
    if close.all():
        return None
    weight = event_weight(a, b)
    bad = []
    for run in runs(np.flatnonzero(~close)):
        diff = np.abs(a.contents[run] - b.contents[run])
        migrates = bool((diff <= 2 * weight * (1 + rtol)).all()) and np.isclose(
            a.contents[run].sum(), b.contents[run].sum(), rtol=rtol, atol=atol
        )
        if not migrates:
            bad.extend(run)
    if not bad:
        return None
    detail = ", ".join(
        f"bin {i} ({bin_label(i, a.edges)}): {a.contents[i]:.8g} vs {b.contents[i]:.8g}"
        for i in bad
    )
    return Mismatch(name, f"contents differ in {len(bad)} bin(s): {detail}", bad)


def compare(reference: dict[str, Histogram], other: dict[str, Histogram], *,
            rtol: float = RTOL, atol: float = ATOL,
            skip_contents: Skip = _never) -> list[Mismatch]:
    """Every mismatch of ``other`` against ``reference``, over the reference's names only."""
    out = []
    for name in sorted(reference):
        if name not in other:
            out.append(Mismatch(name, "only in the reference (missing from the other file)"))
        else:
            m = compare_histogram(name, reference[name], other[name], rtol=rtol, atol=atol,
                                  skip_contents=skip_contents)
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


def compare_files(reference: str | Path, other: str | Path, *, rtol: float = RTOL,
                  atol: float = ATOL, skip_contents: Skip = _never) -> Comparison:
    """Compare ``other`` against ``reference`` (ROOT or JSON each)."""
    ref, oth = load(reference), load(other)
    return Comparison(compare(ref, oth, rtol=rtol, atol=atol, skip_contents=skip_contents),
                      len(ref), extras(ref, oth))
