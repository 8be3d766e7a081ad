"""Template treatments of the model builder (reanimate.statistics.treatments, histfactory).

Tiny hand-made ModelConfigs over a dict-based lookup (10 bins on 0-100, seeded noise only):
empty and one-sided variations (drop / floor), pruning, smoothing, staterror bins, bin
merging, negative and empty nominals, the fit's non-convergence report, the config checks.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pyhf
import pytest

from reanimate.errors import ReanimateError
from reanimate.statistics import fitting, histfactory, treatments
from reanimate.statistics.histfactory import Channel, ModelConfig, NormFactor, Sample, Systematic
from reanimate.statistics.treatments import Treatments

EDGES = np.linspace(0.0, 100.0, 11)
X = 0.5 * (EDGES[:-1] + EDGES[1:])
TILT = np.linspace(-1.0, 1.0, 10)
FIXED_BINS = Treatments(max_mc_rel_error=None)


def bell(total: float, peak: float = 50.0, width: float = 25.0) -> np.ndarray:
    s = np.exp(-0.5 * ((X - peak) / width) ** 2) + 0.05
    return total * s / s.sum()


def lookup_of(hists: dict, edges=EDGES):
    """lookup(region, process, variation) over {(region, process, variation): values};
    the variances are values * 0.1 (weights 0.1) unless a (values, variances) pair is given."""

    def lookup(region, process, variation):
        found = hists.get((region, process, variation))
        if found is None:
            return None
        values, variances = found if isinstance(found, tuple) else (found, 0.1 * np.abs(found))
        return np.asarray(values, float), np.asarray(variances, float), np.asarray(edges)

    return lookup


def config(samples=("sig", "bkg"), channels=("SR",), systematics=(), t=FIXED_BINS,
           staterror=True, bounds=(0.0, 10.0), edges=EDGES) -> ModelConfig:
    return ModelConfig(
        measurement="meas", poi="mu",
        channels=tuple(Channel(c, c, tuple(float(e) for e in edges)) for c in channels),
        samples=tuple(Sample(s, s) for s in samples), data_process="data",
        normfactors=(NormFactor("mu", ("sig",), bounds=bounds),),
        systematics=tuple(systematics), staterror=staterror, treatments=t)


def three_samples(channels=("SR", "CR")) -> dict:
    """sig, bkg and a minor sample with seeded Poisson data in each channel."""
    rng = np.random.default_rng(11)
    hists = {}
    for region, peak in zip(channels, (50.0, 30.0), strict=False):
        for process, total in (("sig", 300.0), ("bkg", 1000.0), ("minor", 40.0)):
            hists[region, process, None] = bell(total, peak if process == "sig" else 60.0)
        expected = sum(hists[region, p, None] for p in ("sig", "bkg", "minor"))
        hists[region, "data", None] = rng.poisson(expected).astype(float)
    return hists


def record(report, systematic, sample, channel="SR") -> dict:
    return next(r for r in report["systematics"] if (r["systematic"], r["sample"],
                                                     r["channel"]) == (systematic, sample, channel))


def modifiers(ws, sample, channel="SR") -> dict:
    ch = next(c for c in ws["channels"] if c["name"] == channel)
    mods = next(s for s in ch["samples"] if s["name"] == sample)["modifiers"]
    return {(m["name"], m["type"]): m["data"] for m in mods}


# ------------------------------------------------------------------ 1. empty variations


def empty_variation_model(rule: str, floor: float = 0.01):
    """jes: the minor sample's variations absent in SR; zero: its up side present but all
    zeros in CR; gen: one-sided, doubling its yield in SR (so down = 2 - 2 = 0)."""
    hists = three_samples()
    for region in ("SR", "CR"):
        for p in ("sig", "bkg", "minor"):
            nominal = hists[region, p, None]
            if not (p == "minor" and region == "SR"):
                hists[region, p, "jes_up"] = nominal * 1.04 * (1 + 0.02 * TILT)
                hists[region, p, "jes_down"] = nominal * 0.96 * (1 - 0.02 * TILT)
            zero_up = np.zeros(10) if (p, region) == ("minor", "CR") else nominal * 1.03
            hists[region, p, "zero_up"], hists[region, p, "zero_down"] = zero_up, nominal * 0.95
            hists[region, p, "gen_up"] = nominal * (2.0 if p == "minor" else 1.03)
    systs = (Systematic("jes", up="jes_up", down="jes_down"),
             Systematic("zero", up="zero_up", down="zero_down"), Systematic("gen", up="gen_up"))
    t = Treatments(empty_variation=rule, norm_floor=floor)
    return histfactory.build_model(config(("sig", "bkg", "minor"), ("SR", "CR"), systs, t),
                                   lookup_of(hists))


def test_empty_variations_dropped_and_the_model_fits():
    ws, report = empty_variation_model("drop")
    histfactory.validate(ws)
    cases = (("jes", "SR", "up factor 0"), ("zero", "CR", "up factor 0"),
             ("gen", "SR", "down factor 0; down = 2 - up"))
    for syst, channel, factor in cases:
        rec = record(report, syst, "minor", channel)
        assert (rec["normsys"], rec["histosys"]) == ("dropped", "dropped")
        assert "not positive" in rec["reason"] and factor in rec["reason"]
        assert not {k for k in modifiers(ws, "minor", channel) if k[0] == syst}
        assert (syst, "normsys") in modifiers(ws, "bkg", channel)  # the others keep theirs
    assert ("jes", "normsys") in modifiers(ws, "minor", "CR")
    assert "symmetrised" in record(report, "gen", "minor")["treatments"]
    assert fitting.fit_workspace(ws)["converged"]


def test_empty_variations_floored():
    ws, report = empty_variation_model("floor", floor=0.02)
    histfactory.validate(ws)
    for syst, channel, hi, lo in (("jes", "SR", 0.02, 0.02), ("zero", "CR", 0.02, 0.95),
                                  ("gen", "SR", 2.0, 0.02)):
        rec = record(report, syst, "minor", channel)
        assert rec["normsys"] == "kept" and "norm floored" in rec["treatments"]
        assert "floored at 0.02" in rec["reason"]
        data = modifiers(ws, "minor", channel)[syst, "normsys"]
        assert data["hi"] == pytest.approx(hi) and data["lo"] == pytest.approx(lo)
    assert "norm floored" not in record(report, "jes", "minor", "CR")["treatments"]
    assert fitting.fit_workspace(ws)["converged"]


# ---------------------------------------------------------------------------- 2. pruning


def test_small_effects_pruned_large_kept():
    hists = three_samples(("SR",))
    for p in ("sig", "bkg"):
        nominal = hists["SR", p, None]
        for name, size in (("tiny", 0.001), ("big", 0.05)):
            hists["SR", p, f"{name}_up"] = nominal * (1 + size) * (1 + size * TILT)
            hists["SR", p, f"{name}_down"] = nominal * (1 - size) * (1 - size * TILT)
    systs = [Systematic(n, up=f"{n}_up", down=f"{n}_down") for n in ("tiny", "big")]
    ws, report = histfactory.build_model(config(systematics=systs), lookup_of(hists))
    for p in ("sig", "bkg"):
        tiny, big = record(report, "tiny", p), record(report, "big", p)
        assert (tiny["normsys"], tiny["histosys"]) == ("pruned", "pruned")
        assert tiny["norm_effect"] < 0.005 <= big["norm_effect"]
        assert re.search(r"norm 0\.1\d% < 0\.50%; shape 0\.\d+% < 0\.50%", tiny["reason"])
        assert tiny["shape_effect"] < 0.005 <= big["shape_effect"]
        assert (big["normsys"], big["histosys"], big["reason"]) == ("kept", "kept", None)
        mods = modifiers(ws, p)
        assert ("big", "normsys") in mods and ("big", "histosys") in mods
        assert not {k for k in mods if k[0] == "tiny"}
    off = Treatments(max_mc_rel_error=None, prune_norm=0.0, prune_shape=0.0)
    ws, _ = histfactory.build_model(config(systematics=systs, t=off), lookup_of(hists))
    assert ("tiny", "histosys") in modifiers(ws, "bkg")


# -------------------------------------------------------------------------- 3. smoothing


def test_353h_twice_keeps_lines_and_constants_and_reduces_noise():
    line = 0.7 + 0.3 * np.arange(15)
    np.testing.assert_allclose(treatments.smooth_353h_twice(line), line, rtol=0, atol=1e-12)
    np.testing.assert_allclose(treatments.smooth_353h_twice(np.full(8, 1.3)), 1.3, atol=1e-12)
    true = 1.0 + 0.1 * np.sin(np.linspace(0.0, np.pi, 25))
    noisy = true + 0.02 * np.random.default_rng(5).standard_normal(25)
    smooth = treatments.smooth_353h_twice(noisy)
    rms = [float(np.sqrt(np.mean((y - true) ** 2))) for y in (noisy, smooth)]
    assert rms[1] < 0.7 * rms[0]
    assert np.sum(np.diff(smooth, 2) ** 2) < 0.2 * np.sum(np.diff(noisy, 2) ** 2)
    nominal = bell(500.0)
    shape = nominal * noisy[:10] * 1.1
    out = treatments.smooth_shape(nominal, shape)
    assert out.sum() == pytest.approx(shape.sum(), rel=1e-12) and not np.allclose(out, shape)


def test_smoothing_per_systematic_and_master_switch():
    hists = three_samples(("SR",))
    noise = 1 + 0.03 * np.random.default_rng(3).standard_normal(10)
    for p in ("sig", "bkg"):
        hists["SR", p, "var_up"] = hists["SR", p, None] * 1.05 * noise
    systs = (Systematic("smoothed", up="var_up", smooth=True), Systematic("raw", up="var_up"))
    ws, report = histfactory.build_model(config(systematics=systs), lookup_of(hists))
    assert "smoothed" in record(report, "smoothed", "bkg")["treatments"]
    assert "smoothed" not in record(report, "raw", "bkg")["treatments"]
    mods = modifiers(ws, "bkg")
    nominal = hists["SR", "bkg", None]
    raw_up = nominal * noise * nominal.sum() / (nominal * noise).sum()
    np.testing.assert_allclose(mods["raw", "histosys"]["hi_data"], raw_up, rtol=1e-12)
    smoothed = np.asarray(mods["smoothed", "histosys"]["hi_data"])
    assert np.sum(np.diff(smoothed / nominal, 2) ** 2) < np.sum(np.diff(raw_up / nominal, 2) ** 2)
    off = Treatments(max_mc_rel_error=None, smoothing=False)
    _, report = histfactory.build_model(config(systematics=systs, t=off), lookup_of(hists))
    assert not any("smoothed" in r["treatments"] for r in report["systematics"])


# ------------------------------------------------------------------------- 4. staterror


def test_staterror_skips_empty_and_precise_bins():
    bkg = np.r_[0.0, 0.0, 0.0, np.full(7, 50.0)]
    var = np.r_[0.0, 0.0, 0.0, 25.0, 25.0, np.ones(5)]  # 10 %, 10 %, then 2 %
    hists = {("SR", "bkg", None): (bkg, var), ("SR", "sig", None): (bkg * 0.1, var * 0.01),
             ("SR", "data", None): bkg + 1.0,
             ("CR", "bkg", None): (np.full(10, 100.0), np.ones(10)),  # all 1 %
             ("CR", "sig", None): (np.full(10, 1.0), np.zeros(10)), ("CR", "data", None): bell(1e3)}
    ws, report = histfactory.build_model(config(channels=("SR", "CR")), lookup_of(hists))
    histfactory.validate(ws)
    sr, cr = (next(c for c in report["channels"] if c["name"] == n) for n in ("SR", "CR"))
    assert sr["staterror"]["bins_with_parameter"] == 2
    why = {b["bin"]: b["reason"] for b in sr["staterror"]["bins_without"]}
    assert sorted(why) == [0, 1, 2, 5, 6, 7, 8, 9]
    assert all(why[i] == "no MC in the bin" for i in (0, 1, 2))
    assert all(why[i].startswith("relative MC uncertainty") and "< 5.00%" in why[i]
               for i in range(5, 10))
    model = pyhf.Workspace(ws).model()
    fixed = np.asarray(model.config.suggested_fixed())[model.config.par_slice("staterror_SR")]
    assert fixed.tolist() == [i not in (3, 4) for i in range(10)]
    assert cr["staterror"]["bins_with_parameter"] == 0
    assert len(cr["staterror"]["bins_without"]) == 10
    assert "staterror_CR" not in model.config.par_order
    assert not any(t == "staterror" for (_, t) in modifiers(ws, "bkg", "CR"))


# ----------------------------------------------------------------------- 5. bin merging


def passes(total, variance, max_rel) -> bool:
    return total > 0 and np.sqrt(variance) <= max_rel * total


@pytest.mark.parametrize("seed", range(6))
def test_merged_edges_subset_and_criterion(seed):
    rng = np.random.default_rng(seed)
    total = rng.gamma(1.0, 30.0, size=20) * (rng.random(20) > 0.2)
    variance = 2.0 * total  # one weight per event: merging more can only help
    edges = np.linspace(0.0, 200.0, 21)
    out = treatments.merged_edges(total, variance, edges, 0.2)
    assert out[0] == edges[0] and out[-1] == edges[-1] and set(out) <= set(edges.tolist())
    assert out == sorted(out) and len(set(out)) == len(out)
    index = np.searchsorted(edges, out)
    for lo, hi in zip(index[:-1], index[1:], strict=True):
        assert passes(total[lo:hi].sum(), variance[lo:hi].sum(), 0.2) or len(out) == 2
    if not passes(total.sum(), variance.sum(), 0.2):
        assert len(out) == 2


def test_merged_edges_limits():
    edges = list(range(11))
    assert treatments.merged_edges(np.full(10, 0.1), np.ones(10), edges, 0.2) == [0, 10]
    assert treatments.merged_edges(np.full(10, 1e3), np.ones(10), edges, 0.2) == edges


def test_merged_edges_lowest_bin_passes_when_possible():
    # the remainder [0, 1) joining [1, 2) alone would fail (0.221): it takes [2, 3) too
    total, variance = np.array([1.0, 100.0, 100.0]), np.array([100.0, 400.0, 1.0])
    out = treatments.merged_edges(total, variance, [0, 1, 2, 3], 0.2)
    assert out == [0, 3]
    assert passes(total.sum(), variance.sum(), 0.2)  # one bin would do
    index = np.searchsorted([0, 1, 2, 3], out)
    assert all(passes(total[a:b].sum(), variance[a:b].sum(), 0.2)
               for a, b in zip(index[:-1], index[1:], strict=True))


def test_build_model_merges_bins_and_rebins_the_data():
    rng = np.random.default_rng(2)
    bkg, sig = bell(200.0, peak=20.0, width=15.0), bell(20.0)
    data = rng.poisson(bkg + sig).astype(float)
    hists = {("SR", "bkg", None): (bkg, bkg), ("SR", "sig", None): (sig, sig),  # weights 1
             ("SR", "data", None): data}
    ws, report = histfactory.build_model(config(t=Treatments()), lookup_of(hists))
    edges = report["channels"][0]["edges"]
    assert report["channels"][0]["declared_edges"] == EDGES.tolist()
    assert 2 <= len(edges) < len(EDGES) and set(edges) <= set(EDGES.tolist())
    observed = ws["observations"][0]["data"]
    assert len(observed) == len(edges) - 1 and sum(observed) == pytest.approx(data.sum())
    np.testing.assert_allclose(observed, histfactory.rebin(data, EDGES, edges))
    total, index = bkg + sig, np.searchsorted(EDGES, edges)
    assert all(passes(total[a:b].sum(), total[a:b].sum(), 0.2)
               for a, b in zip(index[:-1], index[1:], strict=True))
    _, report = histfactory.build_model(config(), lookup_of(hists))
    assert report["channels"][0]["edges"] == report["channels"][0]["declared_edges"]


# ----------------------------------------------------------- 6. negative / empty nominals


def test_negative_bins_floored_and_empty_samples_dropped():
    bkg = bell(500.0)
    bkg[0] = -3.0
    hists = {("SR", "bkg", None): bkg, ("SR", "sig", None): bell(50.0),
             ("SR", "ghost", None): np.r_[-1.0, np.zeros(9)], ("SR", "data", None): bell(550.0),
             ("CR", "bkg", None): bell(500.0), ("CR", "sig", None): bell(5.0),
             ("CR", "data", None): bell(505.0)}  # no ghost in CR at all
    ws, report = histfactory.build_model(config(("sig", "bkg", "ghost"), ("SR", "CR")),
                                         lookup_of(hists))
    histfactory.validate(ws)
    status = {(r["channel"], r["sample"]): r for r in report["samples"]}
    assert "1 negative bin(s) floored at 0" in status["SR", "bkg"]["reason"]
    assert status["SR", "sig"]["reason"] is None and status["SR", "sig"]["status"] == "kept"
    for channel in ("SR", "CR"):
        assert status[channel, "ghost"]["status"] == "dropped"
        names = [s["name"] for s in next(c for c in ws["channels"]
                                         if c["name"] == channel)["samples"]]
        assert names == ["sig", "bkg"]
    data = next(s for s in ws["channels"][0]["samples"] if s["name"] == "bkg")["data"]
    assert data[0] == 0.0 and min(data) >= 0.0 and data[1:] == bkg[1:].tolist()


def test_unchanged_variation_of_a_floored_nominal_has_no_effect():
    bkg = bell(100.0)
    bkg[0] = -5.0
    hists = {("SR", "bkg", None): bkg, ("SR", "bkg", "same_up"): bkg, ("SR", "sig", None): bkg,
             ("SR", "sig", "same_up"): bkg, ("SR", "data", None): bell(100.0)}
    cfg = config(systematics=(Systematic("same", up="same_up"),))
    _, report = histfactory.build_model(cfg, lookup_of(hists))
    assert record(report, "same", "bkg")["norm_effect"] == 0.0


# ------------------------------------------------------------------------- 7. the fit


def one_bin_workspace(observed: float) -> dict:
    hists = {("SR", "sig", None): np.array([10.0]), ("SR", "bkg", None): np.array([100.0]),
             ("SR", "data", None): np.array([observed])}
    cfg = config(systematics=(Systematic("bkg_norm", hi=1.01, lo=0.99, samples=("bkg",)),),
                 staterror=False, bounds=(0.0, 1.2), edges=(0.0, 1.0))
    return histfactory.build_model(cfg, lookup_of(hists, edges=(0.0, 1.0)))[0]


def test_fit_step_names_a_nuisance_parameter_at_its_bound(tmp_path):
    (tmp_path / "ws.json").write_text(json.dumps(one_bin_workspace(1000.0)))  # mu <= 1.2
    argv = ["--workspace", tmp_path / "ws.json", "--results", tmp_path / "fit.json",
            "--significance", "false"]
    proc = subprocess.run([sys.executable, "-m", "reanimate.steps.fit", *map(str, argv)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "the fit did not converge" in lines[0]
    assert "parameters at a bound" in lines[0] and "bkg_norm" in lines[0]
    assert "results written" in lines[0]
    fit = json.loads((tmp_path / "fit.json").read_text())
    assert fit["converged"] is False and "bkg_norm" in fit["status"]["reason"]
    at = {b["name"]: b for b in fit["status"]["at_bounds"]}
    assert at["bkg_norm"]["bound"] == "upper" and at["bkg_norm"]["poi"] is False
    assert at["bkg_norm"]["value"] == pytest.approx(5.0, abs=1e-3)


def test_well_behaved_fit_converges():
    fit = fitting.fit_workspace(one_bin_workspace(105.0))
    assert fit["converged"] is True and fit["status"]["reason"] is None
    assert len(fit["status"]["attempts"]) >= 1 and fit["status"]["at_bounds"] == []
    assert fit["poi"]["value"] == pytest.approx(0.5, abs=0.05)


# --------------------------------------------------------------------- 8. config checks


@pytest.mark.parametrize("kwargs", [{"empty_variation": "bogus"}, {"prune_norm": -0.1},
                                    {"max_mc_rel_error": -1.0}, {"staterror_threshold": np.nan},
                                    {"shape_significance": -0.5}, {"norm_floor": -0.01}])
def test_treatments_refuse_bad_settings(kwargs):
    with pytest.raises(ReanimateError, match=next(iter(kwargs))):
        Treatments(**kwargs)
