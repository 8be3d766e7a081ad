"""AGC systematic variations (docs/agc-analysis.md §6) and the deterministic jet smearing.

The reference draws the jet-resolution factors unseeded. Here every factor is a pure function
of (seed, run, luminosityBlock, event, jet index): a splitmix64-style counter-based hash in
numpy uint64 arithmetic gives two uniform numbers per jet, Box–Muller turns them into a normal
number. Nothing depends on global RNG state, chunking, order or worker count. The factors are
rounded to a multiple of 2^-24 so that a last-bit difference between libm implementations of
log/cos on different machines cannot change a result (it would need to fall within ~1e-16 of a
rounding boundary).
"""

from __future__ import annotations

import numpy as np

from reanimate.analyses.agc.objects import Events, RegionSelection

PT_VARIATIONS: tuple[str, ...] = ("nominal", "pt_scale_up", "pt_res_up")
PT_SCALE_UP = 1.03
PT_RES_SIGMA = 0.05
BTAG_VARIATIONS: tuple[str, ...] = tuple(
    f"btag_var_{i}_{d}" for i in range(4) for d in ("up", "down")
)
WJETS_SCALE: dict[str, float] = {"scale_var_up": 1.025, "scale_var_down": 0.975}

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_QUANTUM = float(2**24)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser applied elementwise to a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def _uniform(bits: np.ndarray) -> np.ndarray:
    """53 random bits -> float64 uniform in the open interval (0, 1)."""
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def event_keys(seed: int, run, lumi, event) -> np.ndarray:
    """One uint64 key per event from (seed, run, luminosityBlock, event)."""
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be in [0, 2^64), got {seed}")
    key = splitmix64(np.full(len(event), int(seed), dtype=np.uint64))
    for part in (run, lumi, event):
        key = splitmix64(key ^ np.asarray(part).astype(np.uint64))
    return key


def normal_per_object(seed: int, run, lumi, event, counts, where=None) -> np.ndarray:
    """Standard-normal numbers, one per object, flat; object j of each event gets its own.

    Object j of an event with key k draws its two uniforms from the splitmix64 stream of k:
    splitmix64(k + 2j·φ) and splitmix64(k + (2j+1)·φ), φ the golden-ratio increment.
    ``where`` (flat mask) computes only those objects' numbers (the same values), NaN elsewhere.
    """
    counts = np.asarray(counts, dtype=np.int64)
    keys = np.repeat(event_keys(seed, run, lumi, event), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    step = (2 * (np.arange(counts.sum(), dtype=np.int64) - starts)).astype(np.uint64)
    if where is not None:
        out = np.full(len(keys), np.nan)
        out[where] = _normal(keys[where], step[where])
        return out
    return _normal(keys, step)


def _normal(keys: np.ndarray, step: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        base = keys + step * _GOLDEN
        u1 = _uniform(splitmix64(base))
        u2 = _uniform(splitmix64(base + _GOLDEN))
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def resolution_factors(seed: int, ev: Events, where=None) -> np.ndarray:
    """Flat per-jet factors r ~ Normal(1, 0.05), deterministic in the event identity.

    ``where`` (flat jet mask): compute only those jets' factors (the others are 1).
    """
    z = normal_per_object(seed, ev.run, ev.luminosityBlock, ev.event, ev.jets.counts, where)
    r = np.round((1.0 + PT_RES_SIGMA * z) * _QUANTUM) / _QUANTUM
    return r if where is None else np.where(where, r, 1.0)


def jet_pt(ev: Events, variation: str, seed: int, where=None) -> np.ndarray:
    """The flat jet pT (float64) under a pT variation; jets are not re-sorted.

    ``where``: the jets whose pT matters (the smearing skips the others, which keep theirs).
    """
    pt = ev.jet_pt64
    if variation == "nominal":
        return pt
    if variation == "pt_scale_up":
        return pt * PT_SCALE_UP
    if variation == "pt_res_up":
        return pt * resolution_factors(seed, ev, where)
    raise ValueError(f"unknown jet-pT variation {variation!r}")


def btag_weights(weights: np.ndarray, selection: RegionSelection) -> dict[str, np.ndarray]:
    """btag_var_{i}_{up,down}: weight × (1 ± 0.075 · pT_i / 50), pT_i the nominal pT of jet i."""
    pt_nominal = selection.events.jet_pt64[selection.jet_index]
    starts = selection.jet_starts
    out = {}
    for i in range(4):
        pt_i = pt_nominal[starts + i]
        for direction, sign in (("up", 1.0), ("down", -1.0)):
            out[f"btag_var_{i}_{direction}"] = weights * (1.0 + sign * 0.075 * pt_i / 50.0)
    return out
