"""An independent, plain per-event Python implementation of the AGC selection (tests only).

Written from docs/agc-analysis.md §2–§6 without the columnar code: loops over events and objects,
``math`` instead of numpy, a pure-Python splitmix64 for the smearing. Also a writer of
hand-built events in the NanoAOD schema (the project's writer when present, else uproot).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import uproot

F32 = np.float32
MASK = 2**64 - 1
BRANCHES = [
    "run", "luminosityBlock", "event",
    "Electron_pt", "Electron_eta", "Electron_cutBased", "Electron_sip3d",
    "Muon_pt", "Muon_eta", "Muon_tightId", "Muon_sip3d", "Muon_pfRelIso04_all",
    "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_btagCSVV2", "Jet_jetId",
]
BTAGS = [f"btag_var_{i}_{d}" for i in range(4) for d in ("up", "down")]


# ---------------------------------------------------------------- smearing (pure Python)
def _sm(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def smear(seed: int, run: int, lumi: int, event: int, j: int) -> float:
    key = _sm(seed)
    for part in (run, lumi, event):
        key = _sm(key ^ part)
    golden = 0x9E3779B97F4A7C15
    u1 = ((_sm((key + 2 * j * golden) & MASK) >> 11) + 0.5) * 2.0**-53
    u2 = ((_sm((key + (2 * j + 1) * golden) & MASK) >> 11) + 0.5) * 2.0**-53
    z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
    return round((1.0 + 0.05 * z) * 2.0**24) / 2.0**24


# ---------------------------------------------------------------- selection
def _electron(pt, eta, cut, sip):
    return pt > 30 and F32(abs(eta)) < F32(2.1) and cut == 4 and F32(sip) < F32(4)


def _muon(pt, eta, tight, sip, iso):
    return pt > 30 and F32(abs(eta)) < F32(2.1) and tight and sip < 4 and F32(iso) < F32(0.15)


def _p4(pt, eta, phi, m):
    px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
    return px, py, pz, math.sqrt(px * px + py * py + pz * pz + m * m)


def n_leptons(ev: dict) -> int:
    return sum(
        _electron(*e)
        for e in zip(ev["Electron_pt"], ev["Electron_eta"], ev["Electron_cutBased"],
                     ev["Electron_sip3d"], strict=True)
    ) + sum(
        _muon(*m)
        for m in zip(ev["Muon_pt"], ev["Muon_eta"], ev["Muon_tightId"], ev["Muon_sip3d"],
                     ev["Muon_pfRelIso04_all"], strict=True)
    )


def analyse(ev: dict, pt_variation: str, seed: int = 42):
    """(region or None, observable or None, selected jets) for one event.

    Selected jets are tuples (varied pt, eta, phi, mass, is b-tagged, nominal pt).
    """
    n_lep = n_leptons(ev)
    jets = []
    for j, (pt, eta, phi, m, b, jid) in enumerate(
        zip(ev["Jet_pt"], ev["Jet_eta"], ev["Jet_phi"], ev["Jet_mass"], ev["Jet_btagCSVV2"],
            ev["Jet_jetId"], strict=True)
    ):
        if pt_variation == "nominal":
            vpt = float(pt)
        elif pt_variation == "pt_scale_up":
            vpt = float(pt) * 1.03
        else:
            vpt = float(pt) * smear(seed, ev["run"], ev["luminosityBlock"], ev["event"], j)
        if vpt > 30 and F32(abs(eta)) < F32(2.4) and (jid & 4) != 0:
            jets.append((vpt, eta, phi, m, b > 0.5, float(pt)))
    if n_lep != 1 or len(jets) < 4:
        return None, None, jets
    n_b = sum(j[4] for j in jets)
    if n_b == 1:
        return "4j1b", ht(jets), jets
    if n_b >= 2:
        return "4j2b", m_bjj(jets), jets
    return None, None, jets


def ht(jets) -> float:
    return sum(j[0] for j in jets)


def m_bjj(jets) -> float:
    """Mass of the first 3-jet combination of largest vector-sum pT with >= 1 b-tag."""
    best, best_pt = None, -1.0
    for combo in itertools.combinations(jets, 3):
        if not any(j[4] for j in combo):
            continue
        vs = [_p4(j[0], j[1], j[2], j[3]) for j in combo]
        s = [vs[0][k] + vs[1][k] + vs[2][k] for k in range(4)]
        spt = math.sqrt(s[0] * s[0] + s[1] * s[1])
        if spt > best_pt:
            best, best_pt = s, spt
    m2 = best[3] ** 2 - best[0] ** 2 - best[1] ** 2 - best[2] ** 2
    return math.sqrt(max(m2, 0.0))


def _bin(x: float) -> int:
    if x < 50:
        return 0
    if x >= 550:
        return 26
    return int((x - 50) // 20) + 1


def histograms(events: list[dict], process: str, variation: str, weight: float, seed=42):
    """{name: (2, 27) array} as the AGC defines them, filled event by event."""
    out: dict[str, np.ndarray] = {}

    def fill(name, x, w):
        h = out.setdefault(name, np.zeros((2, 27)))
        if x is not None:
            h[0, _bin(x)] += w
            h[1, _bin(x)] += w * w

    def name(region, var):
        return f"{region}_{process}" if var == "nominal" else f"{region}_{process}_{var}"

    pt_vars = ["nominal", "pt_scale_up", "pt_res_up"] if variation == "nominal" else ["nominal"]
    for ev in events:
        for pv in pt_vars:
            region, x, jets = analyse(ev, pv, seed)
            for r in ("4j1b", "4j2b"):
                var = variation if pv == "nominal" else pv
                fill(name(r, var), x if r == region else None, weight)
                if variation == "nominal" and pv == "nominal":
                    for i in range(4):
                        for d, sign in (("up", 1), ("down", -1)):
                            w = weight * (1 + sign * 0.075 * jets[i][5] / 50) if r == region else 0
                            fill(name(r, f"btag_var_{i}_{d}"), x if r == region else None, w)
                    if process == "wjets":
                        for d, f in (("up", 1.025), ("down", 0.975)):
                            fill(name(r, f"scale_var_{d}"), x if r == region else None,
                                 weight * f)
    return out


def read(path) -> list[dict]:
    with uproot.open(path) as f:
        return f["Events"].arrays(BRANCHES, library="ak").tolist()


# ---------------------------------------------------------------- writing hand-built events
def write(path: Path, events: list[dict], exact: bool = True) -> Path:
    """Write events ({Electron: [dict], Muon: [dict], Jet: [dict], run, lumi, event}).

    With the project's NanoAOD writer when present. ``exact`` keeps every float32 value as given
    (the writer otherwise rounds mantissas like NanoAOD, and cut edges such as |eta| = 2.1 would
    move); branch types are the real file's either way.
    """
    defaults = {
        "Electron": {"pt": 0.0, "eta": 0.0, "phi": 0.0, "mass": 0.0, "cutBased": 4, "sip3d": 1.0},
        "Muon": {"pt": 0.0, "eta": 0.0, "phi": 0.0, "mass": 0.1, "tightId": True, "sip3d": 1.0,
                 "pfRelIso04_all": 0.01},
        "Jet": {"pt": 0.0, "eta": 0.0, "phi": 0.0, "mass": 5.0, "btagCSVV2": 0.1, "jetId": 6,
                "qgl": 0.5},
        "GenPart": {"pt": 0.0, "eta": 0.0, "phi": 0.0, "mass": 0.0, "pdgId": 0,
                    "genPartIdxMother": -1, "statusFlags": 0},
    }
    dtypes = {"cutBased": np.int32, "jetId": np.int32, "pdgId": np.int32,
              "genPartIdxMother": np.int32, "statusFlags": np.int32, "tightId": np.bool_}
    scalars = {
        "run": np.array([e.get("run", 1) for e in events], np.uint32),
        "luminosityBlock": np.array([e.get("lumi", 1) for e in events], np.uint32),
        "event": np.array([e.get("event", i + 1) for i, e in enumerate(events)], np.uint64),
    }
    collections = {}
    for coll, fields in defaults.items():
        objs = [e.get(coll, []) for e in events]
        counts = np.array([len(o) for o in objs], np.int64)
        flat = {
            f: np.array([o.get(f, d) for ev in objs for o in ev], dtypes.get(f, np.float32))
            for f, d in fields.items()
        }
        collections[coll] = (counts, flat)
    try:
        from reanimate.datasets.writing import write_events
    except ImportError:
        write_events = None
    if write_events is not None:
        import pytest

        from reanimate.datasets import writing

        with pytest.MonkeyPatch.context() as mp:
            if exact:
                mp.setattr(writing, "PRECISION_BITS", {}, raising=False)
                mp.setattr(writing, "DECIMALS", {}, raising=False)
            write_events(path, scalars, collections, key=str(path.name))
        return path
    import awkward as ak

    arrays = dict(scalars)
    for coll, (counts, flat) in collections.items():
        arrays[coll] = ak.unflatten(ak.zip(flat), counts)
    with uproot.recreate(path) as f:
        f["Events"] = arrays
    return path


def random_events(path: Path, n: int, seed: int, first_event: int = 1) -> Path:
    """``n`` random AGC-like events (with some objects exactly on cut edges), NanoAOD types."""
    rng = np.random.default_rng(seed)
    events = []
    for i in range(n):
        ne, nm, nj = rng.choice([0, 1, 1, 2]), rng.choice([0, 0, 1, 2]), 3 + rng.poisson(2.5)
        el = [{"pt": float(rng.choice([30.0, 25 + rng.exponential(30)], p=[0.05, 0.95])),
               "eta": float(rng.uniform(-2.5, 2.5)), "cutBased": int(rng.choice([2, 4, 4])),
               "sip3d": float(rng.exponential(2))} for _ in range(ne)]
        mu = [{"pt": float(25 + rng.exponential(30)), "eta": float(rng.uniform(-2.5, 2.5)),
               "tightId": bool(rng.random() < 0.8), "sip3d": float(rng.exponential(2)),
               "pfRelIso04_all": float(rng.exponential(0.1))} for _ in range(nm)]
        jets = []
        for _ in range(nj):
            pt = 30.0 if rng.random() < 0.05 else float(22 + rng.exponential(45))
            eta = float(rng.choice([2.4, -2.4, rng.uniform(-2.7, 2.7)], p=[0.02, 0.02, 0.96]))
            btag = float(rng.choice([0.5, rng.uniform(0.5, 1), rng.uniform(0, 0.5)],
                                    p=[0.03, 0.35, 0.62]))
            jets.append({"pt": pt, "eta": eta, "phi": float(rng.uniform(-np.pi, np.pi)),
                         "mass": float(rng.uniform(2, 20)), "btagCSVV2": btag,
                         "jetId": int(rng.choice([0, 2, 4, 6, 6, 6, 7]))})
        events.append({"Electron": el, "Muon": mu, "Jet": jets, "run": 1,
                       "lumi": 1 + i // 100, "event": first_event + i})
    return write(path, events, exact=False)
