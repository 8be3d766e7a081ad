"""pyhf <-> HS3 conversion: lossless round trips, the HS3 we write, and an independent NLL."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from stat_helpers import small_workspace, write_agc_histograms

from reanimate.analyses.agc.steps import statmodel
from reanimate.errors import ReanimateError
from reanimate.statistics.hs3 import hs3_to_pyhf, pyhf_to_hs3, safe_name

HERE = Path(__file__).resolve().parent
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True)


@pytest.fixture(scope="module")
def agc(tmp_path_factory):
    path = write_agc_histograms(tmp_path_factory.mktemp("hs3") / "histograms.root")
    return statmodel.build(str(path))[:2]


def test_round_trip_small_model_every_modifier_type():
    ws = small_workspace()
    types = {m["type"] for c in ws["channels"] for s in c["samples"] for m in s["modifiers"]}
    assert types == {"normfactor", "normsys", "histosys", "staterror", "shapefactor", "lumi",
                     "shapesys"}
    doc = pyhf_to_hs3(ws)
    assert canonical(hs3_to_pyhf(doc)) == canonical(ws)
    # the original is not modified, and a second trip is stable
    assert canonical(ws) == canonical(small_workspace())
    assert canonical(pyhf_to_hs3(hs3_to_pyhf(doc))) == canonical(doc)


def test_round_trip_agc_model(agc):
    workspace, doc = agc
    assert canonical(hs3_to_pyhf(doc)) == canonical(workspace)
    assert canonical(hs3_to_pyhf(json.loads(json.dumps(doc)))) == canonical(workspace)


def _walk_modifiers(doc):
    for dist in doc["distributions"]:
        if dist["type"] == "histfactory_dist":
            for sample in dist["samples"]:
                for mod in sample["modifiers"]:
                    yield dist, sample, mod


@pytest.mark.parametrize("which", ["small", "agc"])
def test_hs3_document_shape(which, agc):
    import re

    doc = pyhf_to_hs3(small_workspace()) if which == "small" else agc[1]
    assert doc["metadata"]["hs3_version"] == "0.2"
    names = [x["name"] for key in ("distributions", "data", "likelihoods", "domains",
                                   "parameter_points", "analyses") for x in doc[key]]
    assert len(names) == len(set(names)), "HS3 names share one namespace"
    for _dist, sample, mod in _walk_modifiers(doc):
        assert "name" in mod and "interpolation" not in mod.get("data", {})
        assert "interpolation" not in mod
        params = mod.get("parameters", [mod.get("parameter")])
        assert all(re.fullmatch(IDENT, p) for p in params), params
        if mod["type"] == "staterror":
            assert mod["constraint"] == "Gauss"
            assert len(sample["data"]["errors"]) == len(sample["data"]["contents"])
        if mod["type"] in ("normsys", "histosys"):
            assert mod["constraint"] == "Gauss"
    analysis = doc["analyses"][0]
    assert isinstance(analysis["domains"], list) and analysis["parameters_of_interest"]
    domain = {d["name"]: d for d in doc["domains"]}[analysis["domains"][0]]
    assert domain["type"] == "product_domain"
    assert all(np.isfinite([a["min"], a["max"]]).all() for a in domain["axes"])
    like = {lk["name"]: lk for lk in doc["likelihoods"]}[analysis["likelihood"]]
    assert len(like["distributions"]) == len(like["data"])
    for datum in doc["data"]:
        assert datum["type"] == "binned"
    points = {p["name"] for p in doc["parameter_points"][0]["parameters"]}
    assert points == {a["name"] for a in domain["axes"]}


def test_agc_hs3_uses_the_real_binning_and_names(agc):
    _, doc = agc
    dists = {d["name"]: d for d in doc["distributions"]}
    assert set(dists) == {"model_4j1b_CR", "model_4j2b_SR"}
    assert dists["model_4j2b_SR"]["axes"][0]["edges"] == [110.0 + 40 * i for i in range(12)]
    assert doc["analyses"][0]["name"] == "CMS_ttbar"
    assert doc["analyses"][0]["parameters_of_interest"] == ["ttbar_norm"]
    assert "parameter_names" not in doc["misc"]["pyhf"]  # AGC names are already safe


def test_unsafe_names_are_mapped_and_restored():
    doc = pyhf_to_hs3(small_workspace())
    assert doc["misc"]["pyhf"]["parameter_names"]["Jet_energy_scale"] == "Jet energy scale"
    assert safe_name("fake uncorr") == "fake_uncorr" and safe_name("1x") == "p_1x"


def test_lumi_becomes_normfactor_with_gaussian_constraint():
    doc = pyhf_to_hs3(small_workspace())
    aux = [d for d in doc["distributions"] if d["type"] == "gaussian_dist"]
    assert aux == [{"type": "gaussian_dist", "name": "lumi_constraint", "x": 1.0,
                    "mean": "lumi", "sigma": 0.02}]
    assert doc["likelihoods"][0]["aux_distributions"] == ["lumi_constraint"]


def test_foreign_document_without_misc_converts():
    doc = pyhf_to_hs3(small_workspace())
    del doc["misc"]
    ws = hs3_to_pyhf(doc)
    import pyhf

    model = pyhf.Workspace(ws).model()
    assert model.config.poi_name == "mu"
    assert "Jet_energy_scale" in model.config.par_names  # the HS3 parameter name


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["distributions"][0]["samples"][0]["modifiers"][4].update(
        constraint="Poisson"), "Poisson constraint"),
    (lambda d: d["distributions"][0]["samples"][0]["modifiers"][2].update(
        type="weird"), "unknown modifier type"),
    (lambda d: d["distributions"][0]["samples"][0]["modifiers"][2]["data"].update(
        interpolation="code1"), "interpolation"),
    (lambda d: d["metadata"].clear(), "hs3_version"),
    (lambda d: d["analyses"].clear(), "no analyses"),
    (lambda d: d["likelihoods"][0].update(data=["nope", "obsData_CR"]), "'nope'"),
])
def test_hs3_to_pyhf_refuses_what_pyhf_cannot_express(mutate, message):
    doc = pyhf_to_hs3(small_workspace())
    mutate(doc)
    with pytest.raises(ReanimateError, match=message):
        hs3_to_pyhf(doc)


def test_pyhf_to_hs3_refuses_invalid_workspace():
    ws = copy.deepcopy(small_workspace())
    ws["channels"][0]["samples"][0]["modifiers"][0]["type"] = "bogus"
    with pytest.raises(ReanimateError, match="not a valid pyhf workspace"):
        pyhf_to_hs3(ws)


def test_cli_round_trip_and_errors(tmp_path, cli):
    from typer.testing import CliRunner

    from reanimate.cli.hs3 import app

    src = tmp_path / "ws.json"
    src.write_text(json.dumps(small_workspace()))
    proc = cli("hs3", "from-pyhf", src, "-o", tmp_path / "m.hs3.json")  # registered in the CLI
    assert proc.returncode == 0, proc.stderr
    result = CliRunner().invoke(app, ["to-pyhf", str(tmp_path / "m.hs3.json"), "-o",
                                      str(tmp_path / "back.json")])
    assert result.exit_code == 0, result.output
    assert canonical(json.loads((tmp_path / "back.json").read_text())) == canonical(
        small_workspace())
    (tmp_path / "bad.json").write_text("{not json")
    result = CliRunner().invoke(app, ["to-pyhf", str(tmp_path / "bad.json"), "-o",
                                      str(tmp_path / "x.json")])
    assert isinstance(result.exception, ReanimateError) and "not valid JSON" in str(
        result.exception)
    assert not (tmp_path / "x.json").exists()


# ------------------------------------------------------------------ independent evaluation


def pyhs3_nll(doc: dict, points: list[dict], tmp_path: Path, timeout: int = 600) -> list[float]:
    """NLL of `doc` at `points` evaluated by pyhs3 in a subprocess (flags set before import)."""
    pytest.importorskip("pyhs3")
    (tmp_path / "doc.json").write_text(json.dumps(doc))
    (tmp_path / "points.json").write_text(json.dumps(points))
    env = {**os.environ, "PYTENSOR_FLAGS": "cast_policy=numpy+floatX"}
    proc = subprocess.run(
        [sys.executable, str(HERE / "pyhs3_eval.py"), str(tmp_path / "doc.json"),
         str(tmp_path / "points.json")],
        capture_output=True, text=True, env=env, timeout=timeout, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])["nll"]


def pyhf_points(workspace: dict, doc: dict, n: int = 3, seed: int = 11):
    """n parameter points near the best fit as (pyhf NLLs, {HS3 name: value} dicts).

    Near the minimum on purpose: pyhs3 multiplies probabilities before taking the log, so far
    from it (NLL of thousands) its NLL underflows to inf (see ../shared/hs3.md).
    """
    import pyhf

    from reanimate.statistics import fitting

    model, data = fitting.load_model(workspace)
    best = fitting.fit_model(model, data)
    rename = {v: k for k, v in doc["misc"]["pyhf"].get("parameter_names", {}).items()}
    per_bin = {m["name"]: m["parameters"] for _, _, m in _walk_modifiers(doc)
               if "parameters" in m}
    rng = np.random.default_rng(seed)
    nlls, points = [], []
    for k in range(n):
        pars = best.bestfit + (0 if k == 0 else 0.3 * best.errors * rng.standard_normal(
            len(best.bestfit)))
        pars = np.clip(pars, *np.asarray(model.config.suggested_bounds()).T)  # in the domain
        nlls.append(float(-model.logpdf(pars, data)[0]))
        point = {}
        for par in model.config.par_order:
            sl = model.config.par_slice(par)
            names = per_bin.get(par) or [rename.get(par, par)]
            point.update({h: float(v) for h, v in zip(names, pars[sl], strict=True)})
        points.append(point)
    assert pyhf.tensorlib.name == "numpy" and np.all(np.isfinite(nlls))
    return nlls, points


def test_pyhs3_nll_equals_pyhf_on_small_model(tmp_path):
    ws = small_workspace()
    doc = pyhf_to_hs3(ws)
    expected, points = pyhf_points(ws, doc)
    got = pyhs3_nll(doc, points, tmp_path)
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=0)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("REANIMATE_SLOW"), reason="set REANIMATE_SLOW=1")
def test_pyhs3_nll_equals_pyhf_on_agc_model(agc, tmp_path):
    workspace, doc = agc
    expected, points = pyhf_points(workspace, doc)
    got = pyhs3_nll(doc, points, tmp_path, timeout=1800)
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=0)


def test_staterror_bin_without_uncertainty_round_trips_and_evaluates_like_pyhf(tmp_path):
    """A bin below the staterror threshold has zero uncertainty in every sample: pyhf fixes
    its parameter; the HS3 document must not carry a zero-width constraint (pyhs3 gave -inf)."""
    ws = small_workspace()
    for channel in ws["channels"][:1]:
        for sample in channel["samples"]:
            for mod in sample["modifiers"]:
                if mod["type"] == "staterror":
                    mod["data"][0] = 0.0
    doc = pyhf_to_hs3(ws)
    zero = doc["misc"]["pyhf"]["staterror_zero_bins"]
    assert zero == {ws["channels"][0]["name"]: [0]}
    assert canonical(hs3_to_pyhf(doc)) == canonical(ws)
    expected, points = pyhf_points(ws, doc)
    got = pyhs3_nll(doc, points, tmp_path)
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=0)
