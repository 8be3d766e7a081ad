"""BDT inference in the histogram stage: the best jet–parton permutation of each 4j2b event.

Every permutation of the first min(n, 6) selected jets is scored; even event numbers are scored
by the model trained on *odd* events and vice versa (each event is scored by the model that did
not see it, as in the AGC); the permutation with the highest P(correct) (the first on ties) gives
the event's 20 features, which fill 25-bin histograms (:mod:`reanimate.analyses.agc.ml.histograms`).
Scores are XGBoost's, bit for bit, from the fastest exact evaluator available
(:mod:`reanimate.analyses.agc.ml.forest`: a compiled walk of the trees, or XGBoost itself).

:class:`MLFiller` plugs into the histogram stage's extra-filler hook
(:mod:`reanimate.analyses.agc.processing`): it carries the two pinned model files as bytes
(verified against their sha256 once, when built), so it pickles to Dask workers anywhere.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np

from reanimate.analyses.agc.ml import features as feat
from reanimate.analyses.agc.ml import forest, histograms
from reanimate.analyses.agc.ml.permutations import MAX_JETS, permutations
from reanimate.analyses.agc.ml.pinning import booster_from_bytes
from reanimate.analyses.agc.ml.selection import (
    INFERENCE_BRANCHES,
    chunk_leptons,
    flat_qgl,
    selection_jets,
)
from reanimate.errors import DigestMismatch, ReanimateError

REGION = "4j2b"


@dataclass
class BestPermutation:
    features: np.ndarray  # (E, 20) float64
    index: np.ndarray  # (E,) index of the chosen permutation in permutations(min(n, 6))
    score: np.ndarray  # (E,) its P(correct)


def score(booster, features: np.ndarray) -> np.ndarray:
    """P(correct) for rows of (N, 20) features (fed to the model as float32)."""
    if len(features) == 0:
        return np.zeros(0)
    x = np.ascontiguousarray(features, dtype=np.float32)
    return np.asarray(forest.scorer(booster).predict(x), dtype=np.float64)


#: Permutation rows per scoring call at most (bounded memory on large chunks).
BATCH_ROWS = 1 << 18


def best_permutations(
    jets: feat.Jets,
    lepton: feat.Leptons,
    event: np.ndarray,
    model_even,
    model_odd,
    max_jets: int = MAX_JETS,
) -> BestPermutation:
    """Best permutation per event; even events use ``model_odd``, odd events ``model_even``.

    Events are scored model by model and jet count by jet count: the features of a group are
    computed once per jet, pair and triple (:meth:`~features.Group.table`), and the scorer
    (:mod:`~reanimate.analyses.agc.ml.forest`) gathers each permutation's float32 row from them
    and keeps the first permutation with the highest P(correct), exactly as an argmax over
    XGBoost's scores; the chosen permutations' float64 features come from the same table.
    """
    n = len(jets.counts)
    out = BestPermutation(np.zeros((n, feat.N_FEATURES)), np.zeros(n, np.int64), np.zeros(n))
    if n == 0:
        return out
    scorers = (forest.scorer(model_even), forest.scorer(model_odd))
    used = np.minimum(jets.counts, max_jets)
    odd = (np.asarray(event).astype(np.uint64) % np.uint64(2)).astype(bool)
    for m, of_model in ((0, odd), (1, ~odd)):  # odd events: model_even
        for k in np.unique(used[of_model]):
            k = int(k)
            events = np.flatnonzero(of_model & (used == k))
            step = max(1, BATCH_ROWS // len(permutations(k)))
            for first in range(0, len(events), step):
                ev = events[first : first + step]
                g = feat.make_group(*feat.group_fields(jets, lepton, ev, k))
                best, score = scorers[m].best(g.table(), feat.columns(k))
                out.index[ev] = best
                out.score[ev] = score
                out.features[ev] = feat.chosen_features(g, best)
    return out


def best_features(
    jets: feat.Jets, lepton: feat.Leptons, event: np.ndarray, model_even, model_odd
) -> np.ndarray:
    """(E, 20) features of each event's best permutation (parity swap applied)."""
    return best_permutations(jets, lepton, event, model_even, model_odd).features


def fill_histograms(
    features: np.ndarray, process: str, weights: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The 20 partial histograms per weight variation: ``{feature}_{process}[_{variation}]``."""
    out = {}
    for variation, hists in histograms.fill_features(features, weights).items():
        for name, h in zip(feat.FEATURE_NAMES, hists, strict=True):
            out[histograms.histogram_name(name, process, variation)] = h
    return out


def _read_verified(path: str | Path, sha256: str) -> bytes:
    import hashlib

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ReanimateError(f"{path}: cannot read the model: {exc.strerror}") from None
    actual = hashlib.sha256(raw).hexdigest()
    if actual != sha256.lower():
        raise DigestMismatch(
            f"{path}: sha256 {actual} differs from the pinned {sha256} "
            "(refusing to load a model that is not the pinned one)"
        )
    return raw


class MLFiller:
    """Extra filler of the histogram stage: the 20 ML histograms of every 4j2b variation.

    ``MLFiller.from_files(model_even, sha_even, model_odd, sha_odd)`` (digests from the pin /
    lock) or ``MLFiller.from_pin(pin_dict)``. Picklable; the scorers (``evaluator``: see
    :mod:`reanimate.analyses.agc.ml.forest`) are rebuilt lazily per process.
    """

    branches: tuple[str, ...] = INFERENCE_BRANCHES
    needs_events = False  # reads the chunk's arrays through the selection, not the region's

    def __init__(
        self, model_even: bytes, model_odd: bytes, nthread: int = 1, evaluator: str = "auto"
    ) -> None:
        if evaluator not in forest.EVALUATORS:
            raise ReanimateError(
                f"unknown ML evaluator {evaluator!r} (one of {', '.join(forest.EVALUATORS)})"
            )
        self.raw = {"model_even": bytes(model_even), "model_odd": bytes(model_odd)}
        self.nthread = nthread
        self.evaluator = evaluator
        self._scorers = None
        self._chunk = None
        for raw in self.raw.values():  # fail early on a file that is not an XGBoost model
            forest.validate(raw)

    @classmethod
    def from_files(
        cls,
        model_even: str | Path,
        sha256_even: str,
        model_odd: str | Path,
        sha256_odd: str,
        nthread: int = 1,
        evaluator: str = "auto",
    ) -> MLFiller:
        return cls(
            _read_verified(model_even, sha256_even),
            _read_verified(model_odd, sha256_odd),
            nthread,
            evaluator,
        )

    @classmethod
    def from_pin(cls, pin: Mapping, base: str | Path = ".", nthread: int = 1) -> MLFiller:
        files = pin["files"]
        base = Path(base)
        return cls.from_files(
            base / files["model_even"]["path"],
            files["model_even"]["sha256"],
            base / files["model_odd"]["path"],
            files["model_odd"]["sha256"],
            nthread,
        )

    def __getstate__(self) -> dict:
        return {
            "raw": self.raw,
            "nthread": self.nthread,
            "evaluator": self.evaluator,
            "_scorers": None,
            "_chunk": None,
        }

    def __setstate__(self, state: dict) -> None:
        state.setdefault("evaluator", "auto")
        state.pop("_boosters", None)
        state.setdefault("_scorers", None)
        self.__dict__.update(state)

    def scorers(self) -> tuple[forest.Scorer, forest.Scorer]:
        """(model_even, model_odd) scorers of this process."""
        if self._scorers is None:
            self._scorers = tuple(
                forest.scorer(self.raw[r], self.evaluator, self.nthread)
                for r in ("model_even", "model_odd")
            )
        return self._scorers

    def boosters(self):
        """The two models as ``xgboost.Booster`` (imports XGBoost; the stage does not need it)."""
        return tuple(
            booster_from_bytes(self.raw[r], self.nthread) for r in ("model_even", "model_odd")
        )

    def _chunk_inputs(self, chunk):
        """Per chunk, once for all its variations: flat Jet_qgl, leptons, event numbers."""
        cached = getattr(self, "_chunk", None)
        if cached is not None and cached[0]() is chunk:
            return cached[1]
        array = chunk.array
        leptons, _ = chunk_leptons(array)
        inputs = (flat_qgl(array), leptons, ak.to_numpy(array.event))
        self._chunk = (weakref.ref(chunk), inputs)  # no reference kept to the chunk itself
        return inputs

    def __call__(
        self, process: str, selection, events: ak.Array, weights: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """The ML histograms of one region/variation (``events``: the region's events)."""
        if selection.region != REGION or not selection.event_mask.any():
            return {}
        qgl, leptons, numbers = self._chunk_inputs(selection.events)
        mask = selection.event_mask
        lepton = feat.Leptons(*(getattr(leptons, f)[mask] for f in feat.LEPTON_FIELDS))
        jets = selection_jets(selection, qgl)
        model_even, model_odd = self.scorers()
        best = best_features(jets, lepton, numbers[mask], model_even, model_odd)
        return fill_histograms(best, process, weights)
