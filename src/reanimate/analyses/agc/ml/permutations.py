"""Jet–parton permutations (docs/agc-analysis.md §9).

A permutation is an ordered 4-tuple (W1, W2, b_had, b_lep) of distinct indices into an event's
first min(n, 6) selected jets. The W jets are interchangeable: of (a, b, ...) and (b, a, ...)
only the tuple with W1 > W2 is kept (the AGC reference keeps the later of the two in
``itertools.product`` order, which is this one). Order: ``itertools.product`` order of the kept
tuples. 12 / 60 / 180 permutations for 4 / 5 / 6 jets.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np

MIN_JETS = 4
MAX_JETS = 6
#: Truth labels of the four roles: W jet, b from the hadronic top, b from the leptonic top.
W_LABEL, BHAD_LABEL, BLEP_LABEL, NO_LABEL = 24, 6, -6, 100
ROLE_LABELS = (W_LABEL, W_LABEL, BHAD_LABEL, BLEP_LABEL)


@cache
def _permutations(n: int) -> np.ndarray:
    perms = [p for p in itertools.product(range(n), repeat=4) if len(set(p)) == 4 and p[0] > p[1]]
    out = np.array(perms, dtype=np.int64).reshape(-1, 4)
    out.setflags(write=False)
    return out


def permutations(n: int) -> np.ndarray:
    """The (P, 4) int64 array of permutations of ``n`` jets (``n`` capped at 6; >= 4)."""
    n = min(int(n), MAX_JETS)
    if n < MIN_JETS:
        raise ValueError(f"permutations need at least {MIN_JETS} jets, got {n}")
    return _permutations(n)


@cache
def permutation_labels(n: int) -> np.ndarray:
    """(P, n) jet labels implied by each permutation: 24, 24, 6, -6 at its jets, 100 elsewhere."""
    perms = permutations(n)
    labels = np.full((len(perms), perms.max() + 1 if len(perms) else n), NO_LABEL, np.int64)
    rows = np.arange(len(perms))[:, None]
    labels[rows, perms] = np.array(ROLE_LABELS)
    labels.setflags(write=False)
    return labels


@cache
def evaluation_matrix(n: int) -> np.ndarray:
    """(P, P): fraction of the ``n`` jets labelled alike by permutation i (row) and j (column).

    For 4 jets this is the AGC's evaluation matrix (correctly labelled jets / 4).
    """
    labels = permutation_labels(n)
    out = (labels[:, None, :] == labels[None, :, :]).sum(axis=2) / labels.shape[1]
    out.setflags(write=False)
    return out


def correct_permutation(jet_labels: np.ndarray) -> np.ndarray:
    """Index of the permutation matching each row of (E, 4) truth labels, -1 where none does."""
    jet_labels = np.asarray(jet_labels)
    match = (jet_labels[:, None, :] == permutation_labels(4)[None, :, :]).all(axis=2)
    return np.where(match.any(axis=1), match.argmax(axis=1), -1)
