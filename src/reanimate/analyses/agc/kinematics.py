"""Vectorised four-vector helpers for the sample generator (numpy, arrays of shape (..., 4)).

A four-vector is (px, py, pz, E) in GeV along the last axis. Every function works on whole
columns of events at once; randomness always comes from the ``rng`` the caller passes.
"""

from __future__ import annotations

import numpy as np


def from_pt_eta_phi_m(pt, eta, phi, m) -> np.ndarray:
    pz = pt * np.sinh(eta)
    e = np.sqrt(pt * pt + pz * pz + m * m)
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), pz, e], axis=-1)


def from_m_pt_y_phi(m, pt, y, phi) -> np.ndarray:
    """Four-vector of a system of mass m, transverse momentum pt, rapidity y, azimuth phi."""
    mt = np.sqrt(m * m + pt * pt)
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y), mt * np.cosh(y)], -1)


def pt_eta_phi_m(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    px, py, pz, e = p[..., 0], p[..., 1], p[..., 2], p[..., 3]
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.where(pt > 0, pz / np.where(pt > 0, pt, 1.0), 0.0))
    m2 = e * e - px * px - py * py - pz * pz
    return pt, eta, np.arctan2(py, px), np.sqrt(np.maximum(m2, 0.0))


def pt_eta_phi32(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pT, η, φ in float32 (enough for stored objects; about twice as fast as float64)."""
    q = p[..., :3].astype(np.float32)
    pt = np.hypot(q[..., 0], q[..., 1])
    safe = np.where(pt > 0, pt, np.float32(1))
    eta = np.where(pt > 0, np.arcsinh(q[..., 2] / safe), np.float32(0))
    return pt, eta, np.arctan2(q[..., 1], q[..., 0])


def boost(p: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Boost ``p`` (given in the rest frame of ``parent``) into the frame where parent is given."""
    beta = parent[..., :3] / parent[..., 3:4]
    b2 = np.sum(beta * beta, axis=-1)
    gamma = 1.0 / np.sqrt(np.maximum(1.0 - b2, 1e-12))
    bp = np.sum(beta * p[..., :3], axis=-1)
    coef = np.where(b2 > 0, (gamma - 1.0) * bp / np.where(b2 > 0, b2, 1.0), 0.0) + gamma * p[..., 3]
    out = np.empty_like(p)
    out[..., :3] = p[..., :3] + coef[..., None] * beta
    out[..., 3] = gamma * (p[..., 3] + bp)
    return out


def two_body(parent: np.ndarray, m1, m2, rng: np.random.Generator):
    """Isotropic two-body decay of ``parent`` (n, 4) into daughters of masses m1, m2."""
    n = parent.shape[0]
    mass = np.sqrt(np.maximum(np.einsum("ij,ij->i", parent * [-1, -1, -1, 1], parent), 0.0))
    m1 = np.broadcast_to(np.asarray(m1, float), (n,))
    m2 = np.broadcast_to(np.asarray(m2, float), (n,))
    s = mass * mass
    pstar2 = (s - (m1 + m2) ** 2) * (s - (m1 - m2) ** 2) / (4.0 * np.maximum(s, 1e-12))
    pstar = np.sqrt(np.maximum(pstar2, 0.0))
    cos = rng.uniform(-1.0, 1.0, n)
    sin = np.sqrt(1.0 - cos * cos)
    phi = rng.uniform(-np.pi, np.pi, n)
    direction = np.stack([sin * np.cos(phi), sin * np.sin(phi), cos], -1)
    d1 = np.concatenate([pstar[:, None] * direction, np.sqrt(pstar2.clip(0) + m1 * m1)[:, None]], 1)
    d2 = np.concatenate(
        [-pstar[:, None] * direction, np.sqrt(pstar2.clip(0) + m2 * m2)[:, None]], 1
    )
    return boost(d1, parent), boost(d2, parent)


def breit_wigner(rng: np.random.Generator, m0: float, width: float, n: int, lo: float, hi: float):
    """Cauchy (non-relativistic Breit–Wigner) masses truncated to [lo, hi], by inverse CDF."""
    flo = np.arctan(2.0 * (lo - m0) / width) / np.pi + 0.5
    fhi = np.arctan(2.0 * (hi - m0) / width) / np.pi + 0.5
    u = rng.uniform(flo, fhi, n)
    return m0 + 0.5 * width * np.tan(np.pi * (u - 0.5))


def delta_phi(a, b):
    return (a - b + np.pi) % (2 * np.pi) - np.pi
