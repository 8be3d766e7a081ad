"""The histogramming stage on generated AGC-like samples against the plain per-event loop."""

from __future__ import annotations

import numpy as np
import pytest
from _agc_reference import analyse, histograms, read

from reanimate.analyses.agc import distributed, objects, output, processing, samples, systematics

generate = pytest.importorskip("reanimate.analyses.agc.generate")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("generated")
    generate.generate(out, events=300, seed=3, signal_masses=[750], events_per_file=300)
    return out


def test_regions_and_observables_match_the_loop(generated):
    path = generated / "ttbar__nominal__000.root"
    ev = objects.Events(processing._read_events(str(path), objects.BRANCHES, 0, None))
    rows = read(path)
    lepton, quality = objects.one_lepton(ev), objects.jet_quality(ev)
    selected = 0
    for pt_variation in systematics.PT_VARIATIONS:
        pt = systematics.jet_pt(ev, pt_variation, 42)
        regions = objects.select_regions(ev, pt, lepton, quality, pt_variation)
        for region, sel in regions.items():
            want = [(i, analyse(r, pt_variation)) for i, r in enumerate(rows)]
            want = [(i, value) for i, (reg, value, _) in want if reg == region]
            assert np.flatnonzero(sel.event_mask).tolist() == [i for i, _ in want], region
            np.testing.assert_allclose(sel.observable, [v for _, v in want], rtol=1e-12)
            selected += len(want)
    assert selected > 40  # generated ttbar lands in the regions (62 with seed 3)


def test_full_stage_matches_the_loop(generated):
    sample_list = samples.load_samples(generated)
    plan = distributed.plan_chunks(sample_list, 120, None, 42)
    with distributed.dask_client(workers=1, threads_per_worker=2, memory_per_worker="1Gi",
                                 processes=False) as client:
        hists, events = distributed.run_chunks(client, plan.tasks, progress=False)
    output.add_pseudodata(hists)
    assert len(output.ordered(hists)) > 90  # 300 events per sample: a few are empty
    want: dict[str, np.ndarray] = {}
    for s in sample_list:
        weight = s.xsec_pb * samples.LUMINOSITY_PB / plan.nevts[(s.process, s.variation)]
        for f in s.files:
            distributed.merge_into(want, histograms(read(f.path), s.process, s.variation, weight))
    for name, h in want.items():
        np.testing.assert_allclose(hists[name], h, rtol=1e-12, err_msg=name)
