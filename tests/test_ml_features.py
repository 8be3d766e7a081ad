"""The 20 BDT features: vectorised code against a plain per-event Python computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ml_helpers import reference_features

from reanimate.analyses.agc.ml import features as feat
from reanimate.analyses.agc.ml import permutations as perm


def to_arrays(events):
    fields = {f: [] for f in feat.JET_FIELDS}
    for jets, _ in events:
        for j in jets:
            for f in feat.JET_FIELDS:
                fields[f].append(j[f])
    jets = feat.Jets(
        **{
            f: np.array(v, dtype=np.float64 if f == "pt" else np.float32) for f, v in fields.items()
        },
        counts=[len(j) for j, _ in events],
    )
    lep = feat.Leptons(
        *(np.array([e[1][f] for e in events], np.float32) for f in feat.LEPTON_FIELDS)
    )
    return jets, lep


def hand_built_event():
    """Six jets, phis on both sides of ±π (a wrapped ΔR would differ), one muon."""
    jets = [
        {"pt": 120.5, "eta": 0.3, "phi": 3.0, "mass": 12.0, "btag": 0.95, "qgl": 0.2},
        {"pt": 85.0, "eta": -1.1, "phi": -3.05, "mass": 9.5, "btag": 0.10, "qgl": 0.8},
        {"pt": 64.2, "eta": 1.7, "phi": 0.4, "mass": 7.1, "btag": 0.05, "qgl": 0.6},
        {"pt": 51.0, "eta": -0.2, "phi": -1.3, "mass": 6.3, "btag": 0.88, "qgl": -1.0},
        {"pt": 40.7, "eta": 2.2, "phi": 1.9, "mass": 5.0, "btag": 0.30, "qgl": 0.1},
        {"pt": 33.3, "eta": -2.3, "phi": -0.1, "mass": 4.4, "btag": 0.70, "qgl": 0.9},
    ]
    lep = {"pt": 45.0, "eta": 0.9, "phi": -2.9, "mass": 0.105658}
    return jets, lep


def as_float32(event):
    """The event as the vectorised code sees it (float32 except the float64 pt)."""
    jets, lep = event
    f32 = lambda x: float(np.float32(x))  # noqa: E731
    return (
        [{k: (v if k == "pt" else f32(v)) for k, v in j.items()} for j in jets],
        {k: f32(v) for k, v in lep.items()},
    )


def test_hand_built_event_matches_plain_python():
    event = hand_built_event()
    jets, lep = to_arrays([event])
    got, counts = feat.permutation_features(jets, lep)
    assert counts.tolist() == [180]
    want = np.array(reference_features(*as_float32(event)))
    assert got.shape == want.shape == (180, 20)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # the first permutation is (W1, W2, b_had, b_lep) = (1, 0, 2, 3): spot-check by hand
    j, lp = as_float32(event)
    assert got[0, 1] == pytest.approx(math.hypot(j[1]["eta"] - j[0]["eta"], -3.05 - 3.0))
    assert got[0, 0] == pytest.approx(math.hypot(lp["eta"] - j[3]["eta"], lp["phi"] - j[3]["phi"]))
    assert list(got[0, 8:12]) == [j[1]["pt"], j[0]["pt"], j[2]["pt"], j[3]["pt"]]


def test_random_events_with_four_to_eight_jets():
    rng = np.random.Generator(np.random.Philox(7))
    events = []
    for _ in range(40):
        n = int(rng.integers(4, 9))
        jets = [
            {
                "pt": float(rng.uniform(30, 300)),
                "eta": float(rng.uniform(-2.4, 2.4)),
                "phi": float(rng.uniform(-np.pi, np.pi)),
                "mass": float(rng.uniform(2, 30)),
                "btag": float(rng.uniform(0, 1)),
                "qgl": float(rng.uniform(-1, 1)),
            }
            for _ in range(n)
        ]
        lep = {
            "pt": float(rng.uniform(30, 200)),
            "eta": float(rng.uniform(-2.1, 2.1)),
            "phi": float(rng.uniform(-np.pi, np.pi)),
            "mass": 0.000511,
        }
        events.append((jets, lep))
    jets, lep = to_arrays(events)
    got, counts = feat.permutation_features(jets, lep)
    want = [row for e in events for row in reference_features(*as_float32(e))]
    assert counts.tolist() == [len(perm.permutations(min(len(e[0]), 6))) for e in events]
    np.testing.assert_allclose(got, np.array(want), rtol=1e-12, atol=1e-9)
