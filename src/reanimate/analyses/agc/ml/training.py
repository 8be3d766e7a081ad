"""Training of the two jet–parton assignment BDTs (docs/agc-analysis.md §9), without MLflow.

Training set: ttbar nominal events in 4j2b (the histogram stage's selection), leading four
selected jets, truth labels from :mod:`reanimate.analyses.agc.ml.truth`, events whose labels
sum to 48. Each event gives its 12 permutations (target 1 for the correct one). Two XGBoost
``binary:logistic`` boosters: ``model_even`` trained on even event numbers, ``model_odd`` on
odd ones; each is evaluated on the other parity (the events it will score in the analysis).

Hyper-parameters come from a small grid (n_estimators × max_depth, one learning rate), chosen on
a validation quarter of each training parity (``(event // 2) % 4 == 0``) by the fraction of
events fully correct (then ROC AUC, then grid order); the chosen point is retrained on the whole
parity. Deterministic: ``hist`` trees, no row/column sampling, fixed seed, one thread
(:data:`NTHREAD`), grid points independent of each other and of their order.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import awkward as ak
import numpy as np

from reanimate.analyses.agc.ml import features as feat
from reanimate.analyses.agc.ml import permutations as perm
from reanimate.analyses.agc.ml.truth import jet_labels
from reanimate.errors import ReanimateError

NTHREAD = 1
N_PERMS = len(perm.permutations(4))
VALIDATION_FOLDS = 4


@dataclass(frozen=True)
class HyperParams:
    n_estimators: int
    max_depth: int
    learning_rate: float

    def xgb_params(self, seed: int) -> dict:
        return {
            "objective": "binary:logistic",
            "eval_metric": "logloss",
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "nthread": NTHREAD,
            "seed": seed,
        }


def grid(
    n_estimators: Sequence[int], max_depth: Sequence[int], learning_rate: float
) -> list[HyperParams]:
    return [HyperParams(n, d, learning_rate) for n, d in itertools.product(n_estimators, max_depth)]


@dataclass
class TrainingSet:
    """Per event: number, truth labels of its 4 jets, index of the correct permutation; per
    permutation (12 per event, event-major): the 20 features and the 0/1 target."""

    event: np.ndarray
    labels: np.ndarray
    correct: np.ndarray
    features: np.ndarray
    target: np.ndarray
    counts: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.event)

    def subset(self, mask: np.ndarray) -> TrainingSet:
        rows = np.repeat(mask, N_PERMS)
        return TrainingSet(
            self.event[mask],
            self.labels[mask],
            self.correct[mask],
            self.features[rows],
            self.target[rows],
            dict(self.counts),
        )

    @staticmethod
    def concatenate(parts: Iterable[TrainingSet]) -> TrainingSet:
        parts = list(parts)
        counts: dict = {}
        for p in parts:
            for k, v in p.counts.items():
                counts[k] = counts.get(k, 0) + v
        if not parts:
            return TrainingSet(
                np.zeros(0, np.uint64),
                np.zeros((0, 4), np.int64),
                np.zeros(0, np.int64),
                np.zeros((0, feat.N_FEATURES)),
                np.zeros(0, np.int8),
                counts,
            )
        return TrainingSet(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("event", "labels", "correct", "features", "target")
            ),
            counts,
        )


@dataclass
class MatchedEvents:
    """Matched 4j2b events: numbers, leading four jets, lepton, truth labels, correct index."""

    event: np.ndarray
    jets: feat.Jets
    lepton: feat.Leptons
    labels: np.ndarray
    correct: np.ndarray
    counts: dict


def matched_events(events: ak.Array) -> MatchedEvents:
    """The 4j2b events of a ttbar chunk whose leading four jets match 24, 24, 6, −6."""
    from reanimate.analyses.agc.ml.selection import training_inputs

    mask, jets, lepton = training_inputs(events)
    selected = events[mask]
    idx = jets.starts[:, None] + np.arange(4)[None, :]
    lead = {f: getattr(jets, f)[idx] for f in feat.JET_FIELDS}
    genpart = {
        f: selected[f"GenPart_{f}"]
        for f in ("pdgId", "genPartIdxMother", "statusFlags", "eta", "phi")
    }
    labels = jet_labels(genpart, lead["eta"], lead["phi"])
    correct = perm.correct_permutation(labels)
    keep = (labels.sum(axis=1) == 48) & (correct >= 0)
    return MatchedEvents(
        event=ak.to_numpy(selected.event)[keep].astype(np.uint64),
        jets=feat.Jets(
            **{f: v[keep].ravel() for f, v in lead.items()}, counts=np.full(int(keep.sum()), 4)
        ),
        lepton=feat.Leptons(*(np.asarray(getattr(lepton, f))[keep] for f in feat.LEPTON_FIELDS)),
        labels=labels[keep],
        correct=correct[keep],
        counts={
            "events_read": len(events),
            "events_4j2b": int(mask.sum()),
            "events_matched": int(keep.sum()),
        },
    )


def training_set(events: ak.Array) -> TrainingSet:
    """Training examples of a chunk of ttbar events (selection, ML and GenPart branches)."""
    m = matched_events(events)
    features, _ = feat.permutation_features(m.jets, m.lepton, max_jets=4)
    target = (np.arange(N_PERMS)[None, :] == m.correct[:, None]).ravel().astype(np.int8)
    return TrainingSet(m.event, m.labels, m.correct, features, target, m.counts)


def fit(data: TrainingSet, params: HyperParams, seed: int):
    """One booster on ``data`` (20 unnamed features f0..f19)."""
    import xgboost as xgb

    if len(data) == 0:
        raise ReanimateError("no training events (no matched ttbar events in 4j2b)")
    dtrain = xgb.DMatrix(data.features.astype(np.float32), label=data.target, nthread=NTHREAD)
    return xgb.train(params.xgb_params(seed), dtrain, num_boost_round=params.n_estimators)


def predict(booster, features: np.ndarray, trees: int | None = None) -> np.ndarray:
    """P(correct) for each row of (N, 20) features (float32 in, float64 out).

    With `trees`, the booster's first `trees` trees only: exactly the scores of a booster
    trained for that many rounds, as boosting with no sampling grows the same trees first.
    """
    if len(features) == 0:
        return np.zeros(0)
    x = np.ascontiguousarray(features, dtype=np.float32)
    rounds = {} if trees is None else {"iteration_range": (0, trees)}
    return np.asarray(booster.inplace_predict(x, **rounds), dtype=np.float64)


def roc_auc(target: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney, ties count one half); nan with one class only."""
    from scipy.stats import rankdata

    target = np.asarray(target).astype(bool)
    n_pos, n_neg = int(target.sum()), int((~target).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[target].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def random_fractions() -> dict[str, float]:
    """Expected fractions when one of the 12 permutations is chosen uniformly at random."""
    return {
        "random_fraction_events_correct": 1.0 / N_PERMS,
        "random_fraction_jets_correct": float(perm.evaluation_matrix(4).mean()),
    }


def evaluate(scores: np.ndarray, data: TrainingSet) -> dict[str, float]:
    """Permutation-level accuracy and ROC AUC, event-level fractions of correct assignments."""
    if len(data) == 0:
        return {}
    best = scores.reshape(-1, N_PERMS).argmax(axis=1)
    return {
        "accuracy": float(((scores > 0.5) == data.target.astype(bool)).mean()),
        "roc_auc": roc_auc(data.target, scores),
        "fraction_jets_correct": float(perm.evaluation_matrix(4)[best, data.correct].mean()),
        "fraction_events_correct": float((best == data.correct).mean()),
        **random_fractions(),
    }


@dataclass
class TrainingResult:
    model_even: object
    model_odd: object
    chosen: HyperParams
    metrics: dict
    grid: list[dict]
    counts: dict


def _select_key(entry: dict) -> tuple:
    m = entry["validation"]
    auc = m.get("roc_auc", float("nan"))
    return (
        -m.get("fraction_events_correct", 0.0),
        -(0.0 if np.isnan(auc) else auc),
        entry["index"],
    )


def train(
    data: TrainingSet,
    hyper_grid: Sequence[HyperParams],
    seed: int,
    log: Callable[[str], None] = lambda _: None,
) -> TrainingResult:
    """Grid search on validation folds, then the two final boosters and held-out metrics."""
    even = data.event % 2 == 0
    parts = {"even": data.subset(even), "odd": data.subset(~even)}
    for name, part in parts.items():
        if len(part) == 0:
            raise ReanimateError(
                f"no matched ttbar 4j2b events with {name} event numbers; "
                "use more events (--max_events)"
            )
    # one booster per parity and (depth, rate), with the most trees of the grid: the points
    # with fewer trees are scored with its first trees (the same scores as their own boosters)
    most: dict[tuple, int] = {}
    for hp in hyper_grid:
        key = (hp.max_depth, hp.learning_rate)
        most[key] = max(most.get(key, 0), hp.n_estimators)
    folds = {}
    for name, part in parts.items():
        val = (part.event // 2) % VALIDATION_FOLDS == 0
        folds[name] = part.subset(~val), part.subset(val)
    boosters: dict[tuple, object] = {}
    entries = []
    for i, hp in enumerate(hyper_grid):
        scores, targets = [], []
        for name, (train_part, val_part) in folds.items():
            if len(val_part) == 0 or len(train_part) == 0:
                continue
            key = (hp.max_depth, hp.learning_rate, name)
            if key not in boosters:
                grown = HyperParams(most[key[:2]], hp.max_depth, hp.learning_rate)
                boosters[key] = fit(train_part, grown, seed)
            scores.append(predict(boosters[key], val_part.features, trees=hp.n_estimators))
            targets.append(val_part)
        metrics = (
            evaluate(np.concatenate(scores), TrainingSet.concatenate(targets)) if scores else {}
        )
        entries.append(
            {
                "index": i,
                "n_estimators": hp.n_estimators,
                "max_depth": hp.max_depth,
                "learning_rate": hp.learning_rate,
                "validation": metrics,
            }
        )
        log(
            f"grid {i + 1}/{len(hyper_grid)}: n_estimators={hp.n_estimators} "
            f"max_depth={hp.max_depth}: validation fraction of events correct "
            f"{metrics.get('fraction_events_correct', float('nan')):.3f}"
        )
    chosen = hyper_grid[min(entries, key=_select_key)["index"]]
    model_even = fit(parts["even"], chosen, seed)
    model_odd = fit(parts["odd"], chosen, seed)
    # each model scores the other parity, as in the analysis
    held_even = evaluate(predict(model_even, parts["odd"].features), parts["odd"])
    held_odd = evaluate(predict(model_odd, parts["even"].features), parts["even"])
    scores = np.concatenate(
        [predict(model_odd, parts["even"].features), predict(model_even, parts["odd"].features)]
    )
    combined = evaluate(scores, TrainingSet.concatenate([parts["even"], parts["odd"]]))
    counts = dict(data.counts, train_even=len(parts["even"]), train_odd=len(parts["odd"]))
    metrics = dict(combined, model_even_on_odd=held_even, model_odd_on_even=held_odd)
    return TrainingResult(model_even, model_odd, chosen, metrics, entries, counts)
