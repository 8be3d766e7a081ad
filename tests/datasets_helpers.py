"""A plain reference implementation of the AGC selection (docs/agc-analysis.md §2–§3) for the tests.

Deliberately independent of the histogram stage: it checks that generated samples land in the
regions the way real ones do. Also used by ``benchmarks/region_yields.py``.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np

from reanimate.datasets.reading import read_events

#: The real 200-event AGC file (the clone has shared/ beside it, as in CI).
REAL_NANOAOD = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / ("nanoAOD_2015_CMS_Open_Data_ttbar.root")
)
REAL_SHA256 = "c14a29b25b15b837226f396e920b5d9fb134f3558bef5b0a9db5d6d9606c5f3a"
LUMI_PB = 3378.0
BRANCHES = (
    "Electron_pt",
    "Electron_eta",
    "Electron_cutBased",
    "Electron_sip3d",
    "Muon_pt",
    "Muon_eta",
    "Muon_tightId",
    "Muon_sip3d",
    "Muon_pfRelIso04_all",
    "Jet_pt",
    "Jet_eta",
    "Jet_phi",
    "Jet_mass",
    "Jet_btagCSVV2",
    "Jet_jetId",
)
#: Reference yields with the real files (docs/agc-analysis.md §7), sum of weights in 25 bins.
REFERENCE = {
    "ttbar": (21080, 50105),
    "wjets": (5152, 1592),
    "single_top_tW": (1585, 2167),
    "single_top_t_chan": (464, 866),
    "single_top_s_chan": (7, 17.5),
}


def regions(events: ak.Array) -> dict[str, np.ndarray]:
    """Observable per event for 4j1b (HT) and 4j2b (m_bjj); NaN where the event is not in it."""
    ele = (
        (events.Electron_pt > 30)
        & (abs(events.Electron_eta) < 2.1)
        & (events.Electron_cutBased == 4)
        & (events.Electron_sip3d < 4)
    )
    mu = (
        (events.Muon_pt > 30)
        & (abs(events.Muon_eta) < 2.1)
        & events.Muon_tightId
        & (events.Muon_sip3d < 4)
        & (events.Muon_pfRelIso04_all < 0.15)
    )
    jet_sel = (events.Jet_pt > 30) & (abs(events.Jet_eta) < 2.4) & ((events.Jet_jetId & 4) != 0)
    jets = ak.zip(
        {k: events[f"Jet_{k}"][jet_sel] for k in ("pt", "eta", "phi", "mass", "btagCSVV2")}
    )
    n_lep = ak.sum(ele, axis=1) + ak.sum(mu, axis=1)
    n_b = ak.sum(jets.btagCSVV2 > 0.5, axis=1)
    base = (n_lep == 1) & (ak.num(jets) >= 4)
    ht = ak.to_numpy(ak.sum(jets.pt, axis=1)).astype(float)
    r1 = np.where(ak.to_numpy(base & (n_b == 1)), ht, np.nan)
    sel2 = ak.to_numpy(base & (n_b >= 2))
    mbjj = np.full(len(events), np.nan)
    if sel2.any():
        j = jets[sel2]
        pt, eta, phi, m = (ak.values_astype(j[k], np.float64) for k in ("pt", "eta", "phi", "mass"))
        v = ak.zip(
            {
                "px": pt * np.cos(phi),
                "py": pt * np.sin(phi),
                "pz": pt * np.sinh(eta),
                "e": np.sqrt((pt * np.cosh(eta)) ** 2 + m**2),
                "b": j.btagCSVV2 > 0.5,
            }
        )
        c = ak.combinations(v, 3, fields=["a", "b", "c"])
        px, py = c.a.px + c.b.px + c.c.px, c.a.py + c.b.py + c.c.py
        pz, e = c.a.pz + c.b.pz + c.c.pz, c.a.e + c.b.e + c.c.e
        has_b = c.a.b | c.b.b | c.c.b
        trijet_pt = ak.where(has_b, np.hypot(px, py), -1.0)
        best = ak.argmax(trijet_pt, axis=1, keepdims=True)
        mass = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0))
        mbjj[sel2] = ak.to_numpy(ak.firsts(mass[best]))
    return {"4j1b": r1, "4j2b": mbjj}


def sample_yields(paths, xsec_pb: float, nevts_total: int) -> dict[str, dict[str, float]]:
    """Events selected, their fraction, and the sum of weights in 50–550 GeV, per region."""
    counts = {"4j1b": 0, "4j2b": 0}
    for path in paths:
        obs = regions(read_events(path, BRANCHES))
        for region, values in obs.items():
            counts[region] += int(np.sum((values >= 50) & (values < 550)))
    weight = xsec_pb * LUMI_PB / nevts_total
    return {
        region: {"events": n, "fraction": n / nevts_total, "yield": n * weight}
        for region, n in counts.items()
    }


def columns_to_events(columns: dict) -> ak.Array:
    """In-memory events (as read from a file) from generator columns, float32 like on disk."""
    arrays = {}
    for coll, (counts, fields) in columns.items():
        for name, values in fields.items():
            if values.dtype.kind == "f":
                values = values.astype(np.float32)
            arrays[f"{coll}_{name}"] = ak.unflatten(values, counts)
    return ak.zip(arrays, depth_limit=1)


def truth_labels_fraction(events: ak.Array, selected: np.ndarray) -> float:
    """Fraction of ``selected`` events whose 4 leading selected jets get AGC §9 labels summing
    to 48 (W jets 24, hadronic-top b 6, leptonic-top b −6)."""
    ev = events[selected]
    jet_sel = (ev.Jet_pt > 30) & (abs(ev.Jet_eta) < 2.4) & ((ev.Jet_jetId & 4) != 0)
    jeta, jphi = ev.Jet_eta[jet_sel][:, :4], ev.Jet_phi[jet_sel][:, :4]
    pdg, mother = ev.GenPart_pdgId, ev.GenPart_genPartIdxMother
    last = (ev.GenPart_statusFlags & (1 << 13)) != 0
    safe_mother = ak.where(mother >= 0, mother, 0)
    mother_pdg = abs(pdg[safe_mother])
    quark = (abs(pdg) > 0) & (abs(pdg) < 7) & last & (mother >= 0)
    quark = quark & ((mother_pdg == 6) | (mother_pdg == 24))
    # a top is "leptonic" when its W has a charged-lepton daughter
    is_lep = (abs(pdg) == 11) | (abs(pdg) == 13) | (abs(pdg) == 15)
    lep_w = safe_mother[is_lep & (mother >= 0)]  # index of the W of each charged lepton
    w_top = safe_mother[lep_w]  # index of that W's top (or of a non-top mother)
    idx = ak.local_index(pdg)
    top_is_leptonic = ak.any(idx[:, :, None] == w_top[:, None, :], axis=2)
    label = ak.where(mother_pdg == 24, 24, ak.where(top_is_leptonic[safe_mother], -6, 6))
    qeta, qphi, qlabel = ev.GenPart_eta[quark], ev.GenPart_phi[quark], label[quark]
    dphi = (jphi[:, :, None] - qphi[:, None, :] + np.pi) % (2 * np.pi) - np.pi
    dr = np.sqrt((jeta[:, :, None] - qeta[:, None, :]) ** 2 + dphi**2)
    best = ak.argmin(dr, axis=2, keepdims=True)
    matched = ak.firsts(dr[best], axis=2) < 0.4
    per_jet = ak.broadcast_arrays(dr, qlabel[:, None, :])[1]
    labels = ak.where(matched, ak.firsts(per_jet[best], axis=2), 0)
    total = ak.sum(ak.fill_none(labels, 0), axis=1)
    return float(np.mean(ak.to_numpy(total) == 48))
