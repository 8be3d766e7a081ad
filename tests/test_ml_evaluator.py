"""The exact BDT evaluators: scores bit-equal to xgboost's, the same best permutation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from reanimate.analyses.agc.ml import features as feat
from reanimate.analyses.agc.ml import forest, inference
from reanimate.analyses.agc.ml import histograms as mlh
from reanimate.errors import ReanimateError

FLAGSHIP = Path(__file__).resolve().parents[1] / "specs/models/agc-ttbar-jet-assignment/v1"
SCALE = np.array([1, 1, 1, 1, 50, 50, 80, 80, 60, 60, 60, 60] + [0.3] * 4 + [0.5] * 4)
CENTRE = np.array([2, 2, 2, 2, 150, 100, 200, 200, 100, 80, 80, 80] + [0.5] * 4 + [0] * 4)


def evaluators():
    out = ["xgboost"]
    if forest.kernels() is not None:
        out.append("numba")
    return out


def rng(seed: int):
    return np.random.Generator(np.random.Philox(seed))


def feature_rows(n: int, seed: int) -> np.ndarray:
    return (rng(seed).normal(size=(n, 20)) * SCALE + CENTRE).astype(np.float32)


def random_model(trees: int, depth: int, seed: int, base_score: float | None = None, **extra):
    """A binary:logistic booster on 20 features, trained with missing values (so that default
    directions differ from node to node)."""
    x = feature_rows(3000, seed)
    y = (x[:, 5] - 100) / 50 + 30 * (x[:, 1] - 2) / 3 + rng(seed + 1).normal(size=3000) > 0
    x[rng(seed + 2).random(x.shape) < 0.05] = np.nan
    params = {
        "objective": "binary:logistic", "max_depth": depth, "nthread": 1, "seed": seed,
        "eta": 0.3, "tree_method": "hist",
    }
    if base_score is not None:
        params["base_score"] = base_score
    params.update(extra)
    return xgb.train(params, xgb.DMatrix(x, label=y), trees)


def nasty_rows(booster, n: int, seed: int) -> np.ndarray:
    """Rows with values exactly at, just below and just above the model's split thresholds,
    NaNs, zeros of both signs, and plain values."""
    doc = forest.parse(bytes(booster.save_raw(raw_format="json")))
    split = doc.step == 1
    thresholds = doc.value[split]
    features = doc.feature[split]
    r = rng(seed)
    x = feature_rows(n, seed)
    at = x.copy()
    for k in range(20):  # a threshold of a split on feature k
        own = thresholds[features == k]
        if len(own):
            at[:, k] = own[r.integers(0, len(own), size=n)]
    u = r.random(x.shape)
    x = np.where(u < 0.25, at, x)
    x = np.where((u >= 0.25) & (u < 0.35), np.nextafter(at, np.float32(-np.inf)), x)
    x = np.where((u >= 0.35) & (u < 0.45), np.nextafter(at, np.float32(np.inf)), x)
    x = np.where((u >= 0.45) & (u < 0.5), np.nan, x)
    x[:, 0] = np.where(r.random(n) < 0.02, np.float32(-0.0), x[:, 0])
    return np.ascontiguousarray(x, dtype=np.float32)


def models():
    out = {
        "flagship_even": xgb.Booster(model_file=str(FLAGSHIP / "model_even.json")),
        "flagship_odd": xgb.Booster(model_file=str(FLAGSHIP / "model_odd.json")),
    }
    out["100x5"] = random_model(100, 5, 11)
    out["100x6"] = random_model(100, 6, 12, base_score=0.3)
    out["deep"] = random_model(10, 9, 13, min_child_weight=0)  # trees of more than 64 leaves
    return out


@pytest.fixture(scope="module")
def boosters():
    return models()


@pytest.mark.parametrize("name", ["flagship_even", "flagship_odd", "100x5", "100x6", "deep"])
@pytest.mark.parametrize("evaluator", evaluators())
def test_scores_equal_xgboost_bit_for_bit(boosters, name, evaluator):
    booster = boosters[name]
    x = nasty_rows(booster, 4001, seed=len(name))  # odd count: the kernel's 1-row tail
    want = booster.predict(xgb.DMatrix(x, missing=np.nan, nthread=1))
    s = forest.scorer(bytes(booster.save_raw(raw_format="json")), evaluator)
    assert s.evaluator == evaluator
    got = s.predict(x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    finite = np.nan_to_num(x, nan=1.0)  # the kernel's NaN-free path
    np.testing.assert_array_equal(s.predict(finite), booster.predict(xgb.DMatrix(finite)))
    # inf is not accepted by a DMatrix, but by inplace_predict
    x[::7, 3] = np.inf
    x[1::7, 4] = -np.inf
    np.testing.assert_array_equal(s.predict(x), booster.inplace_predict(x))


def kernels():
    """(evaluator, bit-vector kernel for best) combinations to test."""
    out = [("xgboost", False)]
    if "numba" in evaluators():
        out += [("numba", True), ("numba", False)]
    return out


@pytest.mark.parametrize("name", ["flagship_even", "100x5", "deep"])
@pytest.mark.parametrize(("evaluator", "bits"), kernels())
def test_best_is_the_first_highest_xgboost_score_ties_included(boosters, name, evaluator, bits):
    booster = boosters[name]
    r = rng(3)
    table = np.asarray(nasty_rows(booster, 40 * 6, seed=4), dtype=np.float64).reshape(40, -1)
    table[:3] = np.nan  # events with every feature missing: all permutations tie
    cols = r.integers(0, table.shape[1], size=(30, 20))
    table[5:, :] = np.where(r.random(table[5:].shape) < 0.9, np.nan_to_num(table[5:]), table[5:])
    cols[10] = cols[4]  # permutations with the same features: the same scores, ties
    cols[25] = cols[4]
    s = forest.scorer(bytes(booster.save_raw(raw_format="json")), evaluator)
    if evaluator == "numba":
        s.bits = bits
        assert (s.forest.qs is None) == (name == "deep")  # > 64 leaves: the walk only
    best, score = s.best(table, cols)
    rows = table[:, cols].astype(np.float32)  # (E, P, 20)
    want = booster.predict(xgb.DMatrix(rows.reshape(-1, 20))).reshape(40, 30)
    np.testing.assert_array_equal(best, np.argmax(want, axis=1))
    np.testing.assert_array_equal(score, want.max(axis=1))
    assert (best[:3] == 0).all()


def test_auto_takes_the_compiled_evaluator_when_it_can_and_falls_back(boosters):
    raw = bytes(boosters["flagship_even"].save_raw(raw_format="json"))
    assert forest.scorer(raw).evaluator == ("numba" if "numba" in evaluators() else "xgboost")
    x = np.random.Generator(np.random.Philox(1)).normal(size=(50, 4)).astype(np.float32)
    other = xgb.train({"objective": "reg:squarederror", "nthread": 1}, xgb.DMatrix(x, x[:, 0]), 3)
    raw_other = bytes(other.save_raw(raw_format="json"))
    assert forest.parse(raw_other) is None  # not binary:logistic: left to xgboost
    s = forest.scorer(raw_other)
    assert s.evaluator == "xgboost"
    np.testing.assert_array_equal(s.predict(x), other.predict(xgb.DMatrix(x)))
    with pytest.raises(ReanimateError, match="numba ML evaluator is not available"):
        forest.scorer(raw_other, "numba")
    with pytest.raises(ReanimateError, match="unknown ML evaluator"):
        forest.scorer(raw, "fast")
    with pytest.raises(ReanimateError, match="not an XGBoost model"):
        forest.validate(b"not a model")


def test_best_permutations_agree_between_evaluators(boosters):
    from test_ml_inference import arrays, random_events

    events = random_events(80, seed=5)
    jets, lep = arrays(events)
    numbers = np.arange(7, 87, dtype=np.uint64)
    even, odd = boosters["flagship_even"], boosters["flagship_odd"]
    results = {
        ev: inference.best_permutations(
            jets, lep, numbers, forest.scorer(even, ev), forest.scorer(odd, ev)
        )
        for ev in evaluators()
    }
    ref = results["xgboost"]
    for got in results.values():
        np.testing.assert_array_equal(got.index, ref.index)
        np.testing.assert_array_equal(got.score, ref.score)
        assert got.features.tobytes() == ref.features.tobytes()
    # the chosen features are the float64 features of that permutation, bit for bit
    rows, counts = feat.permutation_features(jets, lep)
    first = np.cumsum(counts) - counts
    assert ref.features.tobytes() == rows[first + ref.index].tobytes()
    # and the score is xgboost's on its float32 row
    model = np.where(numbers % 2 == 0, 1, 0)
    for i in range(len(numbers)):
        booster = (even, odd)[model[i]]
        own = rows[first[i] : first[i] + counts[i]].astype(np.float32)
        want = booster.predict(xgb.DMatrix(own))
        assert ref.index[i] == np.argmax(want) and ref.score[i] == want.max()


def test_vectorised_feature_histograms_equal_boost_histogram_fills():
    r = rng(5)
    e = 5000
    low, high = np.array(feat.BIN_LOW, float), np.array(feat.BIN_HIGH, float)
    x = low + (high - low) * r.uniform(-0.2, 1.2, size=(e, 20))
    edges = np.stack([mlh.edges(k) for k in range(20)], axis=1)
    at = edges[r.integers(0, 26, size=(e, 20)), np.arange(20)]
    u = r.random((e, 20))
    x = np.where(u < 0.2, at, x)
    x = np.where((u >= 0.2) & (u < 0.3), np.nextafter(at, -np.inf), x)
    x = np.where((u >= 0.3) & (u < 0.4), np.nextafter(at, np.inf), x)
    x[r.random((e, 20)) < 0.01] = np.nan
    x[r.random((e, 20)) < 0.005] = np.inf
    x[r.random((e, 20)) < 0.005] = -np.inf
    weights = {"nominal": r.uniform(0.1, 3, e), "flat": np.full(e, 2.5)}
    got = mlh.fill_features(x, weights)
    for variation, w in weights.items():
        for k in range(20):
            assert got[variation][k].tobytes() == mlh.fill(k, x[:, k], w).tobytes()
