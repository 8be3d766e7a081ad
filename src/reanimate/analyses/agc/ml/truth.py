"""Truth labels of the leading four jets for training (docs/agc-analysis.md §9).

Candidates: last-copy quarks (0 < |pdgId| < 7, ``statusFlags`` bit 13) whose distinct parent
(the first ancestor with a different pdgId, as coffea's ``distinctParent``) is a top (|pdgId| 6)
or a W (24). Each jet is matched to the nearest candidate (ΔR with φ wrapped, as coffea's
``nearest``) within ΔR < 0.4 and labelled with |pdgId| of the candidate's parent (24 or 6);
−6 when that parent's grand-children (through ``distinctParent`` twice) include both a charged
lepton and a neutrino — the b of the leptonically decaying top. Unmatched jets get 100. Events
whose four labels sum to 48 (24, 24, 6, −6 in some order) are used for training.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from reanimate.analyses.agc.ml.permutations import BLEP_LABEL, NO_LABEL

LAST_COPY = 1 << 13
MATCH_DR = 0.4
MAX_DEPTH = 64  # mother-chain walks longer than this are treated as corrupt (cycles)


def _flat(array) -> np.ndarray:
    return ak.to_numpy(ak.flatten(array, axis=1))


def distinct_parent(pdg: np.ndarray, mother: np.ndarray) -> np.ndarray:
    """Global index of the first ancestor with a different pdgId (-1 if none); flat arrays."""
    parent = mother.copy()
    for _ in range(MAX_DEPTH):
        same = parent >= 0
        same[same] = pdg[parent[same]] == pdg[same]
        if not same.any():
            return parent
        parent[same] = mother[parent[same]]
    same = parent >= 0
    same[same] = pdg[parent[same]] == pdg[same]
    parent[same] = -1
    return parent


def jet_labels(genpart: dict, jet_eta: np.ndarray, jet_phi: np.ndarray) -> np.ndarray:
    """(E, J) labels (24, 6, −6 or 100) for jets given as (E, J) eta/phi arrays.

    ``genpart`` maps pdgId, genPartIdxMother, statusFlags, eta, phi to jagged (E, var) arrays.
    """
    counts = ak.to_numpy(ak.num(genpart["pdgId"], axis=1)).astype(np.int64)
    offsets = np.cumsum(counts) - counts
    event = np.repeat(np.arange(len(counts)), counts)
    pdg = _flat(genpart["pdgId"]).astype(np.int64)
    local_mother = _flat(genpart["genPartIdxMother"]).astype(np.int64)
    flags = _flat(genpart["statusFlags"]).astype(np.int64)
    eta = _flat(genpart["eta"]).astype(np.float64)
    phi = _flat(genpart["phi"]).astype(np.float64)
    valid = (local_mother >= 0) & (local_mother < counts[event])
    mother = np.where(valid, local_mother + offsets[event], -1)

    parent = distinct_parent(pdg, mother)
    apdg = np.abs(pdg)
    has_parent = parent >= 0
    parent_apdg = np.where(has_parent, np.abs(pdg[np.maximum(parent, 0)]), 0)
    # grand-children through distinctParent twice: flag (charged lepton, neutrino) per ancestor
    grand = np.where(has_parent, parent[np.maximum(parent, 0)], -1)
    charged = np.zeros(len(pdg), dtype=bool)
    neutrino = np.zeros(len(pdg), dtype=bool)
    lepton = (apdg > 10) & (apdg < 19)
    charged[grand[(grand >= 0) & lepton & (apdg % 2 == 1)]] = True
    neutrino[grand[(grand >= 0) & lepton & (apdg % 2 == 0)]] = True

    candidate = (
        (apdg > 0)
        & (apdg < 7)
        & ((flags & LAST_COPY) != 0)
        & has_parent
        & ((parent_apdg == 6) | (parent_apdg == 24))
    )
    label = parent_apdg.copy()
    leptonic_parent = has_parent & charged[np.maximum(parent, 0)] & neutrino[np.maximum(parent, 0)]
    label[leptonic_parent] = BLEP_LABEL

    # pad the candidates per event and match every jet to its nearest one
    cand_counts = np.bincount(event[candidate], minlength=len(counts))
    jet_eta = np.asarray(jet_eta, dtype=np.float64)
    jet_phi = np.asarray(jet_phi, dtype=np.float64)
    out = np.full(jet_eta.shape, NO_LABEL, dtype=np.int64)
    width = int(cand_counts.max()) if len(cand_counts) else 0
    if width == 0:
        return out
    cand_starts = np.cumsum(cand_counts) - cand_counts
    cand_event = event[candidate]
    slot = np.arange(len(cand_event)) - cand_starts[cand_event]
    c_eta = np.full((len(counts), width), np.inf)
    c_phi = np.zeros((len(counts), width))
    c_label = np.full((len(counts), width), NO_LABEL, dtype=np.int64)
    c_eta[cand_event, slot] = eta[candidate]
    c_phi[cand_event, slot] = phi[candidate]
    c_label[cand_event, slot] = label[candidate]
    dphi = (jet_phi[:, :, None] - c_phi[:, None, :] + np.pi) % (2 * np.pi) - np.pi
    deta = jet_eta[:, :, None] - c_eta[:, None, :]
    with np.errstate(invalid="ignore"):
        dr = np.sqrt(deta * deta + dphi * dphi)
    dr = np.where(np.isfinite(dr), dr, np.inf)
    nearest = np.argmin(dr, axis=2)
    best = np.take_along_axis(dr, nearest[..., None], axis=2)[..., 0]
    matched = best < MATCH_DR
    labels = np.take_along_axis(c_label, nearest, axis=1)
    out[matched] = labels[matched]
    return out
