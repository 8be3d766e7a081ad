"""Chunks follow the file's basket layout: no basket is decompressed twice, and the histograms do
not depend on how the file was cut (bit for bit when the chunks are the same, within float
rounding otherwise)."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot
from _agc_reference import random_events

from reanimate.analyses.agc import distributed, objects, samples
from reanimate.datasets.reading import aligned_ranges, basket_starts
from reanimate.errors import ReanimateError

BASKET = 100


def rewrite_in_baskets(source, path, basket: int) -> None:
    """``source``'s stage branches rewritten with ``basket`` entries per basket."""
    with uproot.open(source) as f:
        events = f["Events"].arrays(list(objects.BRANCHES), library="ak")
    out = {k: events[k] for k in ("run", "luminosityBlock", "event")}
    for coll in ("Electron", "Muon", "Jet"):
        out[coll] = ak.zip({b[len(coll) + 1:]: events[b] for b in objects.BRANCHES
                            if b.startswith(coll + "_")})
    with uproot.recreate(path) as f:
        tree = f.mktree("Events", {k: v.type.content for k, v in out.items()})
        for start in range(0, len(events), basket):
            tree.extend({k: v[start:start + basket] for k, v in out.items()})


@pytest.fixture(scope="module")
def baskets(tmp_path_factory):
    root = tmp_path_factory.mktemp("baskets")
    random_events(root / "one.root", 530, seed=3)
    rewrite_in_baskets(root / "one.root", root / "ttbar.root", BASKET)
    doc = {"ttbar": {"nominal": {"nevts_total": 530, "files": [
        {"path": "ttbar.root", "nevts": 530}]}}}
    (root / "catalogue.json").write_text(json.dumps(doc))
    return root


def test_aligned_ranges():
    assert aligned_ranges([0, 300], 100) == [(0, 300)]  # one basket larger than the size
    assert aligned_ranges([0, 10, 20, 30, 40, 45], 25) == [(0, 20), (20, 45)]
    assert aligned_ranges([0, 100, 200, 300], 100) == [(0, 100), (100, 200), (200, 300)]
    assert aligned_ranges([0, 50, 250, 260], 100) == [(0, 50), (50, 250), (250, 260)]
    assert aligned_ranges([0, 0], 10) == []
    with pytest.raises(ReanimateError):
        aligned_ranges([0, 10], 0)


def test_chunks_start_and_end_at_baskets(baskets):
    path = str(baskets / "ttbar.root")
    assert basket_starts(path, objects.BRANCHES) == [0, 100, 200, 300, 400, 500, 530]
    sample_list = samples.load_samples(baskets)
    ranges = {size: [(t.entry_start, t.entry_stop) for t in
                     distributed.plan_chunks(sample_list, size, None, 42).tasks]
              for size in (250, 100, 60, 10_000)}
    assert ranges[250] == [(0, 200), (200, 400), (400, 530)]
    assert ranges[100] == ranges[60] == [(0, 100), (100, 200), (200, 300), (300, 400),
                                         (400, 500), (500, 530)]
    assert ranges[10_000] == [(0, 530)]
    hists = {}
    for size in (250, 100, 10_000):
        plan = distributed.plan_chunks(sample_list, size, None, 42)
        hists[size], events = distributed.run_chunks_here(plan.tasks, progress=False)
        assert events == 530
    for size in (250, 100):
        assert hists[size].keys() == hists[10_000].keys()
        for name, h in hists[size].items():
            np.testing.assert_allclose(h, hists[10_000][name], rtol=1e-12, atol=0, err_msg=name)
