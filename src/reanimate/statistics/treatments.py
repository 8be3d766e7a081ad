"""Template treatments of the model builder: what low-statistics templates need before a fit.

The treatments and their defaults (docs/statistics.md, "Template treatments"):

* **bin merging** (`max_mc_rel_error`, default 0.20): adjacent bins of a channel are merged,
  from the upper end down, until the total MC prediction of every bin has a relative
  statistical uncertainty sqrt(sum w^2) / sum w at most this; a remainder at the lower end
  joins its neighbour. MC only (never the data), in the spirit of TRExFitter's automatic
  binning: a bin the simulation cannot populate cannot be fitted;
* **empty and negative yields**: a sample with no positive nominal yield in a channel is
  dropped from it; negative bins of nominal and varied templates are floored at 0; a variation
  whose yield is not positive (including a symmetrised down side, 2 - hi <= 0) follows
  `empty_variation`: "drop" (default) removes that systematic from that sample in that channel,
  "floor" keeps it with the normalisation factor floored at `norm_floor`;
* **smoothing** (per systematic, `Systematic.smooth`): the ratio variation/nominal of the
  shape is smoothed with Tukey's running-median smoother 353 followed by hanning, applied
  twice (the residuals are smoothed and added back); this is ROOT's TH1::Smooth recipe without
  its quadratic treatment of two-bin plateaus;
* **pruning**: the normsys part is dropped when max(|hi - 1|, |lo - 1|) < `prune_norm`
  (0.005, TRExFitter's default), the histosys part when the largest relative bin change of the
  normalised shapes is < `prune_shape` (0.005), and, when `shape_significance` is set (off by
  default), when the shape change is not statistically significant given the templates' MC
  uncertainty: p-value of chi2 = sum (shape - nominal)^2 / sigma^2 with nbins degrees of
  freedom above `shape_significance`. sigma^2 is the nominal's sum w^2, plus the variation's
  for a variation made from an independent sample; a variation of the same events is less
  noisy than that, so the test errs toward pruning;
* **MC statistical uncertainty** (`staterror_threshold`, 0.05 as HistFactory's
  StatErrorConfig): a bin gets a staterror parameter only when the relative MC uncertainty of
  the channel's total is at least the threshold, and never a bin without MC.

Every function here is pure numpy on one channel's arrays; histfactory.py applies them and
records each decision.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where it is used: `reanimate validate` imports this
    import numpy as np

EMPTY_RULES = ("drop", "floor")


@dataclass(frozen=True)
class Treatments:
    max_mc_rel_error: float | None = 0.20
    empty_variation: str = "drop"
    norm_floor: float = 0.01
    smoothing: bool = True  # master switch; each Systematic says whether it wants it
    prune_norm: float = 0.005
    prune_shape: float = 0.005
    shape_significance: float | None = None
    staterror_threshold: float = 0.05

    def __post_init__(self) -> None:
        from reanimate.errors import ReanimateError

        if self.empty_variation not in EMPTY_RULES:
            raise ReanimateError(f"empty_variation must be one of {EMPTY_RULES}, "
                                 f"not {self.empty_variation!r}")
        for name in ("max_mc_rel_error", "prune_norm", "prune_shape", "shape_significance",
                     "staterror_threshold", "norm_floor"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ReanimateError(f"{name} must be a non-negative number, not {value!r}")

    @classmethod
    def none(cls) -> Treatments:
        """No treatment at all: the arithmetic of cabinetry (what the AGC reference builds)."""
        return cls(max_mc_rel_error=None, smoothing=False, prune_norm=0.0, prune_shape=0.0,
                   shape_significance=None, staterror_threshold=0.0)

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------ binning


def merged_edges(total: np.ndarray, variance: np.ndarray, edges, max_rel: float) -> list[float]:
    """Edges (a subset of `edges`) such that every merged bin has sqrt(var)/total <= max_rel
    when that is possible at all (else one bin).

    Bins are accumulated from the upper end down; a bin closes as soon as it passes. What is
    left at the lower end when the scan ends absorbs the closed bins above it, lowest first,
    until it passes.
    """
    def passes(t: float, v: float) -> bool:
        return t > 0 and math.sqrt(v) <= max_rel * t

    edges = [float(e) for e in edges]
    closed: list[tuple[float, float, float]] = []  # (lower edge, total, variance), top down
    acc_t = acc_v = 0.0
    for i in range(len(total) - 1, 0, -1):
        acc_t += float(total[i])
        acc_v += float(variance[i])
        if passes(acc_t, acc_v):
            closed.append((edges[i], acc_t, acc_v))
            acc_t = acc_v = 0.0
    acc_t += float(total[0])
    acc_v += float(variance[0])
    while closed and not passes(acc_t, acc_v):
        _, t, v = closed.pop()
        acc_t, acc_v = acc_t + t, acc_v + v
    return [edges[0], *(edge for edge, _, _ in reversed(closed)), edges[-1]]


# ---------------------------------------------------------------------------- smoothing


def _median3(y: np.ndarray) -> np.ndarray:
    import numpy as np

    out = y.copy()
    out[1:-1] = np.median(np.stack([y[:-2], y[1:-1], y[2:]]), axis=0)
    # Tukey's end-point rule: the end value against its neighbour's linear extrapolation
    out[0] = np.median([y[0], out[1], 3 * out[1] - 2 * out[2]])
    out[-1] = np.median([y[-1], out[-2], 3 * out[-2] - 2 * out[-3]])
    return out


def _median5(y: np.ndarray) -> np.ndarray:
    import numpy as np

    out = y.copy()
    if len(y) >= 5:
        out[2:-2] = np.median(np.stack([y[:-4], y[1:-3], y[2:-2], y[3:-1], y[4:]]), axis=0)
    out[1] = np.median(y[0:3])
    out[-2] = np.median(y[-3:])
    return out


def _hanning(y: np.ndarray) -> np.ndarray:
    out = y.copy()
    out[1:-1] = 0.25 * y[:-2] + 0.5 * y[1:-1] + 0.25 * y[2:]
    return out


def _smooth_once(y: np.ndarray) -> np.ndarray:
    return _hanning(_median3(_median5(_median3(y))))


def smooth_353h_twice(values) -> np.ndarray:
    """Tukey's 353 running medians then hanning, 'twice' (residuals smoothed and added back).

    Linear sequences come back unchanged; fewer than 3 values are returned as they are.
    """
    import numpy as np

    y = np.asarray(values, dtype=float)
    if len(y) < 3:
        return y.copy()
    first = _smooth_once(y)
    return first + _smooth_once(y - first)


def smooth_shape(nominal: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """`shape` with its ratio to `nominal` smoothed (bins without nominal are left as they are).

    The result keeps the yield of `shape` (the normalisation is the normsys's business).
    """
    ok = nominal > 0
    if ok.sum() < 3:
        return shape.copy()
    ratio = shape[ok] / nominal[ok]
    out = shape.copy()
    out[ok] = nominal[ok] * smooth_353h_twice(ratio)
    total = float(out.sum())
    if total > 0:
        out *= float(shape.sum()) / total
    return out


# ------------------------------------------------------------------------------ pruning


def shape_effect(nominal: np.ndarray, shapes: list[np.ndarray]) -> float:
    """The largest relative bin change |shape / nominal - 1| over the given shapes."""
    import numpy as np

    ok = nominal > 0
    if not ok.any():
        return 0.0
    return max(float(np.max(np.abs(s[ok] / nominal[ok] - 1.0))) for s in shapes)


def shape_p_value(nominal: np.ndarray, nominal_var: np.ndarray, shape: np.ndarray,
                  shape_var: np.ndarray | None) -> float | None:
    """p-value of the hypothesis "no shape change" given the MC uncertainties (None: no test).

    chi2 = sum over bins with MC of (shape - nominal)^2 / (var_nominal [+ var_shape]).
    """
    import numpy as np
    from scipy.special import chdtrc  # chi2's survival function; scipy.stats costs 0.5 s more

    sigma2 = nominal_var + (0.0 if shape_var is None else shape_var)
    ok = sigma2 > 0
    if not ok.any():
        return None
    value = float(np.sum((shape[ok] - nominal[ok]) ** 2 / sigma2[ok]))
    return float(chdtrc(int(ok.sum()), value))


def staterror_bins(total: np.ndarray, variance: np.ndarray, threshold: float) -> list[str | None]:
    """Per bin, None when it gets a staterror parameter, else why not."""
    out: list[str | None] = []
    for t, v in zip(total, variance, strict=True):
        if t <= 0 or v <= 0:
            out.append("no MC in the bin" if t <= 0 else "no MC uncertainty")
        elif math.sqrt(v) / t < threshold:
            out.append(f"relative MC uncertainty {math.sqrt(v) / t:.2%} < {threshold:.2%}")
        else:
            out.append(None)
    return out
