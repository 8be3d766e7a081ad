"""The statmodel step: the AGC HistFactory model from histograms.root (section 10).

The arithmetic is checked with every treatment off (`UNTREATED`); the treatments themselves are
tested in test_stat_treatments.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from stat_helpers import agc_histograms, write_agc_histograms, write_histograms

from reanimate.analyses.agc.steps import statmodel
from reanimate.errors import ReanimateError
from reanimate.statistics.histfactory import rebin

UNTREATED = ("--max_mc_rel_error", "0", "--prune_norm", "0", "--prune_shape", "0",
             "--staterror_threshold", "0", "--smoothing", "false")


def step(*args: str):
    argv = [sys.executable, "-m", "reanimate.analyses.agc.steps.statmodel", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("statmodel")
    hist_path = write_agc_histograms(tmp / "histograms.root")
    proc = step("--histograms", hist_path, "--workspace", tmp / "workspace.json",
                "--hs3", tmp / "model.hs3.json", "--report", tmp / "report.json", *UNTREATED)
    assert proc.returncode == 0, proc.stderr
    return tmp, json.loads((tmp / "workspace.json").read_text())


def _mods(ws, channel, sample):
    ch = next(c for c in ws["channels"] if c["name"] == channel)
    return next(s for s in ch["samples"] if s["name"] == sample)


def test_rebin_drops_below_110_and_merges_pairs():
    edges = np.linspace(50, 550, 26)
    values = np.arange(25.0)
    out = rebin(values, edges, np.arange(110, 551, 40.0))
    assert out.tolist() == [values[3 + 2 * i] + values[4 + 2 * i] for i in range(11)]
    with pytest.raises(ReanimateError, match="not edges"):
        rebin(values, edges, [115.0, 155.0])


def test_structure_of_the_agc_model(built):
    _, ws = built
    assert [c["name"] for c in ws["channels"]] == ["4j1b_CR", "4j2b_SR"]
    assert ws["measurements"] == [{"name": "CMS_ttbar", "config": {"poi": "ttbar_norm",
                                   "parameters": [{"name": "ttbar_norm", "bounds": [[0.0, 10.0]],
                                                   "inits": [1.0]}]}}]
    for ch in ws["channels"]:
        assert [s["name"] for s in ch["samples"]] == [
            "ttbar", "wjets", "single_top_s_chan", "single_top_t_chan", "single_top_tW"]
        assert all(len(s["data"]) == 11 for s in ch["samples"])
    ttbar = {(m["name"], m["type"]) for m in _mods(ws, "4j2b_SR", "ttbar")["modifiers"]}
    assert ("ttbar_norm", "normfactor") in ttbar and ("luminosity", "normsys") in ttbar
    for name in ("ME_variation", "PS_variation", "ttbar_scale", "jet_energy_scale",
                 "jet_energy_resolution", "btag_np_1", "btag_np_4"):
        assert {(name, "normsys"), (name, "histosys")} <= ttbar
    wjets = {m["name"] for m in _mods(ws, "4j1b_CR", "wjets")["modifiers"]}
    assert "wjets_scale" in wjets and "ME_variation" not in wjets
    stat = [m for m in _mods(ws, "4j1b_CR", "wjets")["modifiers"] if m["type"] == "staterror"]
    assert stat[0]["name"] == "staterror_4j1b_CR"


def test_modifier_arithmetic_plain_numpy(built):
    """normsys/histosys/staterror/symmetrisation recomputed by hand from the histograms."""
    _, ws = built
    hists = agc_histograms()

    def fit_range(name, variances=False):
        v = hists[name][1 if variances else 0][1:-1]  # drop flow
        return v[3:].reshape(11, 2).sum(axis=1)

    nom = fit_range("4j2b_ttbar")
    mods = {(m["name"], m["type"]): m["data"] for m in _mods(ws, "4j2b_SR", "ttbar")["modifiers"]}
    np.testing.assert_allclose(_mods(ws, "4j2b_SR", "ttbar")["data"], nom, rtol=1e-12)
    # one-sided, symmetrised
    up = fit_range("4j2b_ttbar_ME_var")
    hi = up.sum() / nom.sum()
    assert mods[("ME_variation", "normsys")] == pytest.approx({"hi": hi, "lo": 2 - hi}, rel=1e-12)
    np.testing.assert_allclose(mods[("ME_variation", "histosys")]["hi_data"], up / hi, rtol=1e-12)
    np.testing.assert_allclose(mods[("ME_variation", "histosys")]["lo_data"], 2 * nom - up / hi,
                               rtol=1e-12)
    # two-sided
    up, down = fit_range("4j2b_ttbar_scaleup"), fit_range("4j2b_ttbar_scaledown")
    assert mods[("ttbar_scale", "normsys")]["lo"] == pytest.approx(down.sum() / nom.sum(),
                                                                   rel=1e-12)
    np.testing.assert_allclose(mods[("ttbar_scale", "histosys")]["lo_data"],
                               down * nom.sum() / down.sum(), rtol=1e-12)
    assert mods[("luminosity", "normsys")] == {"hi": 1.03, "lo": 0.97}
    np.testing.assert_allclose(mods[("staterror_4j2b_SR", "staterror")],
                               np.sqrt(fit_range("4j2b_ttbar", variances=True)), rtol=1e-12)
    obs = next(o for o in ws["observations"] if o["name"] == "4j2b_SR")["data"]
    np.testing.assert_allclose(obs, fit_range("4j2b_pseudodata"), rtol=1e-12)
    # the histosys templates keep the nominal yield
    assert sum(mods[("jet_energy_scale", "histosys")]["hi_data"]) == pytest.approx(nom.sum())


def test_outputs_are_byte_deterministic(built, tmp_path):
    tmp, _ = built
    statmodel.run(statmodel.parser().parse_args([
        "--histograms", str(tmp / "histograms.root"), "--workspace", str(tmp_path / "w.json"),
        "--hs3", str(tmp_path / "m.json"), "--report", str(tmp_path / "r.json"), *UNTREATED]))
    assert (tmp_path / "w.json").read_bytes() == (tmp / "workspace.json").read_bytes()
    assert (tmp_path / "m.json").read_bytes() == (tmp / "model.hs3.json").read_bytes()
    assert (tmp_path / "r.json").read_bytes() == (tmp / "report.json").read_bytes()


def test_absent_sample_is_left_out_but_a_variation_absent_everywhere_is_an_error(tmp_path):
    hists = agc_histograms()
    for name in [n for n in hists if n.startswith("4j2b_single_top_s_chan")]:
        del hists[name]
    ws, _, report = statmodel.build(str(write_histograms(tmp_path / "a.root", hists)))
    assert "single_top_s_chan" not in [s["name"] for s in ws["channels"][1]["samples"]]
    assert "single_top_s_chan" in [s["name"] for s in ws["channels"][0]["samples"]]
    assert {"channel": "4j2b_SR", "sample": "single_top_s_chan", "status": "dropped",
            "reason": "no events in the fit range"} in report["samples"]
    for name in [n for n in hists if n.endswith("_scale_var_down")]:
        del hists[name]
    with pytest.raises(ReanimateError, match="no histogram of variation 'scale_var_down'"):
        statmodel.build(str(write_histograms(tmp_path / "b.root", hists)))


@pytest.mark.parametrize("content, message", [
    (None, "not found"), (b"not a root file", "not a readable ROOT file"),
])
def test_user_errors_are_one_line_exit_2(tmp_path, content, message):
    path = tmp_path / "h.root"
    if content is not None:
        path.write_bytes(content)
    proc = step("--histograms", path, "--workspace", tmp_path / "w.json", "--hs3",
                tmp_path / "m.json")
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "w.json").exists()


def test_unknown_flag_is_exit_2(tmp_path):
    proc = step("--histogram", "x")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_statmodel_report_command(built, tmp_path):
    from conftest import run_cli

    tmp, _ = built
    treated = tmp_path / "treated"
    treated.mkdir()
    hists = agc_histograms()
    hists["4j2b_single_top_s_chan_pt_scale_up"] = tuple(np.zeros_like(h)
                                                         for h in hists["4j2b_single_top_s_chan"])
    proc = step("--histograms", write_histograms(tmp_path / "h.root", hists), "--workspace",
                treated / "w.json", "--hs3", treated / "m.json", "--report",
                treated / "statmodel_report.json")
    assert proc.returncode == 0, proc.stderr
    wide = subprocess.run([sys.executable, "-m", "reanimate.cli", "statmodel", "report",
                           str(tmp_path), "--changed"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "250"}, check=True)
    shown = wide.stdout
    assert "single_top_s_chan" in shown and "jet_energy_scale" in shown
    assert "dropped" in shown and "up factor 0" in shown  # the emptied variation, and why
    assert "treatments: " in shown and "staterror_4j2b_SR" in shown
    as_json = run_cli("statmodel", "report", treated / "statmodel_report.json", "--json",
                      check=True).stdout
    assert json.loads(as_json) == json.loads((treated / "statmodel_report.json").read_text())
    missing = run_cli("statmodel", "report", tmp_path / "nowhere")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    (tmp_path / "second").mkdir()
    (tmp_path / "second" / "statmodel_report.json").write_text("{}")
    two = run_cli("statmodel", "report", tmp_path)
    assert two.returncode == 2 and "found 2" in two.stderr
