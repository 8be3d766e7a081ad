"""BDT inference in the histogram stage: the best jet–parton permutation of each 4j2b event.

Every permutation of the first min(n, 6) selected jets is scored; even event numbers are scored
by the model trained on *odd* events and vice versa (each event is scored by the model that did
not see it, as in the AGC); the permutation with the highest P(correct) (the first on ties) gives
the event's 20 features, which fill 25-bin histograms (:mod:`reanimate.analyses.agc.ml.histograms`).

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
from reanimate.analyses.agc.ml import histograms
from reanimate.analyses.agc.ml.permutations import MAX_JETS
from reanimate.analyses.agc.ml.pinning import booster_from_bytes
from reanimate.analyses.agc.ml.selection import INFERENCE_BRANCHES, chunk_leptons, selection_jets
from reanimate.errors import DigestMismatch, ReanimateError

REGION = "4j2b"


@dataclass
class BestPermutation:
    features: np.ndarray  # (E, 20) float64
    index: np.ndarray  # (E,) index of the chosen permutation in permutations(min(n, 6))
    score: np.ndarray  # (E,) its P(correct)


def score(booster, features: np.ndarray) -> np.ndarray:
    """P(correct) for rows of (N, 20) features (fed to XGBoost as float32)."""
    if len(features) == 0:
        return np.zeros(0)
    x = np.ascontiguousarray(features, dtype=np.float32)
    return np.asarray(booster.inplace_predict(x), dtype=np.float64)


def best_permutations(
    jets: feat.Jets,
    lepton: feat.Leptons,
    event: np.ndarray,
    model_even,
    model_odd,
    max_jets: int = MAX_JETS,
) -> BestPermutation:
    """Best permutation per event; even events use ``model_odd``, odd events ``model_even``."""
    n = len(jets.counts)
    out = BestPermutation(np.zeros((n, feat.N_FEATURES)), np.zeros(n, np.int64), np.zeros(n))
    even = np.asarray(event).astype(np.uint64) % np.uint64(2) == 0
    for ev, group in feat.iter_groups(jets, lepton, max_jets):
        e, p = group.shape[:2]
        flat = group.reshape(e * p, feat.N_FEATURES)
        scores = np.empty(e * p)
        rows_even = np.repeat(even[ev], p)
        scores[rows_even] = score(model_odd, flat[rows_even])
        scores[~rows_even] = score(model_even, flat[~rows_even])
        scores = scores.reshape(e, p)
        best = np.argmax(scores, axis=1)
        out.index[ev] = best
        out.score[ev] = scores[np.arange(e), best]
        out.features[ev] = group[np.arange(e), best]
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
    for variation, w in weights.items():
        for k, name in enumerate(feat.FEATURE_NAMES):
            out[histograms.histogram_name(name, process, variation)] = histograms.fill(
                k, features[:, k], w
            )
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
    lock) or ``MLFiller.from_pin(pin_dict)``. Picklable; boosters are rebuilt lazily per process.
    """

    branches: tuple[str, ...] = INFERENCE_BRANCHES

    def __init__(self, model_even: bytes, model_odd: bytes, nthread: int = 1) -> None:
        self.raw = {"model_even": bytes(model_even), "model_odd": bytes(model_odd)}
        self.nthread = nthread
        self._boosters = None
        self._chunk = None
        self.boosters()  # fail early on a file that is not an XGBoost model

    @classmethod
    def from_files(
        cls,
        model_even: str | Path,
        sha256_even: str,
        model_odd: str | Path,
        sha256_odd: str,
        nthread: int = 1,
    ) -> MLFiller:
        return cls(
            _read_verified(model_even, sha256_even), _read_verified(model_odd, sha256_odd), nthread
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
        return {"raw": self.raw, "nthread": self.nthread, "_boosters": None, "_chunk": None}

    def boosters(self):
        if self._boosters is None:
            self._boosters = tuple(
                booster_from_bytes(self.raw[r], self.nthread) for r in ("model_even", "model_odd")
            )
        return self._boosters

    def _chunk_inputs(self, chunk):
        """Per chunk, once for all its variations: flat Jet_qgl, leptons, event numbers."""
        cached = getattr(self, "_chunk", None)
        if cached is not None and cached[0]() is chunk:
            return cached[1]
        array = chunk.array
        leptons, _ = chunk_leptons(array)
        inputs = (ak.to_numpy(ak.flatten(array.Jet_qgl, axis=1)), leptons, ak.to_numpy(array.event))
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
        model_even, model_odd = self.boosters()
        best = best_features(jets, lepton, numbers[mask], model_even, model_odd)
        return fill_histograms(best, process, weights)
