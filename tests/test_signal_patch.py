"""The signal in the HistFactory builder: the full build with a signal, and the JSON Patch that
adds the same signal to the model built without it (on the generated AGC-like histograms)."""

from __future__ import annotations

import copy

import jsonpatch
import numpy as np
import pytest
from stat_helpers import CENTERS, COMMON, EDGES, agc_histograms

from reanimate.analyses.agc import statmodel_config
from reanimate.errors import ReanimateError
from reanimate.statistics import histfactory
from reanimate.statistics.treatments import Treatments


def signal_histograms(scale: float = 1.0, regions=("4j1b", "4j2b")) -> dict:
    """A resonance-like signal near the top of the range, with the common variations."""
    out = {}
    rng = np.random.default_rng(3)
    for region in regions:
        base = scale * 40.0 * np.exp(-0.5 * ((CENTERS - 450.0) / 60.0) ** 2)
        base *= 1 + 0.05 * rng.standard_normal(len(base))
        for variation in [None, *COMMON]:
            factor = 1.0 if variation is None else 1.0 + 0.02 * rng.standard_normal()
            values = np.zeros(27)
            values[1:-1] = base * factor * (1 + 0.01 * rng.standard_normal(len(base)))
            name = f"{region}_signal" + (f"_{variation}" if variation else "")
            out[name] = (values, values * 0.05)
    return out


def lookup_of(hists: dict):
    def find(region, process, variation):
        found = hists.get(f"{region}_{process}" + (f"_{variation}" if variation else ""))
        if found is None:
            return None
        return found[0][1:-1], found[1][1:-1], EDGES

    return find


def signal_config(treatments: Treatments = statmodel_config.TREATMENTS, **kw):
    return statmodel_config.config(treatments, statmodel_config.signal(**kw))


def without_signal(ws: dict, sample: str = "signal") -> dict:
    """The workspace with the signal taken out again: samples, mu_signal, POI back."""
    ws = copy.deepcopy(ws)
    for ch in ws["channels"]:
        ch["samples"] = [s for s in ch["samples"] if s["name"] != sample]
    config = ws["measurements"][0]["config"]
    config["poi"] = statmodel_config.POI
    config["parameters"] = [p for p in config["parameters"] if p["name"] != "mu_signal"]
    return ws


@pytest.mark.parametrize("treatments", [statmodel_config.TREATMENTS, Treatments.none(),
                                        Treatments(empty_variation="floor", prune_norm=0.05)],
                         ids=["defaults", "untreated", "floor-prune"])
def test_patch_equals_the_full_build_and_the_backgrounds_are_unchanged(treatments):
    background = agc_histograms(scale=0.05)
    both = {**background, **signal_histograms()}
    ws, report = histfactory.build_model(statmodel_config.config(treatments),
                                         lookup_of(background))
    full, full_report = histfactory.build_model(signal_config(treatments), lookup_of(both))
    ops = histfactory.signal_patch(ws, report, signal_config(treatments),
                                   lookup_of(signal_histograms()))
    assert jsonpatch.apply_patch(ws, ops) == full
    assert without_signal(full) == ws
    # the report: the backgrounds' part as before, the signal's rows after them
    assert full_report["channels"] == report["channels"]
    assert [r for r in full_report["samples"] if r["sample"] != "signal"] == report["samples"]
    assert [r for r in full_report["systematics"] if r["sample"] != "signal"] == \
        report["systematics"]
    assert full_report["signal"] == {"sample": "signal", "process": "signal", "poi": "mu_signal"}
    histfactory.validate(full)
    measurement = full["measurements"][0]["config"]
    assert measurement["poi"] == "mu_signal"
    assert {p["name"]: p["bounds"] for p in measurement["parameters"]} == {
        "ttbar_norm": [[0.0, 10.0]], "mu_signal": [[0.0, 10.0]]}
    for channel in full["channels"]:
        signal = channel["samples"][-1]
        assert signal["name"] == "signal"
        names = [m["name"] for m in signal["modifiers"]]
        assert names[0] == "mu_signal" and names[-1].startswith("staterror_")
        assert set(names) <= {"mu_signal", *statmodel_config.SIGNAL_SYSTEMATICS,
                              f"staterror_{channel['name']}"}
        assert "luminosity" in names


def test_the_signal_gets_the_backgrounds_treatments():
    """Smoothing and pruning decide on the signal's own templates, with the same settings."""
    both = {**agc_histograms(scale=0.05), **signal_histograms()}
    _, report = histfactory.build_model(signal_config(), lookup_of(both))
    rows = [r for r in report["systematics"] if r["sample"] == "signal"]
    assert {r["systematic"] for r in rows} == set(statmodel_config.SIGNAL_SYSTEMATICS) - {
        "luminosity"}
    jes = [r for r in rows if r["systematic"] == "jet_energy_scale"]
    assert all("smoothed" in r["treatments"] and "symmetrised" in r["treatments"] for r in jes)
    _, report = histfactory.build_model(signal_config(Treatments(prune_norm=1.0)),
                                        lookup_of(both))
    rows = [r for r in report["systematics"] if r["sample"] == "signal"]
    assert rows and all(r["normsys"] == "pruned" for r in rows)


def test_staterror_bins_are_the_backgrounds_and_pyhf_adds_the_signals_sigma():
    import pyhf

    background = agc_histograms(scale=0.2)
    both = {**background, **signal_histograms(scale=3.0)}
    ws, report = histfactory.build_model(statmodel_config.config(), lookup_of(background))
    full, _ = histfactory.build_model(signal_config(), lookup_of(both))
    model = pyhf.Workspace(full).model()
    for channel, info in zip(full["channels"], report["channels"], strict=True):
        stat = info["staterror"]
        without = {b["bin"] for b in stat["bins_without"]}
        assert without, "the test wants bins without a staterror parameter"
        mods = {s["name"]: next(m for m in s["modifiers"] if m["type"] == "staterror")
                for s in channel["samples"]}
        sigma2 = sum(np.square(m["data"]) for m in mods.values())
        nominal = sum(np.asarray(s["data"]) for s in channel["samples"])
        assert all(mods["signal"]["data"][b] == 0.0 for b in without)
        assert any(mods["signal"]["data"][b] > 0 for b in range(len(nominal)) if b not in without)
        parameter = model.config.param_set(stat["parameter"])
        for b in range(len(nominal)):  # pyhf fixes a bin without uncertainty (width 1)
            want = 1.0 if b in without else np.sqrt(sigma2[b]) / nominal[b]
            assert parameter.sigmas[b] == pytest.approx(want, rel=1e-12)
            assert parameter.suggested_fixed[b] == (b in without)


def test_a_channel_without_signal_events_leaves_the_signal_out_of_it():
    background = agc_histograms(scale=0.05)
    signal = signal_histograms(regions=("4j1b",))
    ws, report = histfactory.build_model(statmodel_config.config(), lookup_of(background))
    full, full_report = histfactory.build_model(signal_config(),
                                                lookup_of({**background, **signal}))
    decisions: dict = {}
    ops = histfactory.signal_patch(ws, report, signal_config(), lookup_of(signal), decisions)
    assert jsonpatch.apply_patch(ws, ops) == full
    assert [c["samples"][-1]["name"] for c in full["channels"]] == ["signal", "single_top_tW"]
    assert {"channel": "4j2b_SR", "sample": "signal", "status": "dropped",
            "reason": "no events in the fit range"} in decisions["samples"]
    assert [r for r in full_report["samples"] if r["sample"] == "signal"] == decisions["samples"]


def test_no_signal_anywhere_and_bad_configurations_are_refused():
    background = agc_histograms(scale=0.05)
    ws, report = histfactory.build_model(statmodel_config.config(), lookup_of(background))
    with pytest.raises(ReanimateError, match="no events in the fit range of any channel "
                                             r"\(histograms 4j1b_zp, 4j2b_zp\)"):
        histfactory.build_model(signal_config(process="zp"), lookup_of(background))
    with pytest.raises(ReanimateError, match="histograms 4j1b_signal, 4j2b_signal"):
        histfactory.signal_patch(ws, report, signal_config(), lookup_of({}))
    with pytest.raises(ReanimateError, match="a background has that name"):
        histfactory.build_model(signal_config(sample="ttbar"), lookup_of(background))
    with pytest.raises(ReanimateError, match="treatments differ"):
        histfactory.signal_patch(ws, report, signal_config(Treatments.none()),
                                 lookup_of(signal_histograms()))
    ops = histfactory.signal_patch(ws, report, signal_config(), lookup_of(signal_histograms()))
    with pytest.raises(ReanimateError, match="already has a sample 'signal'"):
        histfactory.signal_patch(jsonpatch.apply_patch(ws, ops), report, signal_config(),
                                 lookup_of(signal_histograms()))
    with pytest.raises(ReanimateError, match="configuration has no signal"):
        histfactory.signal_patch(ws, report, statmodel_config.config(), lookup_of({}))
