"""Inference: AGC-format JSON models, best permutation with the parity swap, pinning, filler."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import xgboost as xgb
from ml_helpers import generate_ttbar, reference_features

from reanimate.analyses.agc.ml import features as feat
from reanimate.analyses.agc.ml import histograms as mlh
from reanimate.analyses.agc.ml import inference, pinning, stage
from reanimate.errors import DigestMismatch
from reanimate.hashing import sha256_file


def tiny_model(path, seed: int):
    """An XGBoost model on 20 unnamed features, trained on random data, saved as JSON."""
    rng = np.random.Generator(np.random.Philox(seed))
    x = rng.normal(size=(400, 20)) * [
        1,
        1,
        1,
        1,
        50,
        50,
        80,
        80,
        60,
        60,
        60,
        60,
        0.3,
        0.3,
        0.3,
        0.3,
        0.5,
        0.5,
        0.5,
        0.5,
    ]
    y = x[:, 5] + 30 * x[:, 1] * (seed % 2 * 2 - 1) + rng.normal(size=400) * 20 > 0
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "seed": seed},
        xgb.DMatrix(x.astype(np.float32), label=y),
        12,
    )
    booster.save_model(str(path))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    even, odd = tiny_model(d / "model_even.json", 2), tiny_model(d / "model_odd.json", 3)
    return {"model_even": (even, sha256_file(even)), "model_odd": (odd, sha256_file(odd))}


def random_events(n: int, seed: int = 11):
    rng = np.random.Generator(np.random.Philox(seed))
    events = []
    for _ in range(n):
        k = int(rng.integers(4, 9))
        jets = [
            {
                "pt": float(rng.uniform(30, 250)),
                "eta": float(np.float32(rng.uniform(-2.4, 2.4))),
                "phi": float(np.float32(rng.uniform(-3.14, 3.14))),
                "mass": float(np.float32(rng.uniform(2, 25))),
                "btag": float(np.float32(rng.uniform(0, 1))),
                "qgl": float(np.float32(rng.uniform(-1, 1))),
            }
            for _ in range(k)
        ]
        lep = {
            f: float(np.float32(v))
            for f, v in zip(
                ("pt", "eta", "phi", "mass"),
                (rng.uniform(30, 150), rng.uniform(-2, 2), rng.uniform(-3, 3), 0.105),
                strict=True,
            )
        }
        events.append((jets, lep))
    return events


def arrays(events):
    jets = feat.Jets(
        **{f: np.array([j[f] for e in events for j in e[0]]) for f in feat.JET_FIELDS},
        counts=[len(e[0]) for e in events],
    )
    lep = feat.Leptons(*(np.array([e[1][f] for e in events]) for f in feat.LEPTON_FIELDS))
    return jets, lep


def test_agc_json_model_loads_verified_and_reproduces_its_scores(models):
    path, digest = models["model_even"]
    doc = json.loads(path.read_text())
    assert doc["learner"]["learner_model_param"]["num_feature"] == "20"
    assert doc["learner"]["feature_names"] == []  # unnamed features f0..f19
    booster = pinning.load_booster(path, digest)
    x = np.random.Generator(np.random.Philox(5)).normal(size=(64, 20)) * 40
    want = xgb.Booster(model_file=str(path)).predict(xgb.DMatrix(x.astype(np.float32)))
    np.testing.assert_array_equal(inference.score(booster, x), want.astype(np.float64))


def test_tampered_model_is_refused_naming_both_digests(models, tmp_path):
    path, digest = models["model_odd"]
    tampered = tmp_path / "model_odd.json"
    tampered.write_text(path.read_text().replace('"base_score"', '"base_score" ', 1))
    actual = sha256_file(tampered)
    for load in (
        lambda: pinning.load_booster(tampered, digest),
        lambda: inference.MLFiller.from_files(
            models["model_even"][0], models["model_even"][1], tampered, digest
        ),
        lambda: pinning.verify_file(tampered, digest),
    ):
        with pytest.raises(DigestMismatch) as err:
            load()
        assert digest in str(err.value) and actual in str(err.value)
        assert str(tampered) in str(err.value)


def test_best_permutation_with_parity_swap_matches_a_per_event_loop(models):
    events = random_events(60)
    jets, lep = arrays(events)
    event_numbers = np.arange(1000, 1060, dtype=np.uint64)
    even_model = pinning.load_booster(*models["model_even"])
    odd_model = pinning.load_booster(*models["model_odd"])
    best = inference.best_permutations(jets, lep, event_numbers, even_model, odd_model)
    for i, (jet_list, lepton) in enumerate(events):
        rows = np.array(reference_features(jet_list, lepton))
        model = odd_model if event_numbers[i] % 2 == 0 else even_model  # the swap
        scores = model.predict(xgb.DMatrix(rows.astype(np.float32)))
        k = int(np.argmax(scores))
        assert best.index[i] == k
        assert best.score[i] == pytest.approx(float(scores[k]), abs=1e-7)
        np.testing.assert_allclose(best.features[i], rows[k], rtol=1e-12, atol=1e-9)
    # the swap matters: scoring with the same-parity model picks other permutations somewhere
    same = inference.best_permutations(jets, lep, event_numbers + 1, even_model, odd_model)
    assert (same.index != best.index).any()


def test_filler_in_the_histogram_stage(models, tmp_path):
    from reanimate.analyses.agc import processing

    samples = generate_ttbar(tmp_path / "samples", 3000, seed=5)
    filler = stage.filler(
        models["model_even"][0],
        models["model_odd"][0],
        sha256_even=models["model_even"][1],
        sha256_odd=models["model_odd"][1],
    )
    filler = pickle.loads(pickle.dumps(filler))  # as shipped to a Dask worker
    task = processing.ChunkTask(
        "ttbar", "nominal", str(samples / "ttbar__nominal__000.root"), 0, 3000, 2.5, 42
    )
    plain, _ = processing.process_chunk(task)
    hists, _ = stage.chunk_function(filler)(task)
    regular, ml = stage.split(hists)
    assert regular.keys() == plain.keys()
    assert all(np.array_equal(regular[k], plain[k]) for k in plain)
    variations = [k[len("4j2b_ttbar") :] for k in plain if k.startswith("4j2b_ttbar")]
    assert len(ml) == 20 * len(variations) and len(variations) == 11
    for name in feat.FEATURE_NAMES:
        for v in variations:  # same events and weights as the 4j2b histogram, flow included
            assert ml[f"{name}_ttbar{v}"][0].sum() == pytest.approx(
                plain[f"4j2b_ttbar{v}"][0].sum(), rel=1e-12
            )
    assert ml["mass_w1w2_ttbar"][0][1:-1].sum() > 0
    out = tmp_path / "histograms_ml.root"
    count = stage.write(out, ml)
    first = out.read_bytes()
    stage.write(out, dict(reversed(list(ml.items()))))
    assert out.read_bytes() == first  # byte-deterministic
    import uproot

    with uproot.open(out) as f:
        assert len(f.keys()) == count == 220
        h = f["deltar_leptonbtoplep_ttbar_pt_res_up"]
        np.testing.assert_allclose(h.axis().edges(), mlh.edges(0))
        want = ml["deltar_leptonbtoplep_ttbar_pt_res_up"][0]
        np.testing.assert_allclose(h.values(flow=True), want)
