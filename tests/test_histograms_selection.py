"""The AGC selection at every cut edge, on hand-built events written to a NanoAOD-typed file."""

from __future__ import annotations

import math

import numpy as np
import pytest
import uproot
from _agc_reference import BRANCHES, analyse, histograms, read, smear, write

from reanimate.analyses.agc import objects, processing, systematics

F = np.float32
E_OK = {"pt": 40.0, "eta": 0.5, "cutBased": 4, "sip3d": 1.0}
M_OK = {"pt": 40.0, "eta": -0.5, "tightId": True, "sip3d": 1.0, "pfRelIso04_all": 0.05}


def jets(*pts, btag=(0.9, 0.1, 0.1, 0.1, 0.1, 0.1), **fields):
    out = []
    for i, pt in enumerate(pts):
        j = {"pt": pt, "eta": 0.3 * i - 0.6, "phi": 0.9 * i - 1.3, "mass": 4.0 + i,
             "btagCSVV2": btag[i] if i < len(btag) else 0.1, "jetId": 6}
        for k, values in fields.items():
            j[k] = values[i]
        out.append(j)
    return out


J4 = (100.0, 80.0, 60.0, 45.0)
HT4 = sum(J4)

#: (description, event, {pt variation: expected region}); observables checked separately.
CASES = [
    ("base 4j1b", {"Electron": [E_OK], "Jet": jets(*J4)}, {"nominal": "4j1b"}),
    ("electron pt == 30", {"Electron": [{**E_OK, "pt": 30.0}], "Jet": jets(*J4)},
     {"nominal": None}),
    ("electron pt just above 30",
     {"Electron": [{**E_OK, "pt": float(np.nextafter(F(30), F(31)))}], "Jet": jets(*J4)},
     {"nominal": "4j1b"}),
    ("electron |eta| == 2.1", {"Electron": [{**E_OK, "eta": -2.1}], "Jet": jets(*J4)},
     {"nominal": None}),
    ("electron |eta| just below 2.1",
     {"Electron": [{**E_OK, "eta": float(np.nextafter(F(2.1), F(0)))}], "Jet": jets(*J4)},
     {"nominal": "4j1b"}),
    ("electron cutBased 3", {"Electron": [{**E_OK, "cutBased": 3}], "Jet": jets(*J4)},
     {"nominal": None}),
    ("electron sip3d == 4", {"Electron": [{**E_OK, "sip3d": 4.0}], "Jet": jets(*J4)},
     {"nominal": None}),
    ("muon ok", {"Muon": [M_OK], "Jet": jets(*J4)}, {"nominal": "4j1b"}),
    ("muon not tight", {"Muon": [{**M_OK, "tightId": False}], "Jet": jets(*J4)},
     {"nominal": None}),
    ("muon iso == 0.15", {"Muon": [{**M_OK, "pfRelIso04_all": 0.15}], "Jet": jets(*J4)},
     {"nominal": None}),
    ("muon |eta| == 2.1", {"Muon": [{**M_OK, "eta": 2.1}], "Jet": jets(*J4)}, {"nominal": None}),
    ("two leptons", {"Electron": [E_OK], "Muon": [M_OK], "Jet": jets(*J4)}, {"nominal": None}),
    ("two electrons", {"Electron": [E_OK, E_OK], "Jet": jets(*J4)}, {"nominal": None}),
    ("second lepton fails", {"Electron": [E_OK], "Muon": [{**M_OK, "sip3d": 5.0}],
                             "Jet": jets(*J4)}, {"nominal": "4j1b"}),
    ("no lepton", {"Jet": jets(*J4)}, {"nominal": None}),
    ("jet pt == 30 (3 jets), 4 jets after pt_scale_up",
     {"Electron": [E_OK], "Jet": jets(100.0, 80.0, 60.0, 30.0)},
     {"nominal": None, "pt_scale_up": "4j1b"}),
    ("jet |eta| == 2.4", {"Electron": [E_OK],
                          "Jet": jets(*J4, eta=(0.0, 0.1, 0.2, -2.4))}, {"nominal": None}),
    ("jet |eta| just below 2.4",
     {"Electron": [E_OK],
      "Jet": jets(*J4, eta=(0.0, 0.1, 0.2, float(np.nextafter(F(2.4), F(0)))))},
     {"nominal": "4j1b"}),
    *[(f"jetId {jid}", {"Electron": [E_OK], "Jet": jets(*J4, jetId=(6, 6, 6, jid))},
       {"nominal": "4j1b" if jid & 4 else None}) for jid in (0, 1, 2, 3, 4, 5, 6, 7, 12)],
    ("btag == 0.5 is not a b-tag",
     {"Electron": [E_OK], "Jet": jets(*J4, btag=(0.9, 0.5, 0.1, 0.1))}, {"nominal": "4j1b"}),
    ("btag just above 0.5",
     {"Electron": [E_OK],
      "Jet": jets(*J4, btag=(0.9, float(np.nextafter(F(0.5), F(1))), 0.1, 0.1))},
     {"nominal": "4j2b"}),
    ("no b-tag", {"Electron": [E_OK], "Jet": jets(*J4, btag=(0.1, 0.1, 0.1, 0.1))},
     {"nominal": None}),
    ("4j2b, five jets", {"Muon": [M_OK],
                         "Jet": jets(120.0, 90.0, 70.0, 50.0, 35.0, btag=(0.1, 0.95, 0.2, 0.8))},
     {"nominal": "4j2b"}),
    ("b-tagged jet failing pt does not count",
     {"Electron": [E_OK], "Jet": jets(*J4, 25.0, btag=(0.9, 0.1, 0.1, 0.1, 0.9))},
     {"nominal": "4j1b"}),
    ("4j1b becomes 4j2b under pt_scale_up",
     {"Electron": [E_OK], "Jet": jets(*J4, 29.5, btag=(0.9, 0.1, 0.1, 0.1, 0.9))},
     {"nominal": "4j1b", "pt_scale_up": "4j2b"}),
    ("m_bjj tie: first combination wins",
     {"Electron": [E_OK],
      "Jet": jets(100.0, 50.0, 50.0, 80.0, btag=(0.9, 0.1, 0.1, 0.9),
                  eta=(0.0, 0.5, 0.5, 1.0), phi=(0.0, 1.0, 1.0, 1.0),
                  mass=(10.0, 5.0, 15.0, 8.0))},
     {"nominal": "4j2b"}),
    ("fewer than 4 jets", {"Electron": [E_OK], "Jet": jets(100.0, 80.0, 60.0)},
     {"nominal": None}),
]


@pytest.fixture(scope="module")
def hand_built(tmp_path_factory):
    path = tmp_path_factory.mktemp("hand") / "hand.root"
    events = []
    for i, (_, ev, _) in enumerate(CASES):
        events.append({**ev, "run": 1, "lumi": 7, "event": 1000 + i})
    write(path, events)
    return path


def _columnar(path, pt_variation, seed=42):
    with uproot.open(path) as f:
        ev = objects.Events(f["Events"].arrays(list(objects.BRANCHES), library="ak"))
    regions = objects.select_regions(
        ev, systematics.jet_pt(ev, pt_variation, seed), objects.one_lepton(ev),
        objects.jet_quality(ev), pt_variation,
    )
    region = np.full(ev.n, None, dtype=object)
    value = np.full(ev.n, np.nan)
    for name, sel in regions.items():
        region[sel.event_mask] = name
        value[sel.event_mask] = sel.observable
    return region, value


def test_file_has_the_real_branch_types(hand_built, real_nanoaod):
    with uproot.open(hand_built) as a, uproot.open(real_nanoaod) as b:
        for name in BRANCHES:
            assert repr(a["Events"][name].interpretation) == repr(
                b["Events"][name].interpretation
            ), name


@pytest.mark.parametrize("pt_variation", ["nominal", "pt_scale_up", "pt_res_up"])
def test_every_cut_edge(hand_built, pt_variation):
    region, value = _columnar(hand_built, pt_variation)
    events = read(hand_built)
    for i, (description, _, expected) in enumerate(CASES):
        ref_region, ref_value, _ = analyse(events[i], pt_variation)
        if pt_variation != "pt_res_up":  # smeared regions: only loop == columnar
            want = expected.get(pt_variation, expected["nominal"])
            assert ref_region == want, f"reference loop, {description}"
        assert region[i] == ref_region, f"{description} ({pt_variation})"
        if ref_value is not None:
            assert value[i] == pytest.approx(ref_value, rel=1e-12), description


def test_known_observables(hand_built):
    region, value = _columnar(hand_built, "nominal")
    assert value[0] == HT4  # float32-exact jet pts: HT exact
    # the tie: combinations (0,1,3) and (0,2,3) have bitwise-equal vector-sum pT; (0,1,3) wins
    tie = next(i for i, c in enumerate(CASES) if c[0].startswith("m_bjj tie"))
    j = CASES[tie][1]["Jet"]

    def p4sum(idx):
        s = [0.0] * 4
        for k in idx:
            pt, eta, phi, m = j[k]["pt"], j[k]["eta"], j[k]["phi"], j[k]["mass"]
            eta, phi, m = float(F(eta)), float(F(phi)), float(F(m))
            px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
            for n, x in enumerate((px, py, pz, math.sqrt(px**2 + py**2 + pz**2 + m**2))):
                s[n] += x
        return s

    def mass(idx):
        s = p4sum(idx)
        return math.sqrt(s[3] ** 2 - s[0] ** 2 - s[1] ** 2 - s[2] ** 2)

    sum_pt = {c: math.hypot(*p4sum(c)[:2]) for c in [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)]}
    assert sum_pt[(0, 1, 3)] == sum_pt[(0, 2, 3)] == max(sum_pt.values())

    assert mass((0, 1, 3)) != pytest.approx(mass((0, 2, 3)), rel=1e-6)
    assert value[tie] == pytest.approx(mass((0, 1, 3)), rel=1e-12)
    # pt_scale_up: the 4j1b -> 4j2b event; HT of the 30 GeV edge event is 1.03 * sum
    up_region, up_value = _columnar(hand_built, "pt_scale_up")
    edge = next(i for i, c in enumerate(CASES) if c[0].startswith("jet pt == 30"))
    assert up_value[edge] == pytest.approx(1.03 * (100 + 80 + 60 + 30), rel=1e-12)


def test_histograms_match_the_reference_loop(hand_built):
    events = read(hand_built)
    for process, variation in [("ttbar", "nominal"), ("wjets", "nominal"), ("ttbar", "PS_var")]:
        task = processing.ChunkTask(process, variation, str(hand_built), 0, len(events), 2.5, 42)
        got, n = processing.process_chunk(task)
        want = histograms(events, process, variation, 2.5)
        assert n == len(events)
        assert sorted(got) == sorted(want)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-12, err_msg=name)


def test_btag_weight_of_one_event(hand_built):
    got, _ = processing.process_chunk(
        processing.ChunkTask("ttbar", "nominal", str(hand_built), 0, 1, 1.0, 42)
    )
    # event 0 is 4j1b with HT 285 -> bin 12 (270-290, index 12 with underflow at 0)
    b = int((HT4 - 50) // 20) + 1
    assert got["4j1b_ttbar"][0, b] == 1.0
    for i in range(4):
        assert got[f"4j1b_ttbar_btag_var_{i}_up"][0, b] == pytest.approx(1 + 0.075 * J4[i] / 50)
        assert got[f"4j1b_ttbar_btag_var_{i}_down"][0, b] == pytest.approx(
            1 - 0.075 * J4[i] / 50
        )


def test_smearing_is_deterministic_and_chunk_independent(hand_built):
    with uproot.open(hand_built) as f:
        ev = f["Events"].arrays(list(objects.BRANCHES), library="ak")
    def factors(seed, a=0, b=len(ev)):
        return systematics.resolution_factors(seed, objects.Events(ev[a:b]))

    whole = factors(42)
    parts = np.concatenate([factors(42, a, b) for a, b in ((0, 5), (5, 6), (6, len(ev)))])
    np.testing.assert_array_equal(whole, parts)
    assert not np.array_equal(factors(43), whole)
    some = objects.jet_quality(objects.Events(ev))
    subset = systematics.resolution_factors(42, objects.Events(ev), some)
    np.testing.assert_array_equal(subset[some], whole[some])
    assert (subset[~some] == 1).all()
    flat = whole
    rows = [(e["run"], e["luminosityBlock"], e["event"], len(e["Jet_pt"]))
            for e in read(hand_built)]
    expected = [smear(42, r, lb, evt, j) for r, lb, evt, n in rows for j in range(n)]
    np.testing.assert_array_equal(flat, expected)


def test_smearing_distribution():
    n = 200_000
    z = systematics.normal_per_object(
        42, np.ones(n, np.uint32), np.ones(n, np.uint32), np.arange(n, dtype=np.uint64),
        np.ones(n, np.int64),
    )
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs(np.mean(np.abs(z) < 1) - 0.6827) < 0.005
