"""The 20 BDT features of a jet–parton permutation (docs/agc-analysis.md §9), vectorised.

Inputs are flat numpy arrays: the selected jets of every event one after the other (grouped by
``counts``, in their original order) and one lepton per event. Only the first min(n, max_jets)
jets of an event enter its permutations. Everything is computed in float64 from the (varied)
float64 jet pT and the float32 eta, phi, mass, btagCSVV2 and qgl; four-vector masses are
sqrt(max(E² − |p|², 0)). ΔR = sqrt(Δη² + Δφ²) **without** wrapping Δφ, as the reference does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np

from reanimate.analyses.agc.ml.permutations import MAX_JETS, MIN_JETS, permutations

FEATURE_NAMES: tuple[str, ...] = (
    "deltar_leptonbtoplep",
    "deltar_w1w2",
    "deltar_w1btophad",
    "deltar_w2btophad",
    "mass_leptonbtoplep",
    "mass_w1w2",
    "mass_w1w2btophad",
    "pt_w1w2btophad",
    "pt_w1",
    "pt_w2",
    "pt_btophad",
    "pt_btoplep",
    "btag_w1",
    "btag_w2",
    "btag_btophad",
    "btag_btoplep",
    "qgl_w1",
    "qgl_w2",
    "qgl_btophad",
    "qgl_btoplep",
)
N_FEATURES = len(FEATURE_NAMES)
#: Histogram ranges of the features (25 bins each), as in the AGC configuration.
BIN_LOW: tuple[float, ...] = (
    0,
    0,
    0,
    0,
    50,
    50,
    50,
    50,
    25,
    25,
    25,
    25,
    0,
    0,
    0,
    0,
    -1,
    -1,
    -1,
    -1,
)
BIN_HIGH: tuple[float, ...] = (
    6,
    6,
    6,
    6,
    300,
    300,
    550,
    550,
    300,
    300,
    300,
    300,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
)
NBINS = 25

JET_FIELDS = ("pt", "eta", "phi", "mass", "btag", "qgl")
LEPTON_FIELDS = ("pt", "eta", "phi", "mass")


@dataclass
class Jets:
    """Selected jets, flat, grouped by event with ``counts`` (events with < 4 jets not allowed)."""

    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    btag: np.ndarray
    qgl: np.ndarray
    counts: np.ndarray

    def __post_init__(self) -> None:
        self.counts = np.asarray(self.counts, dtype=np.int64)
        for f in JET_FIELDS:
            setattr(self, f, np.asarray(getattr(self, f)))
            if len(getattr(self, f)) != self.counts.sum():
                raise ValueError(
                    f"jet field {f}: {len(getattr(self, f))} values, "
                    f"counts sum to {self.counts.sum()}"
                )
        if len(self.counts) and self.counts.min() < MIN_JETS:
            raise ValueError(f"every event needs at least {MIN_JETS} jets")

    @property
    def starts(self) -> np.ndarray:
        return np.cumsum(self.counts) - self.counts


@dataclass
class Leptons:
    """One lepton per event."""

    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray


def _p4(pt, eta, phi, mass):
    pt, eta, phi, mass = (np.asarray(x, dtype=np.float64) for x in (pt, eta, phi, mass))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return px, py, pz, np.sqrt(px * px + py * py + pz * pz + mass * mass)


def _mass(px, py, pz, e):
    return np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0))


def _delta_r(eta1, phi1, eta2, phi2):
    return np.sqrt((eta1 - eta2) ** 2 + (phi1 - phi2) ** 2)  # no phi wrapping (as the AGC)


@dataclass
class Group:
    """Events with the same number ``n`` of used jets, ready for :func:`fill_features`.

    ``jets``: float64 fields (E, n); ``lepton``: float64 fields (E, 1); ``jp4``/``lp4``: their
    (px, py, pz, E). :meth:`table` holds every feature once per jet, jet pair or (W1, W2, b_had)
    triple; a permutation's features are gathered from it (the same float64 operations, in the
    same order, as computing them per permutation: the same values).
    """

    jets: dict[str, np.ndarray]
    lepton: dict[str, np.ndarray]
    jp4: tuple[np.ndarray, ...]
    lp4: tuple[np.ndarray, ...]
    _table: np.ndarray | None = None

    @property
    def n(self) -> int:
        return self.jets["pt"].shape[1]

    def table(self) -> np.ndarray:
        """(E, W) float64: every feature value of the group, once per jet, pair or triple.

        Columns: see :func:`columns` (which column holds feature k of a permutation).
        """
        if self._table is not None:
            return self._table
        jets, lep, jp4 = self.jets, self.lepton, self.jp4
        eta, phi = jets["eta"], jets["phi"]
        e = len(eta)
        w1, w2, bh = _triples(self.n).T
        ww = tuple(c[:, w1] + c[:, w2] for c in jp4)
        bjj = tuple(ww[c] + jp4[c][:, bh] for c in range(4))
        parts = (  # in the order of _SECTIONS
            _delta_r(lep["eta"], lep["phi"], eta, phi),
            _mass(*(self.lp4[c] + jp4[c] for c in range(4))),
            # [i, j] flattened to i * n + j; the first argument is jet i
            _delta_r(eta[:, :, None], phi[:, :, None], eta[:, None, :], phi[:, None, :]).reshape(
                e, -1
            ),
            _mass(*ww),
            _mass(*bjj),
            np.sqrt(bjj[0] ** 2 + bjj[1] ** 2),
            jets["pt"],
            jets["btag"],
            jets["qgl"],
        )
        self._table = np.ascontiguousarray(np.concatenate(parts, axis=1))
        return self._table


#: Sections of :meth:`Group.table`: per bl jet, per bl jet, per jet pair, per triple (x3), per jet
_SECTIONS = ("dr_lb", "m_lb", "dr", "m_ww", "m_bjj", "pt_bjj", "pt", "btag", "qgl")


@cache
def _triples(n: int) -> np.ndarray:
    """The distinct (W1, W2, b_had) of the permutations of ``n`` jets, (T, 3)."""
    return np.unique(permutations(n)[:, :3], axis=0)


def columns(n: int, perms: np.ndarray | None = None) -> np.ndarray:
    """(P, 20) column of :meth:`Group.table` holding feature k of each permutation.

    ``perms``: (P, 4) permutations of ``n`` jets (default: all of them, cached).
    """
    if perms is None:
        return _all_columns(n)
    t = len(_triples(n))
    width = {"dr_lb": n, "m_lb": n, "dr": n * n, "m_ww": t, "m_bjj": t, "pt_bjj": t,
             "pt": n, "btag": n, "qgl": n}
    start, offset = {}, 0
    for name in _SECTIONS:
        start[name], offset = offset, offset + width[name]
    index = np.full((n, n, n), -1, np.int64)
    index[tuple(_triples(n).T)] = np.arange(t)
    w1, w2, bh, bl = (perms[:, r] for r in range(4))
    triple = index[w1, w2, bh]
    cols = [
        start["dr_lb"] + bl,
        start["dr"] + w1 * n + w2,
        start["dr"] + w1 * n + bh,
        start["dr"] + w2 * n + bh,
        start["m_lb"] + bl,
        start["m_ww"] + triple,
        start["m_bjj"] + triple,
        start["pt_bjj"] + triple,
    ]
    for field in ("pt", "btag", "qgl"):
        cols += [start[field] + role for role in (w1, w2, bh, bl)]
    return np.stack(cols, axis=1)


@cache
def _all_columns(n: int) -> np.ndarray:
    out = columns(n, permutations(n))
    out.setflags(write=False)
    return out


def make_group(jets: dict[str, np.ndarray], lepton: dict[str, np.ndarray]) -> Group:
    """A :class:`Group` from jet fields (E, n) and lepton fields (E,)."""
    f64 = {k: np.asarray(v, dtype=np.float64) for k, v in jets.items()}
    lep = {k: np.asarray(v, dtype=np.float64)[:, None] for k, v in lepton.items()}
    return Group(
        f64,
        lep,
        _p4(f64["pt"], f64["eta"], f64["phi"], f64["mass"]),
        _p4(lep["pt"], lep["eta"], lep["phi"], lep["mass"]),
    )


def fill_features(out: np.ndarray, g: Group, perms: np.ndarray | None = None) -> None:
    """``out[e, p, k]`` = feature k of permutation p of event e (float64 values).

    ``perms``: (P, 4) (default: all permutations of the group's jet count). ``out`` (E, P, 20)
    may be float32: each float64 feature is rounded once, on assignment.
    """
    table, cols = g.table(), columns(g.n, perms)
    for k in range(N_FEATURES):
        out[..., k] = table[:, cols[:, k]]


def chosen_features(g: Group, index: np.ndarray) -> np.ndarray:
    """(E, 20) float64 features of permutation ``index[e]`` of each event."""
    return np.take_along_axis(g.table(), columns(g.n)[index], axis=1)


def group_features(
    jets: dict[str, np.ndarray], lepton: dict[str, np.ndarray], perms: np.ndarray
) -> np.ndarray:
    """Features (E, P, 20) of events with the same jet count: ``jets`` fields are (E, n)."""
    g = make_group(jets, lepton)
    out = np.empty((len(g.lepton["pt"]), len(perms), N_FEATURES), dtype=np.float64)
    fill_features(out, g, perms)
    return out


def group_fields(
    jets: Jets, lepton: Leptons, events: np.ndarray, n: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Jet fields (E, n) of the first ``n`` jets of ``events`` and their lepton fields (E,)."""
    idx = jets.starts[events, None] + np.arange(n)[None, :]
    return (
        {f: getattr(jets, f)[idx] for f in JET_FIELDS},
        {f: np.asarray(getattr(lepton, f))[events] for f in LEPTON_FIELDS},
    )


def iter_groups(
    jets: Jets, lepton: Leptons, max_jets: int = MAX_JETS, batch_rows: int = 1 << 18
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (event indices, features (E, P, 20)) batches, grouped by min(n, max_jets).

    A batch holds at most ~``batch_rows`` permutations (bounded memory on large chunks).
    """
    used = np.minimum(jets.counts, max_jets)
    for n in np.unique(used):
        events = np.flatnonzero(used == n)
        perms = permutations(int(n))
        step = max(1, batch_rows // len(perms))
        for first in range(0, len(events), step):
            ev = events[first : first + step]
            yield ev, group_features(*group_fields(jets, lepton, ev, int(n)), perms)


def permutation_features(
    jets: Jets, lepton: Leptons, max_jets: int = MAX_JETS
) -> tuple[np.ndarray, np.ndarray]:
    """Features of every permutation of every event, (Σ P_i, 20) in event order, and P_i."""
    perm_counts = (
        np.array([len(permutations(n)) for n in range(MIN_JETS, MAX_JETS + 1)], dtype=np.int64)[
            np.minimum(jets.counts, max_jets) - MIN_JETS
        ]
        if len(jets.counts)
        else np.zeros(0, np.int64)
    )
    offsets = np.cumsum(perm_counts) - perm_counts
    out = np.empty((int(perm_counts.sum()), N_FEATURES), dtype=np.float64)
    for ev, feats in iter_groups(jets, lepton, max_jets):
        rows = offsets[ev, None] + np.arange(feats.shape[1])[None, :]
        out[rows] = feats
    return out, perm_counts
