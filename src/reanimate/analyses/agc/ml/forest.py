"""Exact scoring of the BDT: XGBoost's own float32 arithmetic, without XGBoost where possible.

:func:`scorer` turns a model (an ``xgboost.Booster``, the bytes of an XGBoost JSON model, or
a :class:`Scorer`) into an object whose ``predict(x)`` returns, for C-contiguous float32 rows
``x`` (N, 20), the float32 probabilities that ``Booster.predict`` gives on the same rows, bit for
bit. Two evaluators:

* ``numba``: the trees of the JSON model as flat arrays, evaluated by compiled kernels (numba,
  when it is installed) with XGBoost's arithmetic: left if the float32 value is ``< threshold``,
  missing (NaN) values the node's default way; leaf values summed in float32 in tree order onto
  the base margin; XGBoost's float32 sigmoid ``1 / (expf(min(-m, 88.7)) + 1 + 1e-16)`` with
  the C library's ``expf`` (the one XGBoost calls; a self-check against ``ctypes``' guards it).
  :meth:`Scorer.best` (all permutations of a group of events) uses a bit-vector kernel
  (QuickScorer: per split one vectorised pass over an event's rows) for trees of at most 64
  leaves, else a branch-free walk of four rows at once. XGBoost is not imported (~1.4 s of CPU
  a process); numba starts in ~0.8 s of CPU with its on-disk cache (``NUMBA_CACHE_DIR``, else
  ``__pycache__`` or ``~/.cache/numba``), ~2.4 s when it compiles the kernels.
* ``xgboost``: ``Booster.inplace_predict`` (no copy of the float32 rows).

``auto`` (the default) takes ``numba`` for the models it handles (binary:logistic gbtree with
numerical splits, one target) when numba is importable, else ``xgboost``.
"""

from __future__ import annotations

import json
import math
import weakref
from dataclasses import dataclass

import numpy as np

from reanimate.errors import ReanimateError

EVALUATORS = ("auto", "numba", "xgboost")
# XGBoost's sigmoid constants (src/common/math.h), as float32
_ONE = np.float32(1.0)
_EPS = np.float32(1e-16)
_CAP = np.float32(88.7)


@dataclass(frozen=True)
class Forest:
    """Trees as flat arrays over all nodes; a leaf is its own child with ``step`` 0."""

    base_score: float  # probability; the base margin is logit(base_score) in float32
    roots: np.ndarray  # (T,) uint32 root node of each tree
    depths: np.ndarray  # (T,) uint32 depth of each tree (steps from the root to its deepest leaf)
    child: np.ndarray  # (nodes,) uint32 left child (right = left + 1), or the leaf itself
    step: np.ndarray  # (nodes,) uint32 1 at a split, 0 at a leaf
    feature: np.ndarray  # (nodes,) uint32 split feature (0 at a leaf)
    value: np.ndarray  # (nodes,) float32 split threshold, or the leaf value
    default_right: np.ndarray  # (nodes,) uint32 1 where missing values go right
    num_feature: int
    #: The same trees for the bit-vector kernel (None if a tree has more than 64 leaves): per
    #: tree its splits (``qs_start``) and leaves (``leaf_start``, left to right); going right
    #: at a split clears the leaves of its left subtree (``qs_mask``), and the row's leaf is
    #: the leftmost leaf left (QuickScorer, Lucchese et al. 2015).
    qs: dict | None = None


def parse(raw: bytes) -> Forest | None:
    """The forest of an XGBoost JSON model, or None if this evaluator does not handle it."""
    try:
        doc = json.loads(raw)
        learner = doc["learner"]
        params = learner["learner_model_param"]
        booster = learner["gradient_booster"]
        if (
            learner["objective"]["name"] != "binary:logistic"
            or booster["name"] != "gbtree"
            or str(params.get("num_class", "0")) != "0"
            or str(params.get("num_target", "1")) != "1"
        ):
            return None
        base = [float(v) for v in str(params["base_score"]).strip("[]").split(",")]
        model = booster["model"]
        trees = model["trees"]
        if len(base) != 1 or any(int(i) != 0 for i in model.get("tree_info", [])):
            return None
        return _flatten(base[0], trees, int(params["num_feature"]))
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError):
        return None


def _flatten(base_score: float, trees: list, num_feature: int) -> Forest | None:
    parts = {k: [] for k in ("child", "step", "feature", "value", "default_right")}
    roots, depths, offset = [], [], 0
    for tree in trees:
        left = np.asarray(tree["left_children"], dtype=np.int64)
        right = np.asarray(tree["right_children"], dtype=np.int64)
        split = left >= 0
        types = np.asarray(tree.get("split_type", []) or np.zeros(len(left)), dtype=np.int64)
        if (
            len(left) == 0
            or (types != 0).any()
            or (right[split] != left[split] + 1).any()
            or (right[~split] != -1).any()
            or (left[split] <= np.flatnonzero(split)).any()
        ):
            return None  # categorical splits or an unexpected layout: left to XGBoost
        depth = np.zeros(len(left), np.int64)
        for i in range(len(left)):  # children come after their parent
            if split[i]:
                depth[left[i]] = depth[right[i]] = depth[i] + 1
        nodes = np.arange(len(left))
        parts["child"].append(np.where(split, left, nodes) + offset)
        parts["step"].append(split)
        parts["feature"].append(np.where(split, tree["split_indices"], 0))
        parts["value"].append(np.asarray(tree["split_conditions"], dtype=np.float32))
        parts["default_right"].append(~np.asarray(tree["default_left"], dtype=bool) & split)
        roots.append(offset)
        depths.append(depth.max())
        offset += len(left)
    if not roots:
        return None
    flat = {k: np.concatenate(v) for k, v in parts.items()}
    if (flat["feature"] >= num_feature).any():
        return None
    u32 = np.uint32
    qs = _bitvector_layout(trees)
    return Forest(
        base_score,
        np.asarray(roots, u32),
        np.asarray(depths, u32),
        flat["child"].astype(u32),
        flat["step"].astype(u32),
        flat["feature"].astype(u32),
        np.ascontiguousarray(flat["value"], dtype=np.float32),
        flat["default_right"].astype(u32),
        num_feature,
        qs,
    )


def _leaf_spans(left: list, right: list) -> tuple[list[int], dict[int, tuple[int, int]]]:
    """Leaves left to right, and per split the numbers [lo, mid) of its left subtree's leaves."""
    order: list[int] = []
    spans: dict[int, tuple[int, int]] = {}

    def walk(i: int) -> tuple[int, int]:  # the leaf numbers [lo, hi) under node i
        if left[i] < 0:
            order.append(i)
            return len(order) - 1, len(order)
        lo, mid = walk(left[i])
        hi = walk(right[i])[1]
        spans[i] = (lo, mid)
        return lo, hi

    walk(0)  # at most 63 deep: called for trees of at most 64 leaves
    return order, spans


def _bitvector_layout(trees: list) -> dict | None:
    feature, value, default_right, mask, leaves = [], [], [], [], []
    qs_start, leaf_start = [0], [0]
    for tree in trees:
        if sum(1 for c in tree["left_children"] if c < 0) > 64:
            return None
        order, spans = _leaf_spans(tree["left_children"], tree["right_children"])
        for i, (lo, hi) in sorted(spans.items()):
            feature.append(tree["split_indices"][i])
            value.append(tree["split_conditions"][i])
            default_right.append(0 if tree["default_left"][i] else 1)
            cleared = ((1 << (hi - lo)) - 1) << lo
            mask.append(((1 << 64) - 1) ^ cleared)
        leaves += [tree["split_conditions"][i] for i in order]
        qs_start.append(len(feature))
        leaf_start.append(len(leaves))
    u64 = np.uint64
    return {
        "qs_start": np.asarray(qs_start, np.int64),
        "qs_feature": np.asarray(feature, np.int64),
        "qs_value": np.asarray(value, np.float32),
        "qs_default_right": np.asarray(default_right, u64),
        "qs_mask": np.asarray(mask, u64),
        "leaf_start": np.asarray(leaf_start, np.int64),
        "leaf_value": np.asarray(leaves, np.float32),
    }


# bit counting (popcount) masks
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


# --- the compiled kernel (plain Python here; compiled by numba on first use) ---------------


def _sigmoid(m):
    y = -m
    if _CAP < y:  # std::min(-x, 88.7f)
        y = _CAP
    return _ONE / (math.exp(y) + _ONE + _EPS)


def _base_margin(p):  # XGBoost's ProbToMargin: -logf(1/p - 1), in float32
    return -math.log(_ONE / p - _ONE)


def _next(x, r, i, child, step, feature, value, default_right, finite):
    """The node after ``i`` for row ``r``: left if x < threshold, NaN its default way."""
    v = x[r, feature[i]]
    right = np.uint32(not (v < value[i]))
    if not finite:  # the same for every call of a kernel run: predicted, not a data branch
        right &= np.uint32(v == v) | default_right[i]
    return child[i] + (step[i] & right)  # a leaf stays where it is


def _predict(x, roots, depths, child, step, feature, value, default_right, base, out, finite):
    nxt = _next_jit
    tree = (child, step, feature, value, default_right, finite)
    n = x.shape[0]
    r = 0
    while r + 4 <= n:  # four independent rows in flight, no data-dependent branches
        a0 = a1 = a2 = a3 = base
        for t in range(roots.shape[0]):
            i0 = i1 = i2 = i3 = roots[t]
            for _ in range(depths[t]):
                i0 = nxt(x, r, i0, *tree)
                i1 = nxt(x, r + 1, i1, *tree)
                i2 = nxt(x, r + 2, i2, *tree)
                i3 = nxt(x, r + 3, i3, *tree)
            a0 += value[i0]  # float32, tree by tree, as XGBoost sums
            a1 += value[i1]
            a2 += value[i2]
            a3 += value[i3]
        out[r] = _sigmoid_jit(a0)
        out[r + 1] = _sigmoid_jit(a1)
        out[r + 2] = _sigmoid_jit(a2)
        out[r + 3] = _sigmoid_jit(a3)
        r += 4
    while r < n:
        a = base
        for t in range(roots.shape[0]):
            i = roots[t]
            for _ in range(depths[t]):
                i = nxt(x, r, i, *tree)
            a += value[i]
        out[r] = _sigmoid_jit(a)
        r += 1


def _best(table, cols, roots, depths, child, step, feature, value, default_right, base, finite,
          buf, probs, best, score):
    """Per event e: the rows float32(table[e, cols]) scored, and the first best permutation."""
    predict = _predict_jit
    for e in range(table.shape[0]):
        for p in range(cols.shape[0]):
            for k in range(cols.shape[1]):
                buf[p, k] = np.float32(table[e, cols[p, k]])
        predict(buf, roots, depths, child, step, feature, value, default_right, base, probs,
                finite)
        b = 0
        for p in range(1, cols.shape[0]):
            if probs[p] > probs[b]:  # the first on ties, as numpy's argmax
                b = p
        best[e] = b
        score[e] = probs[b]


def _best_bits(table, cols, qs_start, qs_feature, qs_value, qs_default_right, qs_mask,
               leaf_start, leaf_value, base, finite, buf, bits, leaf, acc, best, score):
    """:func:`_best` with the bit-vector walk: per split, one pass over the rows of a block of
    events that the compiler vectorises; per tree, the leftmost remaining leaf of each row."""
    n_perm = cols.shape[0]
    block = buf.shape[1] // n_perm  # events per block
    one = np.uint64(1)
    for e0 in range(0, table.shape[0], block):
        n_events = min(block, table.shape[0] - e0)
        n_rows = n_events * n_perm
        for k in range(cols.shape[1]):  # column-major rows: feature k of every permutation
            for j in range(n_events):
                for p in range(n_perm):
                    buf[k, j * n_perm + p] = np.float32(table[e0 + j, cols[p, k]])
        for r in range(n_rows):
            acc[r] = base
        for t in range(qs_start.shape[0] - 1):
            for r in range(n_rows):
                bits[r] = ~np.uint64(0)
            for s in range(qs_start[t], qs_start[t + 1]):
                x = buf[qs_feature[s]]
                threshold = qs_value[s]
                mask = qs_mask[s]
                if finite:
                    for r in range(n_rows):
                        right = np.uint64(not (x[r] < threshold))
                        bits[r] &= mask | (right - one)
                else:
                    dr = qs_default_right[s]
                    for r in range(n_rows):
                        v = x[r]
                        right = np.uint64(not (v < threshold)) & (np.uint64(v == v) | dr)
                        bits[r] &= mask | (right - one)
            for r in range(n_rows):  # the leftmost leaf left: the number of zeros below the
                b = bits[r]  # lowest set bit, counted bitwise (vectorised, no table)
                z = (b & (~b + one)) - one
                z = z - ((z >> one) & _M1)
                z = (z & _M2) + ((z >> np.uint64(2)) & _M2)
                z = (z + (z >> np.uint64(4))) & _M4
                leaf[r] = (z * _H01) >> np.uint64(56)
            first = leaf_start[t]
            for r in range(n_rows):
                acc[r] += leaf_value[first + leaf[r]]
        for j in range(n_events):
            r0 = j * n_perm
            b = 0
            top = _sigmoid_jit(acc[r0])
            for p in range(1, n_perm):
                prob = _sigmoid_jit(acc[r0 + p])
                if prob > top:  # the first on ties, as numpy's argmax
                    b = p
                    top = prob
            best[e0 + j] = b
            score[e0 + j] = top


def _sigmoids(m, out):
    for i in range(m.shape[0]):
        out[i] = _sigmoid_jit(m[i])


_kernels: dict | None = None
_unavailable: str | None = None
# the compiled helpers the kernels call (set by kernels())
_sigmoid_jit = _next_jit = _predict_jit = None


def _jit(fn):
    import numba

    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # no writable cache location: compile in memory
        return numba.njit(nogil=True)(fn)


def kernels() -> dict | None:
    """The compiled kernels, or None (numba missing, or its ``expf`` is not the C library's)."""
    global _kernels, _unavailable, _sigmoid_jit, _next_jit, _predict_jit
    if _kernels is not None or _unavailable is not None:
        return _kernels
    try:
        import numba  # noqa: F401
    except ImportError:
        _unavailable = "numba is not installed"
        return None
    _sigmoid_jit = _jit(_sigmoid)
    _next_jit = _jit(_next)
    _predict_jit = _jit(_predict)
    compiled = {
        "predict": _predict_jit,
        "best": _jit(_best),
        "best_bits": _jit(_best_bits),
        "sigmoids": _jit(_sigmoids),
        "base": _jit(_base_margin),
    }
    probe = np.concatenate(
        [np.linspace(-100, 100, 4001), [0.0, -0.0, 88.7, -88.7, 1e-8, -1e-8, np.inf, -np.inf]]
    ).astype(np.float32)
    got = np.empty_like(probe)
    compiled["sigmoids"](probe, got)
    if not np.array_equal(got, _reference_sigmoid(probe), equal_nan=True):
        _unavailable = "numba's expf differs from the C library's"
        return None
    _kernels = compiled
    return _kernels


def _reference_sigmoid(m: np.ndarray) -> np.ndarray:
    """XGBoost's sigmoid with the C library's expf through ctypes (slow; for the self-check)."""
    import ctypes
    import ctypes.util

    libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    expf = libm.expf
    expf.restype, expf.argtypes = ctypes.c_float, (ctypes.c_float,)
    f32 = np.float32
    out = np.empty_like(m)
    for i, v in enumerate(m):
        y = min(-v, _CAP) if not np.isnan(v) else -v
        out[i] = _ONE / (f32(expf(float(y))) + _ONE + _EPS)
    return out


class Scorer:
    """``predict(x)``: float32 P(correct) of float32 rows, equal to ``Booster.predict``."""

    evaluator: str

    def predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def best(self, table: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per event (row of ``table``): the first permutation with the highest score and it.

        Permutation p of event e has the features float32(table[e, cols[p]]).
        """
        e, p = len(table), len(cols)
        x = np.empty((e, p, cols.shape[1]), dtype=np.float32)
        for k in range(cols.shape[1]):
            x[..., k] = table[:, cols[:, k]]
        scores = self.predict(x.reshape(e * p, -1)).reshape(e, p)
        best = np.argmax(scores, axis=1)  # the first on ties
        return best, scores[np.arange(e), best]


#: Rows (whole events' permutations) per pass of the bit-vector kernel: long enough vector loops,
#: small enough for the level-1 cache.
BLOCK_ROWS = 256


class CompiledScorer(Scorer):
    evaluator = "numba"
    bits = True  # the bit-vector kernel for :meth:`best` where the trees allow it

    def __init__(self, forest: Forest, compiled: dict) -> None:
        self.forest = forest
        self._predict = compiled["predict"]
        self._best = compiled["best"]
        self._best_bits = compiled["best_bits"]
        self.base = np.float32(compiled["base"](np.float32(forest.base_score)))

    def _trees(self) -> tuple:
        f = self.forest
        return (f.roots, f.depths, f.child, f.step, f.feature, f.value, f.default_right,
                self.base)

    def best(self, table: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`Scorer.best`, fused: no float32 array of all rows, one pass per event."""
        table = np.ascontiguousarray(table, dtype=np.float64)
        cols = np.ascontiguousarray(cols, dtype=np.int64)
        if cols.shape[1] != self.forest.num_feature or (cols.size and cols.max() >= table.shape[1]):
            raise ReanimateError(f"the model expects rows of {self.forest.num_feature} features")
        best = np.zeros(len(table), dtype=np.int64)
        score = np.zeros(len(table), dtype=np.float32)
        if len(table) and len(cols):
            finite = not np.isnan(table).any()
            probs = np.empty(len(cols), dtype=np.float32)
            qs = self.forest.qs
            if qs is not None and self.bits:
                rows = len(cols) * max(1, min(len(table), BLOCK_ROWS // len(cols)))
                buf = np.empty((cols.shape[1], rows), dtype=np.float32)
                bits = np.empty(rows, dtype=np.uint64)
                leaf = np.empty(rows, dtype=np.int64)
                acc = np.empty(rows, dtype=np.float32)
                self._best_bits(
                    table, cols, qs["qs_start"], qs["qs_feature"], qs["qs_value"],
                    qs["qs_default_right"], qs["qs_mask"], qs["leaf_start"], qs["leaf_value"],
                    self.base, finite, buf, bits, leaf, acc, best, score,
                )
            else:
                buf = np.empty((len(cols), cols.shape[1]), dtype=np.float32)
                self._best(table, cols, *self._trees(), finite, buf, probs, best, score)
        return best, score

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = _rows(x, self.forest.num_feature)
        out = np.empty(len(x), dtype=np.float32)
        self._predict(x, *self._trees(), out, not np.isnan(x).any())
        return out


class XGBoostScorer(Scorer):
    evaluator = "xgboost"

    def __init__(self, booster) -> None:
        self.booster = booster

    def predict(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros(0, np.float32)
        return np.asarray(self.booster.inplace_predict(x), dtype=np.float32)


def _rows(x: np.ndarray, num_feature: int) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != num_feature:
        raise ReanimateError(f"the model expects rows of {num_feature} features, got {x.shape}")
    return x


_from_boosters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def scorer(model, evaluator: str = "auto", nthread: int = 1) -> Scorer:
    """A :class:`Scorer` for a Booster, JSON model bytes or a Scorer (returned as it is)."""
    if isinstance(model, Scorer):
        return model
    if evaluator not in EVALUATORS:
        raise ReanimateError(f"unknown ML evaluator {evaluator!r} (one of {', '.join(EVALUATORS)})")
    if isinstance(model, bytes | bytearray | memoryview):
        raw, booster = bytes(model), None
    else:  # an xgboost.Booster
        cached = _from_boosters.get(model, {}).get(evaluator)
        if cached is not None:
            return cached
        raw, booster = None, model
    made = _make(raw, booster, evaluator, nthread)
    if booster is not None:
        _from_boosters.setdefault(booster, {})[evaluator] = made
    return made


def _make(raw: bytes | None, booster, evaluator: str, nthread: int) -> Scorer:
    if evaluator != "xgboost":
        compiled = kernels()
        if raw is None:
            raw = bytes(booster.save_raw(raw_format="json"))
        forest = parse(raw) if compiled is not None else None
        if forest is not None:
            return CompiledScorer(forest, compiled)
        if evaluator == "numba":
            why = _unavailable or "a model this evaluator does not handle"
            raise ReanimateError(f"the numba ML evaluator is not available: {why}")
    if booster is None:
        from reanimate.analyses.agc.ml.pinning import booster_from_bytes

        booster = booster_from_bytes(raw, nthread)
    return XGBoostScorer(booster)


def validate(raw: bytes) -> None:
    """Fail early (ReanimateError) on bytes that are not a model either evaluator can use."""
    if parse(raw) is None:
        from reanimate.analyses.agc.ml.pinning import booster_from_bytes

        booster_from_bytes(raw)
