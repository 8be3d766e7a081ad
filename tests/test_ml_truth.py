"""Truth labels for training: a hand-built GenPart record with NanoAOD-style copies."""

from __future__ import annotations

import awkward as ak
import numpy as np

from reanimate.analyses.agc.ml.truth import LAST_COPY, distinct_parent, jet_labels

FIRST = 1 << 12

# (pdgId, mother, last copy?, eta, phi): t → b W+(→ u d̄) hadronic, t̄ → b̄ W−(→ μ− ν̄) leptonic,
# with intermediate copies of the top, the b and the W+ as in real NanoAOD
SEMILEPTONIC = [
    (21, -1, True, 0.0, 0.0),  # 0 incoming gluon
    (21, -1, True, 0.0, 0.0),  # 1 incoming gluon
    (6, 0, False, 0.5, 1.0),  # 2 top
    (6, 2, True, 0.5, 1.0),  # 3 top, last copy
    (-6, 0, False, -0.5, -1.0),  # 4 antitop
    (-6, 4, True, -0.5, -1.0),  # 5 antitop, last copy
    (5, 3, False, 0.2, 0.9),  # 6 b, first copy: not a candidate
    (5, 6, True, 0.21, 0.91),  # 7 b, last copy -> hadronic top: 6
    (24, 3, False, 0.8, 1.5),  # 8 W+
    (24, 8, True, 0.8, 1.5),  # 9 W+, last copy
    (-5, 5, True, -1.0, 3.10),  # 10 b̄ -> leptonic top: -6 (its jet sits across ±π)
    (-24, 5, True, 0.1, -1.2),  # 11 W−
    (2, 9, True, 1.2, 2.0),  # 12 u from W+ -> 24
    (-1, 9, True, 0.3, 0.4),  # 13 d̄ from W+ -> 24
    (13, 11, True, 0.0, -1.0),  # 14 μ−
    (-14, 11, True, 0.3, -1.5),  # 15 ν̄μ
    (2, 0, True, 2.0, -2.5),  # 16 ISR quark: parent is a gluon, not a candidate
]
# dileptonic: both b from leptonic tops
DILEPTONIC = [
    (21, -1, True, 0, 0),
    (21, -1, True, 0, 0),
    (6, 0, True, 0.5, 1.0),
    (-6, 0, True, -0.5, -1.0),
    (5, 2, True, 0.2, 0.9),
    (24, 2, True, 0.8, 1.5),
    (-5, 3, True, -1.0, 2.0),
    (-24, 3, True, 0.1, -1.2),
    (-11, 5, True, 1.2, 2.0),
    (12, 5, True, 0.3, 0.4),
    (13, 7, True, 0.0, -1.0),
    (-14, 7, True, 0.3, -1.5),
]


def genpart(events):
    def column(i, dtype):
        return ak.Array([np.array([p[i] for p in e], dtype=dtype) for e in events])

    flags = [[(LAST_COPY if p[2] else 0) | FIRST for p in e] for e in events]
    return {
        "pdgId": column(0, np.int32),
        "genPartIdxMother": column(1, np.int32),
        "statusFlags": ak.Array([np.array(f, np.int32) for f in flags]),
        "eta": column(3, np.float32),
        "phi": column(4, np.float32),
    }


def test_labels_of_a_semileptonic_event_with_copies():
    # jets near b (hadronic), b̄ (leptonic, across the ±π boundary), u, d̄
    jet_eta = np.array([[0.25, -1.02, 1.18, 0.33]])
    jet_phi = np.array([[0.95, -3.12, 2.03, 0.38]])
    labels = jet_labels(genpart([SEMILEPTONIC]), jet_eta, jet_phi)
    assert labels.tolist() == [[6, -6, 24, 24]]
    assert labels.sum() == 48


def test_unmatched_jets_and_dileptonic_events_are_not_training_events():
    jet_eta = np.array([[0.25, -1.0, 1.2, 0.33], [0.2, -1.0, 2.3, 0.0]])
    jet_phi = np.array([[0.95, 3.1, 2.0, -0.8], [0.9, 2.0, -2.0, 3.0]])
    labels = jet_labels(genpart([SEMILEPTONIC, DILEPTONIC]), jet_eta, jet_phi)
    assert labels[0].tolist() == [6, -6, 24, 100]  # 4th jet: ΔR > 0.4 from every quark
    assert labels[1].tolist() == [-6, -6, 100, 100]
    assert (labels.sum(axis=1) != 48).all()


def test_distinct_parent_skips_copies():
    pdg = np.array([p[0] for p in SEMILEPTONIC])
    mother = np.array([p[1] for p in SEMILEPTONIC])
    parent = distinct_parent(pdg, mother)
    assert parent[7] == 3 and parent[12] == 9 and parent[9] == 3 and parent[3] == 0
    # a corrupt record with a cycle of copies terminates with no parent
    assert distinct_parent(np.array([5, 5]), np.array([1, 0])).tolist() == [-1, -1]
