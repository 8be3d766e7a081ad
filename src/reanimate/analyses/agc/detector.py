"""Detector-level objects from a truth record: NanoAOD ``Jet``, ``Electron`` and ``Muon``.

Partons become jets with a pT-dependent Gaussian response; extra radiation jets (Poisson) and
pileup jets (15–40 GeV, flat in η) are added; jets are stored with pT > 15 GeV and |η| < 4.7 in
descending pT, as in NanoAOD. ``btagCSVV2`` is drawn from a flavour-dependent mixture (a
"tagged" component above the 0.5 working point with probability 0.77 for b, 0.30 for c,
0.07 for light/gluon, 0.03 for pileup; −10 outside the tracker |η| > 2.5 and for 6 % of the
untagged jets, as in the real files), ``qgl`` from quark- or gluon-like Kumaraswamy (Beta-like)
distributions (−1 outside the tracker) and ``jetId`` is 6 (tight) for 93 % of jets. Prompt
leptons get ID, isolation and impact-parameter distributions that mostly pass the AGC tight
selection; non-prompt leptons from b/c decays (and a few from light jets) mostly fail it.

Objects are handled as flat tables (one row per object, with its event index) so that every
random draw and every kinematic computation touches only objects that exist.
"""

from __future__ import annotations

import numpy as np

from reanimate.analyses.agc import kinematics as kin
from reanimate.analyses.agc import truth as tr
from reanimate.analyses.agc.processes import Tune

BTAG_EFF = {tr.BOTTOM: 0.77, tr.CHARM: 0.30, tr.PILEUP: 0.03}
BTAG_EFF_OTHER = 0.07
NONPROMPT_LEPTON = {tr.BOTTOM: 0.20, tr.CHARM: 0.10, tr.PILEUP: 0.0}
NONPROMPT_OTHER = 0.01
ELECTRON_ID_PROMPT = np.cumsum([0.09, 0.09, 0.14, 0.23, 0.45])
ELECTRON_ID_NONPROMPT = np.cumsum([0.45, 0.25, 0.15, 0.10, 0.05])
M_MU = 0.10566


def _kumaraswamy(u, a: float, b: float):
    """Beta-like variate on [0, 1] from a uniform, by the closed-form inverse CDF."""
    return (1.0 - (1.0 - u) ** (1.0 / b)) ** (1.0 / a)


def _by_flavour(flav, table: dict[int, float], other: float):
    out = np.full(flav.shape, other)
    for f, value in table.items():
        out[flav == f] = value
    return out


def _compact(slots):
    """Slots [(p4 (n, 4), attribute (n,), valid (n,))] → flat (event, p4, attribute)."""
    idx = [np.flatnonzero(v) for _, _, v in slots]
    evt = np.concatenate(idx)
    p4 = np.concatenate([p[i] for (p, _, _), i in zip(slots, idx, strict=True)])
    attr = np.concatenate(
        [np.broadcast_to(a, v.shape)[i] for (_, a, v), i in zip(slots, idx, strict=True)]
    )
    return evt, p4, attr


def _pack(n: int, evt, keep, pt, fields: dict[str, np.ndarray]):
    """Keep objects, order them by event then descending float32 pT; (counts, flat fields).

    One stable argsort of a uint64 key (event << 32 | ~pT bits): positive float32 bit patterns
    order like the values, and float32 is the pT that is stored.
    """
    evt = evt[keep]
    bits = np.asarray(pt[keep], dtype=np.float32).view(np.uint32)
    key = (evt.astype(np.uint64) << np.uint64(32)) | (np.uint32(0xFFFFFFFF) - bits)
    order = np.argsort(key, kind="stable")
    counts = np.bincount(evt, minlength=n)
    return counts, {k: v[keep][order] for k, v in fields.items()}


def _extra_jets(n: int, rng, tune: Tune):
    """Radiation and pileup jets as a flat table (event, p4, flavour)."""
    n_isr = np.minimum(rng.poisson(tune.isr_mean, n), 5)
    n_pu = np.minimum(rng.poisson(tune.pileup_mean, n), 4)
    evt = np.concatenate([np.repeat(np.arange(n), n_isr), np.repeat(np.arange(n), n_pu)])
    m_isr, m = int(n_isr.sum()), len(evt)
    u = rng.uniform(size=(m, 3))
    pt = np.where(
        np.arange(m) < m_isr,
        20.0 + rng.exponential(tune.isr_pt, m),
        np.minimum(15.0 + rng.exponential(5.0, m), 40.0),
    )
    eta = np.where(np.arange(m) < m_isr, rng.normal(0.0, 2.0, m), 9.4 * u[:, 0] - 4.7)
    p4 = kin.from_pt_eta_phi_m(pt, eta, 2 * np.pi * u[:, 1] - np.pi, 0.0)
    flav = np.select(
        [u[:, 2] < 0.02, u[:, 2] < 0.05, u[:, 2] < 0.25], [tr.BOTTOM, tr.CHARM, tr.LIGHT], tr.GLUON
    )
    flav[m_isr:] = tr.PILEUP
    return evt, p4, flav


def jets(truth: tr.Truth, rng, tune: Tune):
    """Jet collection (counts, fields) and the parton table (event, p4, flavour) it came from."""
    n = truth.n
    evt0, p4_0, flav0 = _compact(truth.jets)
    evt1, p4_1, flav1 = _extra_jets(n, rng, tune)
    evt, p4, flav = (np.concatenate(x) for x in ((evt0, evt1), (p4_0, p4_1), (flav0, flav1)))
    m = len(evt)
    pt0, eta0, phi0 = kin.pt_eta_phi32(p4)
    pt0 = np.maximum(pt0, np.float32(1e-3))
    g = rng.standard_normal((m, 4), dtype=np.float32)
    u = rng.random((m, 4), dtype=np.float32)
    mean = tune.jet_response * np.where(flav == tr.BOTTOM, 0.96, 1.0)
    pt = pt0 * np.maximum(mean + np.sqrt(1.0 / pt0 + 0.05**2) * g[:, 0], 0.05)
    eta = eta0 + 0.02 * g[:, 1]
    phi = kin.delta_phi(phi0 + 0.02 * g[:, 2], 0.0)
    mass = pt * 0.12 * np.exp(0.35 * g[:, 3])
    in_tracker = np.abs(eta) < 2.5
    # b tagging: one uniform picks the component and, rescaled, the value inside it
    eff = _by_flavour(flav, BTAG_EFF, BTAG_EFF_OTHER)
    tagged = u[:, 0] < eff
    v = np.where(tagged, u[:, 0] / eff, (u[:, 0] - eff) / (1.0 - eff))
    half = np.float32(0.5)
    # stay clear of 0.5 by more than NanoAOD's 10-bit mantissa rounding (2**-11)
    hi = np.maximum((half + half * _kumaraswamy(v, 3.0, 0.8)).astype(np.float32), np.float32(0.501))
    lo = np.minimum((half * _kumaraswamy(v, 1.1, 2.5)).astype(np.float32), np.float32(0.49))
    default = ~in_tracker | (~tagged & (u[:, 3] < 0.06))
    btag = np.where(default, np.float32(-10.0), np.where(tagged, hi, lo))
    gluonish = (flav == tr.GLUON) | (flav == tr.PILEUP)
    qgl = np.where(gluonish, _kumaraswamy(u[:, 1], 1.2, 2.6), _kumaraswamy(u[:, 1], 2.6, 1.3))
    qgl = np.where(in_tracker, np.clip(qgl + tune.qgl_shift, 0.0, 1.0), -1.0)
    tight_frac = np.where(flav == tr.PILEUP, 0.70, 0.93)
    jet_id = np.where(u[:, 2] < tight_frac, 6, np.where(u[:, 2] < tight_frac + 0.04, 2, 0))
    keep = (pt > 15.0) & (np.abs(eta) < 4.7)
    fields = {
        "pt": pt,
        "eta": eta,
        "phi": phi,
        "mass": mass,
        "btagCSVV2": btag,
        "jetId": jet_id,
        "qgl": qgl,
    }
    return _pack(n, evt, keep, pt, fields), (evt, p4, flav)


def leptons(truth: tr.Truth, partons, rng):
    """Electron and Muon collections: prompt leptons plus non-prompt ones from jets."""
    n = truth.n
    evt_p, p4_p, pdg_p = _compact([(p, np.abs(q), v) for p, q, v in truth.leptons])
    evt_j, p4_j, flav = partons
    prob = _by_flavour(flav, NONPROMPT_LEPTON, NONPROMPT_OTHER)
    u0 = rng.uniform(size=(len(evt_j), 2))
    has = u0[:, 0] < prob
    frac = 0.03 + 0.32 * u0[has, 1]
    evt_np = evt_j[has]
    p4_np = p4_j[has] * frac[:, None]
    pdg_np = np.where(rng.uniform(size=len(evt_np)) < 0.5, 11, 13)
    evt = np.concatenate([evt_p, evt_np])
    p4 = np.concatenate([p4_p, p4_np])
    pdg = np.concatenate([pdg_p, pdg_np])
    prompt = np.arange(len(evt)) < len(evt_p)
    m = len(evt)
    pt0, eta0, phi0 = kin.pt_eta_phi32(p4)
    g = rng.standard_normal((m, 5), dtype=np.float32)
    u = rng.random((m, 4), dtype=np.float32)
    e = rng.standard_exponential((m, 2), dtype=np.float32)
    is_e = pdg == 11
    pt = pt0 * (1.0 + np.where(is_e, 0.025, 0.015) * g[:, 0])
    eta = eta0 + 0.002 * g[:, 1]
    phi = kin.delta_phi(phi0 + 0.002 * g[:, 2], 0.0)
    sip3d = np.where(prompt, 1.3 * np.abs(g[:, 3]), 1.5 + 5.0 * e[:, 0])
    cut_based = np.where(
        prompt,
        np.searchsorted(ELECTRON_ID_PROMPT, u[:, 0], side="right"),
        np.searchsorted(ELECTRON_ID_NONPROMPT, u[:, 0], side="right"),
    )
    cut_based = np.minimum(cut_based, 4)
    endcap_loss = prompt & (np.abs(eta) > 1.479) & (cut_based == 4) & (u[:, 1] > 0.9)
    cut_based = np.where(endcap_loss, 3, cut_based)
    tail = u[:, 2] < 0.15
    iso = np.where(prompt, np.where(tail, 0.25, 0.015) * e[:, 1], 0.05 + 0.6 * e[:, 1])
    tight = u[:, 3] < np.where(prompt, 0.60, 0.45)
    e_keep = is_e & (pt > 5.0) & (np.abs(eta) < 2.5)
    mu_keep = (pdg == 13) & (pt > 3.0) & (np.abs(eta) < 2.4)
    electrons = _pack(
        n,
        evt,
        e_keep,
        pt,
        {
            "pt": pt,
            "eta": eta,
            "phi": phi,
            "mass": 0.015 * g[:, 4],
            "cutBased": cut_based,
            "sip3d": sip3d,
        },
    )
    muons = _pack(
        n,
        evt,
        mu_keep,
        pt,
        {
            "pt": pt,
            "eta": eta,
            "phi": phi,
            "mass": np.full(m, M_MU),
            "tightId": tight,
            "sip3d": sip3d,
            "pfRelIso04_all": iso,
        },
    )
    return electrons, muons
