"""The generator's truth record: GenPart rows, partons that become jets, prompt leptons.

Processes fill a :class:`Truth` slot by slot (every slot is a column over all events, with a
validity mask). GenPart rows follow the NanoAOD conventions the AGC ML truth matching relies on
(docs/agc-analysis.md §9): every top, W, quark and lepton of the hard process appears once, flagged
isFirstCopy and isLastCopy (statusFlags bit 13), with ``genPartIdxMother`` pointing at its top
or W; the incoming partons have mother −1 and pT 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reanimate.analyses.agc import kinematics as kin

# statusFlags bits (NanoAOD)
PROMPT, TAU_DECAY, PROMPT_TAU_DECAY, DIRECT_TAU_DECAY = 1 << 0, 1 << 2, 1 << 3, 1 << 4
HARD, FROM_HARD, BEFORE_FSR, FIRST_COPY, LAST_COPY = 1 << 7, 1 << 8, 1 << 11, 1 << 12, 1 << 13
LAST_BEFORE_FSR = 1 << 14
FLAGS_INCOMING = PROMPT | HARD | FROM_HARD | BEFORE_FSR | LAST_COPY
FLAGS_HARD = PROMPT | HARD | FROM_HARD | FIRST_COPY | LAST_COPY | LAST_BEFORE_FSR
FLAGS_TAU_PRODUCT = (
    TAU_DECAY | PROMPT_TAU_DECAY | DIRECT_TAU_DECAY | FROM_HARD | FIRST_COPY | LAST_COPY
)

# jet flavours used by the detector model
LIGHT, CHARM, BOTTOM, GLUON, TAU_HAD, PILEUP = 1, 4, 5, 21, 15, 0

# W decay modes and branching fractions (e, mu, tau, ud, cs)
W_E, W_MU, W_TAU, W_UD, W_CS = 0, 1, 2, 3, 4
W_BR = np.array([0.108, 0.108, 0.108, 0.338, 0.338])
W_LEPTONIC = W_BR[:3].sum()
M_W, G_W, M_TOP, G_TOP, M_B, M_C = 80.4, 2.1, 172.5, 1.4, 4.7, 1.5
INCOMING_ETA = 22000.0  # NanoAOD stores pT 0 and a huge |eta| for the incoming partons


@dataclass
class Truth:
    n: int
    gen: list = field(default_factory=list)  # (p4, pdg, mother, flags, mass, valid)
    jets: list = field(default_factory=list)  # (p4, flavour, valid)
    leptons: list = field(default_factory=list)  # (p4, pdg, valid)

    def _valid(self, valid):
        return np.ones(self.n, bool) if valid is None else valid

    def add_gen(self, p4, pdg, mother, flags, mass=None, valid=None) -> int:
        pdg = np.broadcast_to(np.asarray(pdg, np.int32), (self.n,))
        mother = np.broadcast_to(np.asarray(mother, np.int32), (self.n,))
        mass = np.zeros(self.n) if mass is None else np.broadcast_to(mass, (self.n,))
        self.gen.append(
            (p4, pdg, mother, np.full(self.n, flags, np.int32), mass, self._valid(valid))
        )
        return len(self.gen) - 1

    def add_incoming(self, pdg, sign: float) -> int:
        p4 = np.zeros((self.n, 4))
        p4[:, 2] = sign * 1.0  # direction only; stored with pT 0 (see gen_columns)
        p4[:, 3] = 1.0
        return self.add_gen(p4, pdg, -1, FLAGS_INCOMING)

    def add_jet(self, p4, flavour, valid=None) -> None:
        flavour = np.broadcast_to(np.asarray(flavour, np.int32), (self.n,))
        self.jets.append((p4, flavour, self._valid(valid)))

    def add_lepton(self, p4, pdg, valid=None) -> None:
        self.leptons.append((p4, np.broadcast_to(np.asarray(pdg), (self.n,)), self._valid(valid)))

    # -- GenPart columns --------------------------------------------------------------------
    def gen_columns(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(counts, flat GenPart fields): invalid rows dropped, mother indices remapped."""
        valid = np.stack([g[5] for g in self.gen], 1)
        new_index = np.cumsum(valid, axis=1) - 1
        idx = [np.flatnonzero(g[5]) for g in self.gen]
        evt = np.concatenate(idx)
        order = np.argsort(evt, kind="stable")  # slot-major → event-major, slots in order
        evt = evt[order]

        def flat(i):
            return np.concatenate([g[i][j] for g, j in zip(self.gen, idx, strict=True)])[order]

        p4, pdg, mother, flags, mass = (flat(i) for i in range(5))
        pt, eta, phi = kin.pt_eta_phi32(p4)
        incoming = (mother < 0) & ((flags & FLAGS_INCOMING) == FLAGS_INCOMING)
        eta = np.where(incoming, np.sign(p4[:, 2]) * INCOMING_ETA, eta)
        pt = np.where(incoming, 0.0, pt)
        phi = np.where(incoming, 0.0, phi)
        mother = np.where(mother >= 0, new_index[evt, np.maximum(mother, 0)], -1)
        fields = {
            "pt": pt,
            "eta": eta,
            "phi": phi,
            "mass": mass,
            "pdgId": pdg,
            "genPartIdxMother": mother,
            "statusFlags": flags,
        }
        return valid.sum(1), fields


def top_decay(truth: Truth, top_p4, top_slot: int, sign, m_w, w_mode, rng) -> None:
    """t → W b, then the W decay; ``sign`` is +1 for t, −1 for t̄ (per event)."""
    w_p4, b_p4 = kin.two_body(top_p4, m_w, M_B, rng)
    w_slot = truth.add_gen(w_p4, 24 * sign, top_slot, FLAGS_HARD, mass=m_w)
    truth.add_gen(b_p4, 5 * sign, top_slot, FLAGS_HARD)
    truth.add_jet(b_p4, BOTTOM)
    w_decay(truth, w_p4, w_slot, sign, w_mode, rng)


def draw_w_modes(rng, n: int, leptonic_only: bool = False) -> np.ndarray:
    p = W_BR.copy()
    if leptonic_only:
        p[3:] = 0.0
    return rng.choice(5, size=n, p=p / p.sum())


def draw_w_pair_modes(rng, n: int, at_least_one_leptonic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Decay modes of two W bosons; optionally conditioned on at least one W → ℓν."""
    joint = np.outer(W_BR, W_BR)
    if at_least_one_leptonic:
        joint[3:, 3:] = 0.0
    idx = rng.choice(25, size=n, p=(joint / joint.sum()).ravel())
    return idx // 5, idx % 5


def pair_filter_efficiency() -> float:
    return float(1.0 - (1.0 - W_LEPTONIC) ** 2)


def w_decay(truth: Truth, w_p4, w_slot: int, sign, mode, rng) -> None:
    """W → ℓν (ℓ = e, μ, τ; τ → e/μ or hadrons) or W → q q̄' (ud, cs)."""
    n = truth.n
    sign = np.broadcast_to(np.asarray(sign), (n,))
    leptonic = mode <= W_TAU
    m1 = np.where(mode == W_CS, M_C, 0.0)
    d1, d2 = kin.two_body(w_p4, m1, 0.0, rng)
    # d1: charged lepton (W+ → ℓ+ : pdg −11) or up-type quark; d2: neutrino or down-type anti-quark
    lep_pdg = np.array([11, 13, 15, 2, 4])[mode]
    pdg1 = np.where(leptonic, -lep_pdg * sign, lep_pdg * sign)
    pdg2 = np.where(leptonic, (lep_pdg + 1) * sign, -np.array([0, 0, 0, 1, 3])[mode] * sign)
    s1 = truth.add_gen(d1, pdg1, w_slot, FLAGS_HARD)
    truth.add_gen(d2, pdg2, w_slot, FLAGS_HARD)
    hadronic = ~leptonic
    truth.add_jet(d1, np.where(mode == W_CS, CHARM, LIGHT), hadronic)
    truth.add_jet(d2, LIGHT, hadronic)
    truth.add_lepton(d1, np.abs(lep_pdg), (mode == W_E) | (mode == W_MU))
    # tau: 35 % to e/μ (visible lepton carries a fraction of the momentum), else a tau jet
    is_tau = mode == W_TAU
    u = rng.uniform(size=n)
    tau_lep = is_tau & (u < 0.35)
    frac = rng.uniform(0.2, 0.9, n)[:, None]
    vis = d1 * frac
    vis_pdg = np.where(u < 0.178, 11, 13)
    truth.add_gen(vis, np.where(tau_lep, -vis_pdg * sign, 0), s1, FLAGS_TAU_PRODUCT, valid=tau_lep)
    truth.add_lepton(vis, vis_pdg, tau_lep)
    truth.add_jet(d1 * rng.uniform(0.4, 0.9, n)[:, None], TAU_HAD, is_tau & ~tau_lep)
