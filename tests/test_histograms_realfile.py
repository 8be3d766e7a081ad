"""The columnar selection against the plain per-event loop on the real 200-event CMS file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _agc_reference import analyse, histograms, ht, m_bjj, n_leptons, read

from reanimate.analyses.agc import objects, processing, systematics

SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_NANOAOD = SHARED / "data" / "nanoAOD_2015_CMS_Open_Data_ttbar.root"


@pytest.fixture(scope="module")
def real():
    if not REAL_NANOAOD.exists():
        pytest.skip("shared data not found")
    events = processing._read_events(str(REAL_NANOAOD), objects.BRANCHES, 0, None)
    return REAL_NANOAOD, objects.Events(events), read(REAL_NANOAOD)


@pytest.mark.parametrize("pt_variation", systematics.PT_VARIATIONS)
def test_objects_and_regions_match_the_loop(real, pt_variation):
    _, ev, rows = real
    pt = systematics.jet_pt(ev, pt_variation, 42)
    quality = objects.jet_quality(ev)
    lepton = objects.one_lepton(ev)
    sel = (pt > 30) & quality
    n_jets = ev.jets.per_event(sel)
    n_b = ev.jets.per_event(sel & (ev.jets.btagCSVV2 > 0.5))
    regions = objects.select_regions(ev, pt, lepton, quality, pt_variation)
    in_region = {r: s.event_mask for r, s in regions.items()}
    assert ev.n == len(rows) == 200
    for i, row in enumerate(rows):
        region, value, jets = analyse(row, pt_variation)
        assert n_jets[i] == len(jets), i
        assert n_b[i] == sum(j[4] for j in jets), i
        for r in objects.REGIONS:
            assert in_region[r][i] == (region == r), (i, r)
        np.testing.assert_allclose(pt[sel][ev.jets.event[sel] == i], [j[0] for j in jets],
                                   rtol=0, atol=0)
    # the real file has 14 one-lepton events but none with >= 4 jets: observables are
    # checked on every event with the jets they need (HT: >= 1 jet; m_bjj: >= 3 jets, 1 b-tag)
    assert lepton.tolist() == [n_leptons(r) == 1 for r in rows] and lepton.sum() == 14
    has = n_jets >= 1
    np.testing.assert_allclose(
        objects.ht(pt[sel], n_jets[has]),
        [ht(analyse(rows[i], pt_variation)[2]) for i in np.flatnonzero(has)], rtol=1e-12,
    )
    three = (n_jets >= 3) & (n_b >= 1)
    assert three.sum() >= 3
    keep = sel & three[ev.jets.event]
    got = objects.m_bjj(pt[keep], ev.jets.eta[keep], ev.jets.phi[keep], ev.jets.mass[keep],
                        ev.jets.btagCSVV2[keep] > 0.5, n_jets[three])
    want = [m_bjj(analyse(rows[i], pt_variation)[2]) for i in np.flatnonzero(three)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_histograms_match_the_loop(real):
    path, _, rows = real
    for variation in ("nominal", "ME_var"):
        got, n = processing.process_chunk(
            processing.ChunkTask("ttbar", variation, str(path), 0, 200, 3.0, 42)
        )
        want = histograms(rows, "ttbar", variation, 3.0)
        assert n == 200 and sorted(got) == sorted(want)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-12, err_msg=name)
