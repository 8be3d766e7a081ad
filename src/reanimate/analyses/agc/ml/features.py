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


def group_features(
    jets: dict[str, np.ndarray], lepton: dict[str, np.ndarray], perms: np.ndarray
) -> np.ndarray:
    """Features (E, P, 20) of events with the same jet count: ``jets`` fields are (E, n)."""
    f64 = {k: np.asarray(v, dtype=np.float64) for k, v in jets.items()}
    lep = {k: np.asarray(v, dtype=np.float64)[:, None] for k, v in lepton.items()}
    jp4 = _p4(f64["pt"], f64["eta"], f64["phi"], f64["mass"])
    lp4 = _p4(lep["pt"], lep["eta"], lep["phi"], lep["mass"])

    def take(values, role):  # (E, n) -> (E, P) for the jet playing ``role``
        return values[:, perms[:, role]]

    w1, w2, bh, bl = 0, 1, 2, 3
    eta = {r: take(f64["eta"], r) for r in range(4)}
    phi = {r: take(f64["phi"], r) for r in range(4)}
    p4 = {r: tuple(take(c, r) for c in jp4) for r in range(4)}
    out = np.empty(eta[0].shape + (20,), dtype=np.float64)
    out[..., 0] = _delta_r(lep["eta"], lep["phi"], eta[bl], phi[bl])
    out[..., 1] = _delta_r(eta[w1], phi[w1], eta[w2], phi[w2])
    out[..., 2] = _delta_r(eta[w1], phi[w1], eta[bh], phi[bh])
    out[..., 3] = _delta_r(eta[w2], phi[w2], eta[bh], phi[bh])
    out[..., 4] = _mass(*(lp4[c] + p4[bl][c] for c in range(4)))
    ww = tuple(p4[w1][c] + p4[w2][c] for c in range(4))
    out[..., 5] = _mass(*ww)
    bjj = tuple(ww[c] + p4[bh][c] for c in range(4))
    out[..., 6] = _mass(*bjj)
    out[..., 7] = np.sqrt(bjj[0] ** 2 + bjj[1] ** 2)
    for k, field in enumerate(("pt", "btag", "qgl")):
        for r in range(4):
            out[..., 8 + 4 * k + r] = take(f64[field], r)
    return out


def iter_groups(
    jets: Jets, lepton: Leptons, max_jets: int = MAX_JETS, batch_rows: int = 1 << 18
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (event indices, features (E, P, 20)) batches, grouped by min(n, max_jets).

    A batch holds at most ~``batch_rows`` permutations (bounded memory on large chunks).
    """
    used = np.minimum(jets.counts, max_jets)
    starts = jets.starts
    for n in np.unique(used):
        events = np.flatnonzero(used == n)
        perms = permutations(int(n))
        step = max(1, batch_rows // len(perms))
        for first in range(0, len(events), step):
            ev = events[first : first + step]
            idx = starts[ev, None] + np.arange(n)[None, :]
            jet_fields = {f: getattr(jets, f)[idx] for f in JET_FIELDS}
            lep_fields = {f: np.asarray(getattr(lepton, f))[ev] for f in LEPTON_FIELDS}
            yield ev, group_features(jet_fields, lep_fields, perms)


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
