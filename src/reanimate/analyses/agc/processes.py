"""Hard processes of the AGC-like samples: tt̄ (and Z'→tt̄), single top (s, t, tW), W+jets.

Each ``make_*`` function returns a :class:`~reanimate.analyses.agc.truth.Truth` for ``n`` events,
drawn from the ``rng`` it is given. The tt̄-like and single-top samples are generated with a
decay filter (at least one W → ℓν, ℓ = e, μ, τ) and W+jets with at least three hard partons
(pT > 20 GeV); :func:`filter_efficiency` gives the fraction of the inclusive cross section each
filter keeps, and the catalogue's ``xsec_pb`` is the AGC cross section times that fraction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reanimate.analyses.agc import kinematics as kin
from reanimate.analyses.agc import truth as tr

#: W+jets: P(n hard partons) ∝ ALPHA**n (Berends scaling); the sample keeps n >= 3.
WJETS_ALPHA, WJETS_MIN_PARTONS, WJETS_MAX_PARTONS = 0.28, 3, 6


@dataclass(frozen=True)
class Tune:
    """Modelling knobs; the ttbar variations differ from nominal only through these."""

    isr_mean: float = 0.38  # Poisson mean of extra radiation jets
    isr_pt: float = 18.0  # exponential slope (GeV) of radiation-jet pT above 20 GeV
    excess_scale: float = 1.0  # scales m(tt) − 2 m_t, i.e. the top pT spectrum
    recoil_pt: float = 25.0  # mean pT of the hard system's recoil against radiation
    jet_response: float = 1.0  # mean jet energy response
    qgl_shift: float = 0.0  # shift of the quark/gluon likelihood (PS model)
    pileup_mean: float = 1.2  # Poisson mean of pileup jets (pT 15–40 GeV)


def filter_efficiency(kind: str) -> float:
    if kind in ("ttbar", "zprime", "single_top_tW"):
        return tr.pair_filter_efficiency()
    if kind in ("single_top_s_chan", "single_top_t_chan"):
        return float(tr.W_LEPTONIC)
    if kind == "wjets":
        return WJETS_ALPHA**WJETS_MIN_PARTONS
    raise ValueError(kind)


def _recoil_system(rng, n: int, mass, tune: Tune, y_sigma: float = 0.9):
    pt = rng.exponential(tune.recoil_pt, n)
    return kin.from_m_pt_y_phi(mass, pt, rng.normal(0.0, y_sigma, n), rng.uniform(-np.pi, np.pi, n))


def make_ttbar(n: int, rng, tune: Tune, zprime_mass: float | None = None,
               zprime_width: float = 0.03) -> tr.Truth:
    """tt̄, or Z'→tt̄ with `zprime_mass` (GeV) and relative width `zprime_width` (Γ/M)."""
    truth = tr.Truth(n)
    m_t1 = kin.breit_wigner(rng, tr.M_TOP, tr.G_TOP, n, 150.0, 195.0)
    m_t2 = kin.breit_wigner(rng, tr.M_TOP, tr.G_TOP, n, 150.0, 195.0)
    if zprime_mass is None:
        m_tt = m_t1 + m_t2 + tune.excess_scale * rng.gamma(1.4, 95.0, n)
        g1 = truth.add_incoming(21, +1)
        truth.add_incoming(21, -1)
    else:
        width = zprime_width * zprime_mass
        lo = max(2 * tr.M_TOP + 50.0, zprime_mass - 10 * width)
        m_tt = kin.breit_wigner(rng, zprime_mass, width, n, lo, zprime_mass + 10 * width)
        m_tt = np.maximum(m_tt, m_t1 + m_t2 + 1.0)
        q = truth.add_incoming(2, +1)
        truth.add_incoming(-2, -1)
    system = _recoil_system(rng, n, m_tt, tune)
    if zprime_mass is not None:
        g1 = truth.add_gen(system, 32, q, tr.FLAGS_HARD, mass=m_tt)
    t_p4, tbar_p4 = kin.two_body(system, m_t1, m_t2, rng)
    t_slot = truth.add_gen(t_p4, 6, g1, tr.FLAGS_HARD, mass=m_t1)
    tbar_slot = truth.add_gen(tbar_p4, -6, g1, tr.FLAGS_HARD, mass=m_t2)
    m_w1 = kin.breit_wigner(rng, tr.M_W, tr.G_W, n, 60.0, 100.0)
    m_w2 = kin.breit_wigner(rng, tr.M_W, tr.G_W, n, 60.0, 100.0)
    mode1, mode2 = tr.draw_w_pair_modes(rng, n, at_least_one_leptonic=True)
    tr.top_decay(truth, t_p4, t_slot, 1, m_w1, mode1, rng)
    tr.top_decay(truth, tbar_p4, tbar_slot, -1, m_w2, mode2, rng)
    return truth


def _single_top_decay(truth, rng, top_p4, top_slot, sign, n):
    m_w = kin.breit_wigner(rng, tr.M_W, tr.G_W, n, 60.0, 100.0)
    tr.top_decay(truth, top_p4, top_slot, sign, m_w, tr.draw_w_modes(rng, n, True), rng)


def make_single_top_t(n: int, rng, tune: Tune) -> tr.Truth:
    truth = tr.Truth(n)
    sign = np.where(rng.uniform(size=n) < 0.63, 1, -1)  # t : t̄ ≈ 1.7 : 1 at the LHC
    q_in = truth.add_incoming(2 * sign, +1)
    b_in = truth.add_incoming(5 * sign, -1)
    m_t = kin.breit_wigner(rng, tr.M_TOP, tr.G_TOP, n, 150.0, 195.0)
    phi = rng.uniform(-np.pi, np.pi, n)
    top = kin.from_pt_eta_phi_m(rng.gamma(2.0, 30.0, n), rng.normal(0, 1.3, n), phi, m_t)
    side = np.where(rng.uniform(size=n) < 0.5, 1.0, -1.0)
    q_eta = side * (1.5 + rng.gamma(2.5, 0.5, n))
    q_out = kin.from_pt_eta_phi_m(15.0 + rng.gamma(2.0, 18.0, n), q_eta, phi + np.pi, 0.0)
    t_slot = truth.add_gen(top, 6 * sign, b_in, tr.FLAGS_HARD, mass=m_t)
    truth.add_gen(q_out, sign, q_in, tr.FLAGS_HARD)
    truth.add_jet(q_out, tr.LIGHT)
    spectator = kin.from_pt_eta_phi_m(
        5.0 + rng.exponential(25.0, n), rng.normal(0, 1.8, n), rng.uniform(-np.pi, np.pi, n), 0.0
    )
    truth.add_gen(spectator, -5 * sign, -1, tr.PROMPT | tr.FROM_HARD | tr.FIRST_COPY | tr.LAST_COPY)
    truth.add_jet(spectator, tr.BOTTOM)
    _single_top_decay(truth, rng, top, t_slot, sign, n)
    return truth


def make_single_top_s(n: int, rng, tune: Tune) -> tr.Truth:
    truth = tr.Truth(n)
    sign = np.where(rng.uniform(size=n) < 0.63, 1, -1)
    q_in = truth.add_incoming(2 * sign, +1)
    truth.add_incoming(sign, -1)
    m_t = kin.breit_wigner(rng, tr.M_TOP, tr.G_TOP, n, 150.0, 195.0)
    system = _recoil_system(rng, n, m_t + tr.M_B + 20.0 + rng.gamma(1.5, 70.0, n), tune)
    top, bbar = kin.two_body(system, m_t, tr.M_B, rng)
    t_slot = truth.add_gen(top, 6 * sign, q_in, tr.FLAGS_HARD, mass=m_t)
    truth.add_gen(bbar, -5 * sign, q_in, tr.FLAGS_HARD)
    truth.add_jet(bbar, tr.BOTTOM)
    _single_top_decay(truth, rng, top, t_slot, sign, n)
    return truth


def make_single_top_tw(n: int, rng, tune: Tune) -> tr.Truth:
    truth = tr.Truth(n)
    sign = np.where(rng.uniform(size=n) < 0.5, 1, -1)
    g = truth.add_incoming(21, +1)
    b_in = truth.add_incoming(5 * sign, -1)
    m_t = kin.breit_wigner(rng, tr.M_TOP, tr.G_TOP, n, 150.0, 195.0)
    m_w = kin.breit_wigner(rng, tr.M_W, tr.G_W, n, 60.0, 100.0)
    m_w2 = kin.breit_wigner(rng, tr.M_W, tr.G_W, n, 60.0, 100.0)
    system = _recoil_system(rng, n, m_t + m_w + 10.0 + rng.gamma(1.4, 80.0, n), tune)
    top, w = kin.two_body(system, m_t, m_w, rng)
    t_slot = truth.add_gen(top, 6 * sign, b_in, tr.FLAGS_HARD, mass=m_t)
    w_slot = truth.add_gen(w, -24 * sign, g, tr.FLAGS_HARD, mass=m_w)
    mode_t, mode_w = tr.draw_w_pair_modes(rng, n, at_least_one_leptonic=True)
    tr.top_decay(truth, top, t_slot, sign, m_w2, mode_t, rng)
    tr.w_decay(truth, w, w_slot, -sign, mode_w, rng)
    spectator = kin.from_pt_eta_phi_m(
        5.0 + rng.exponential(25.0, n), rng.normal(0, 2.0, n), rng.uniform(-np.pi, np.pi, n), 0.0
    )
    truth.add_gen(spectator, -5 * sign, -1, tr.PROMPT | tr.FROM_HARD | tr.FIRST_COPY | tr.LAST_COPY)
    truth.add_jet(spectator, tr.BOTTOM)
    return truth


def make_wjets(n: int, rng, tune: Tune) -> tr.Truth:
    truth = tr.Truth(n)
    sign = np.where(rng.uniform(size=n) < 0.58, 1, -1)  # W+ : W− ≈ 1.4 : 1
    q1 = truth.add_incoming(2 * sign, +1)
    truth.add_incoming(sign, -1)
    extra = rng.geometric(1.0 - WJETS_ALPHA, n) - 1
    n_partons = np.minimum(WJETS_MIN_PARTONS + extra, WJETS_MAX_PARTONS)
    m_w = kin.breit_wigner(rng, tr.M_W, tr.G_W, n, 60.0, 100.0)
    phi_w = rng.uniform(-np.pi, np.pi, n)
    w = kin.from_m_pt_y_phi(m_w, 15.0 + rng.gamma(2.0, 30.0, n), rng.normal(0, 1.6, n), phi_w)
    w_slot = truth.add_gen(w, 24 * sign, q1, tr.FLAGS_HARD, mass=m_w)
    tr.w_decay(truth, w, w_slot, sign, tr.draw_w_modes(rng, n, leptonic_only=True), rng)
    # heavy flavour: W+bb̄ (10 %: partons 1, 2 are b), W+c (10 %: parton 1 is c); else g / light
    u = rng.uniform(size=n)
    wbb, wc = u < 0.10, (u >= 0.10) & (u < 0.20)
    for i in range(WJETS_MAX_PARTONS):
        pt = 20.0 + rng.exponential(50.0 / (1 + 0.25 * i), n)
        p4 = kin.from_pt_eta_phi_m(pt, rng.normal(0, 1.7, n), rng.uniform(-np.pi, np.pi, n), 0.0)
        flav = np.where(rng.uniform(size=n) < 0.55, tr.GLUON, tr.LIGHT)
        if i in (0, 1):
            flav = np.where(wbb, tr.BOTTOM, flav)
        if i == 0:
            flav = np.where(wc, tr.CHARM, flav)
        valid = i < n_partons
        pdg = np.select([flav == tr.BOTTOM, flav == tr.CHARM, flav == tr.GLUON], [5, 4, 21], 1)
        truth.add_gen(
            p4,
            pdg * np.where((i % 2 == 0) | (pdg == 21), 1, -1),
            -1,
            tr.PROMPT | tr.FROM_HARD | tr.FIRST_COPY | tr.LAST_COPY,
            valid=valid,
        )
        truth.add_jet(p4, flav, valid)
    return truth


MAKERS = {
    "ttbar": make_ttbar,
    "single_top_s_chan": make_single_top_s,
    "single_top_t_chan": make_single_top_t,
    "single_top_tW": make_single_top_tw,
    "wjets": make_wjets,
}
