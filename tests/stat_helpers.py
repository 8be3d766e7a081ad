"""Generated inputs for the statistics tests: an AGC-like histograms.root and small models."""

from __future__ import annotations

from pathlib import Path

import numpy as np

EDGES = np.linspace(50.0, 550.0, 26)
CENTERS = (EDGES[:-1] + EDGES[1:]) / 2
# (region, process) -> (yield in 50-550 GeV, peak, width, weight per event)
YIELDS = {
    ("4j1b", "ttbar"): (21080.0, 300.0, 90.0, 0.084),
    ("4j1b", "wjets"): (5152.0, 240.0, 90.0, 1.9),
    ("4j1b", "single_top_tW"): (1585.0, 280.0, 90.0, 0.13),
    ("4j1b", "single_top_t_chan"): (464.0, 260.0, 80.0, 0.45),
    ("4j1b", "single_top_s_chan"): (7.0, 250.0, 80.0, 0.02),
    ("4j2b", "ttbar"): (50105.0, 180.0, 60.0, 0.084),
    ("4j2b", "wjets"): (1592.0, 220.0, 100.0, 1.9),
    ("4j2b", "single_top_tW"): (2167.0, 200.0, 80.0, 0.13),
    ("4j2b", "single_top_t_chan"): (866.0, 210.0, 90.0, 0.45),
    ("4j2b", "single_top_s_chan"): (17.5, 200.0, 80.0, 0.02),
}
COMMON = ["pt_scale_up", "pt_res_up"] + [f"btag_var_{i}_{d}" for i in range(4)
                                         for d in ("up", "down")]
TTBAR_ONLY = ["scaledown", "scaleup", "ME_var", "PS_var"]
WJETS_ONLY = ["scale_var_up", "scale_var_down"]


def _shape(peak: float, width: float, skew: float = 0.0) -> np.ndarray:
    x = (CENTERS - peak) / width
    s = np.exp(-0.5 * x**2) * (1 + skew * x) + 0.02
    return np.clip(s, 1e-3, None) / np.clip(s, 1e-3, None).sum()


def _variation(rng, base: np.ndarray, variation: str, peak: float, width: float) -> np.ndarray:
    if variation == "pt_scale_up":
        return base.sum() * 1.05 * _shape(peak * 1.03, width * 1.03)
    if variation == "pt_res_up":
        return base.sum() * 1.01 * _shape(peak, width * 1.05)
    if variation.startswith("btag_var_"):
        i, sign = int(variation[9]), (1 if variation.endswith("up") else -1)
        return base * (1 + sign * 0.075 * (CENTERS / 400) / (i + 1))
    if variation in ("scale_var_up", "scale_var_down"):
        return base * (1.025 if variation.endswith("up") else 0.975)
    factor = {"scaledown": 1.04, "scaleup": 0.97, "ME_var": 0.94, "PS_var": 0.95}[variation]
    tilt = {"scaledown": 0.1, "scaleup": -0.1, "ME_var": 0.15, "PS_var": -0.05}[variation]
    noise = 1 + 0.02 * rng.standard_normal(len(base))
    return base.sum() * factor * _shape(peak, width, tilt) * noise


def agc_histograms(seed: int = 7, scale: float = 1.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{name: (values, variances)} with 27 entries (flow included), AGC names and proportions."""
    rng = np.random.default_rng(seed)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def put(name: str, inner: np.ndarray, weight: float) -> None:
        values = np.zeros(27)
        values[1:-1] = inner
        values[0], values[-1] = 0.01 * inner.sum(), 0.03 * inner.sum()
        out[name] = (values, values * weight)

    for (region, process), (total, peak, width, w) in YIELDS.items():
        base = scale * total * _shape(peak, width) * (1 + 0.01 * rng.standard_normal(25))
        put(f"{region}_{process}", base, w)
        variations = COMMON + (TTBAR_ONLY if process == "ttbar" else []) + (
            WJETS_ONLY if process == "wjets" else [])
        for v in variations:
            put(f"{region}_{process}_{v}", _variation(rng, base, v, peak, width), w)
    from reanimate.analyses.agc.output import pseudodata

    for region in ("4j1b", "4j2b"):
        out[f"{region}_pseudodata"] = tuple(pseudodata(out, region, 27))
    return out


def write_histograms(path: Path, hists: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """Write TH1D histograms (flow and sumw2 kept) with uproot."""
    import hist
    import uproot

    with uproot.recreate(path) as f:
        for name, (values, variances) in sorted(hists.items()):
            h = hist.Hist(hist.axis.Regular(25, 50.0, 550.0), storage=hist.storage.Weight())
            view = h.view(flow=True)
            view.value, view.variance = values, variances
            f[name] = h
    return path


def write_agc_histograms(path: Path, seed: int = 7) -> Path:
    return write_histograms(path, agc_histograms(seed))


def ml_histograms(seed: int = 3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A few ML-feature histograms named {feature}_{process}[_{variation}] (25 bins)."""
    rng = np.random.default_rng(seed)
    out = {}
    for feature in ("deltar_leptonbtoplep", "mass_w1w2", "btag_w1", "qgl_btoplep"):
        for process, total in (("ttbar", 5000.0), ("wjets", 300.0), ("single_top_tW", 200.0)):
            inner = total * _shape(300.0, 120.0) * (1 + 0.05 * rng.standard_normal(25))
            values = np.concatenate([[0.0], inner, [0.0]])
            out[f"{feature}_{process}"] = (values, values * 0.1)
            out[f"{feature}_{process}_pt_scale_up"] = (values * 1.02, values * 0.1)
    return out


def small_workspace() -> dict:
    """Two channels, three samples, every pyhf modifier type the converter handles."""
    return {
        "channels": [
            {"name": "SR", "samples": [
                {"name": "signal", "data": [5.0, 10.0, 4.0], "modifiers": [
                    {"name": "mu", "type": "normfactor", "data": None},
                    {"name": "lumi", "type": "lumi", "data": None},
                    {"name": "Jet energy scale", "type": "normsys",
                     "data": {"hi": 1.05, "lo": 0.93}},
                    {"name": "Jet energy scale", "type": "histosys",
                     "data": {"hi_data": [5.5, 10.2, 3.6], "lo_data": [4.6, 9.9, 4.3]}},
                    {"name": "staterror_SR", "type": "staterror", "data": [0.5, 0.8, 0.4]},
                ]},
                {"name": "background", "data": [50.0, 40.0, 30.0], "modifiers": [
                    {"name": "lumi", "type": "lumi", "data": None},
                    {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.85}},
                    {"name": "Jet energy scale", "type": "histosys",
                     "data": {"hi_data": [52.0, 41.0, 29.0], "lo_data": [48.5, 39.0, 31.5]}},
                    {"name": "staterror_SR", "type": "staterror", "data": [3.0, 2.5, 2.0]},
                ]},
            ]},
            {"name": "CR", "samples": [
                {"name": "background", "data": [100.0, 80.0], "modifiers": [
                    {"name": "lumi", "type": "lumi", "data": None},
                    {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.85}},
                    {"name": "cr_shape", "type": "shapefactor", "data": None},
                    {"name": "staterror_CR", "type": "staterror", "data": [5.0, 4.0]},
                ]},
                {"name": "fakes", "data": [20.0, 25.0], "modifiers": [
                    {"name": "fake uncorr", "type": "shapesys", "data": [4.0, 6.0]},
                ]},
            ]},
        ],
        "observations": [{"name": "SR", "data": [58.0, 55.0, 33.0]},
                         {"name": "CR", "data": [117.0, 110.0]}],
        "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": [
            {"name": "mu", "bounds": [[0.0, 5.0]], "inits": [1.0]},
            {"name": "lumi", "auxdata": [1.0], "sigmas": [0.02], "bounds": [[0.9, 1.1]],
             "inits": [1.0]},
            {"name": "cr_shape", "inits": [1.0, 1.0], "bounds": [[0.5, 2.0], [0.5, 2.0]]},
        ]}}],
        "version": "1.0.0",
    }
