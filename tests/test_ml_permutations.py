"""Jet–parton permutations: order and counts against a plain itertools reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from reanimate.analyses.agc.ml import permutations as perm


def reference(n: int) -> list[tuple[int, ...]]:
    """The AGC recipe: product order, distinct jets, of (a, b, ...)/(b, a, ...) keep the later."""
    tuples = [p for p in itertools.product(range(n), repeat=4) if len(set(p)) == 4]
    labels = []
    for p in tuples:
        lab = [100] * n
        lab[p[0]] = lab[p[1]] = 24
        lab[p[2]], lab[p[3]] = 6, -6
        labels.append(lab)
    return [p for i, p in enumerate(tuples) if labels[i] in labels[:i]]


@pytest.mark.parametrize(("n", "count"), [(4, 12), (5, 60), (6, 180)])
def test_counts_and_order_match_itertools(n, count):
    got = perm.permutations(n)
    assert got.shape == (count, 4)
    assert [tuple(map(int, p)) for p in got] == reference(n)
    assert (got[:, 0] > got[:, 1]).all()


def test_more_than_six_jets_use_the_first_six_and_fewer_than_four_fail():
    assert np.array_equal(perm.permutations(9), perm.permutations(6))
    with pytest.raises(ValueError):
        perm.permutations(3)


def test_labels_correct_permutation_and_random_fractions():
    labels = perm.permutation_labels(4)
    assert labels.shape == (12, 4)
    assert (np.sort(labels, axis=1) == [-6, 6, 24, 24]).all()
    truth = np.array([[24, -6, 24, 6], [6, 24, 24, -6], [24, 24, 24, -6]])
    idx = perm.correct_permutation(truth)
    assert idx[2] == -1
    for row, i in zip(truth[:2], idx[:2], strict=True):
        assert list(labels[i]) == list(row)
    m = perm.evaluation_matrix(4)
    assert np.allclose(np.diag(m), 1.0)
    assert m.mean() == pytest.approx(0.375)  # random choice: 37.5 % of jets, 1/12 of events
