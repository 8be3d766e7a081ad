"""The fit: closure on Asimov data, the fit step's results file, significance, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from stat_helpers import small_workspace, write_agc_histograms

from reanimate.analyses.agc.steps import statmodel
from reanimate.statistics import fitting
from reanimate.statistics.treatments import Treatments


def step(*args: str):
    return subprocess.run([sys.executable, "-m", "reanimate.steps.fit", *map(str, args)],
                          capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fit")
    # every bin keeps its staterror (these generated histograms are all below the 5 % default)
    treatments = Treatments(staterror_threshold=0.0)
    ws = statmodel.build(str(write_agc_histograms(tmp / "histograms.root")), treatments)[0]
    (tmp / "workspace.json").write_text(json.dumps(ws))
    return tmp / "workspace.json", ws


def test_asimov_closure_at_1_3(workspace):
    _, ws = workspace
    model, _ = fitting.load_model(ws)
    pars = np.asarray(model.config.suggested_init(), dtype=float)
    pars[model.config.poi_index] = 1.3
    asimov = model.expected_data(pars)
    res = fitting.fit_model(model, asimov)
    assert res.valid
    assert abs(res.bestfit[model.config.poi_index] - 1.3) < 1e-4
    others = np.delete(res.bestfit - pars, model.config.poi_index)
    assert np.max(np.abs(others)) < 1e-3


def test_fit_step_results(workspace, tmp_path):
    path, _ = workspace
    proc = step("--workspace", path, "--results", tmp_path / "fit.json", "--significance", "true")
    assert proc.returncode == 0, proc.stderr
    fit = json.loads((tmp_path / "fit.json").read_text())
    assert fit["converged"] and fit["minuit"]["hesse"]
    assert fit["measurement"] == "CMS_ttbar" and fit["poi"]["name"] == "ttbar_norm"
    assert 0 < fit["poi"]["error"] < 0.5
    names = [p["name"] for p in fit["parameters"]]
    assert names == fit["correlation"]["parameters"]
    assert "staterror_4j1b_CR[10]" in names and "luminosity" in names
    matrix = np.array(fit["correlation"]["matrix"])
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-9)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-9)
    by_name = {p["name"]: p for p in fit["parameters"]}
    jes = by_name["jet_energy_scale"]
    assert jes["constraint"] == {"type": "gaussian", "center": 0.0, "width": 1.0}
    assert jes["pull"] == jes["value"] and jes["modifiers"] == ["histosys", "normsys"]
    assert by_name["ttbar_norm"]["pull"] is None and by_name["ttbar_norm"]["constraint"] is None
    gamma = by_name["staterror_4j2b_SR[0]"]
    assert gamma["constraint"]["center"] == 1.0 and 0 < gamma["constraint"]["width"] < 0.1
    assert fit["nll"] > 0 and np.isfinite(fit["nll"])
    sig = fit["significance"]
    assert sig["Z"] == pytest.approx(np.sqrt(sig["q0"]), rel=1e-9) and sig["Z"] > 5


def test_results_are_byte_deterministic():
    from reanimate.statistics import jsonio

    first = jsonio.dumps(fitting.fit_workspace(small_workspace(), with_significance=True))
    assert jsonio.dumps(fitting.fit_workspace(small_workspace(), with_significance=True)) == first


def test_nll_is_the_minimum_of_pyhf_nll(workspace):
    _, ws = workspace
    fit = fitting.fit_workspace(ws)
    model, data = fitting.load_model(ws)
    best = fitting.parameter_vector(model, fit)
    assert fit["nll"] == pytest.approx(float(-model.logpdf(best, data)[0]), rel=1e-9)
    poi = model.config.poi_index
    for shift in (-0.01, 0.01):
        moved = best.copy()
        moved[poi] += shift
        assert float(-model.logpdf(moved, data)[0]) > fit["nll"]


def test_small_model_with_every_modifier_fits():
    fit = fitting.fit_workspace(small_workspace())
    by_name = {p["name"]: p for p in fit["parameters"]}
    assert by_name["lumi"]["constraint"] == {"type": "gaussian", "center": 1.0, "width": 0.02}
    assert by_name["fake uncorr[0]"]["constraint"]["type"] == "poisson"
    assert by_name["fake uncorr[0]"]["constraint"]["width"] == pytest.approx(0.2)
    assert by_name["cr_shape[1]"]["constraint"] is None
    assert fit["significance"] is None


def test_invalid_workspace_is_a_user_error():
    from reanimate.errors import ReanimateError

    with pytest.raises(ReanimateError, match="not a valid pyhf workspace"):
        fitting.fit_workspace({"channels": []})


@pytest.mark.parametrize("content, message", [
    (None, "not found"), ("[1, 2]", "not a pyhf workspace"), ("{", "not valid JSON"),
])
def test_user_errors(tmp_path, content, message):
    path = tmp_path / "ws.json"
    if content is not None:
        path.write_text(content)
    proc = step("--workspace", path, "--results", tmp_path / "fit.json")
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "fit.json").exists()


def test_minos_gives_asymmetric_errors_around_hesse(workspace, tmp_path):
    path, _ = workspace
    proc = step("--workspace", path, "--results", tmp_path / "fit.json", "--significance",
                "false", "--minos", "true")
    assert proc.returncode == 0, proc.stderr
    fit = json.loads((tmp_path / "fit.json").read_text())
    minos, error = fit["poi"]["minos"], fit["poi"]["error"]
    assert minos["valid"] and minos["lower"] < 0 < minos["upper"]
    assert abs(minos["lower"]) == pytest.approx(error, rel=0.3)
    assert minos["upper"] == pytest.approx(error, rel=0.3)
    assert fit["status"]["reason"] is None and fit["status"]["covariance"] == "accurate"
    assert fit["status"]["attempts"][0]["start"] == "initial"


def test_objective_is_pyhf_bit_for_bit_and_walls_negative_yields(workspace):
    """The objective of the fits (one evaluation per point, the walled one computing the
    expected data once) gives exactly pyhf's -2 log L, and the wall where a yield is < 0."""
    _, ws = workspace
    model, data = fitting.load_model(ws)
    init = np.asarray(model.config.suggested_init(), dtype=float)
    lo, hi = np.asarray(model.config.suggested_bounds(), dtype=float).T
    rng = np.random.default_rng(7)
    plain = fitting._objective(model, data, physical=False)
    walled = fitting._objective(model, data, physical=True)
    walls = 0
    for scale in [0.0] + [0.3] * 10 + [3.0] * 10:
        pars = np.clip(init + rng.normal(0.0, scale, len(init)), lo, hi)
        pyhf_value = -2.0 * float(model.logpdf(pars, data)[0])
        expected = np.asarray(model.main_model.expected_data(pars))
        for objective in (plain, walled, plain, walled):  # the second time from memory
            value = objective(pars)
            if objective is walled and expected.min() < 0:
                walls += 1
                assert value == fitting._WALL * (1.0 + float(-expected[expected < 0].sum()))
            else:
                assert value == pyhf_value or (np.isnan(value) and np.isnan(pyhf_value))
    assert walls > 0  # the far points drove some bins negative
