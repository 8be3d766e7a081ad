"""The AGC's signal side on the small chain: the signal recipe program, the histograms step on
a signal alone (with ML), statmodel --signal, and the patch program whose JSON Patch turns the
preserved workspace into exactly the model statmodel --signal builds."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonpatch
import numpy as np
import pytest

from reanimate.analyses.agc.steps import histograms, signal, signal_patch, statmodel
from reanimate.steps.interface import load_interface

BACKGROUNDS = "ttbar,wjets,single_top_s_chan,single_top_t_chan,single_top_tW"


def tiny_model(path, seed: int):
    """An XGBoost model on 20 features trained on random data (the ML step's input format)."""
    import xgboost as xgb

    rng = np.random.Generator(np.random.Philox(seed))
    x = rng.normal(size=(300, 20)) * np.r_[np.ones(4), np.full(8, 60.0), np.full(8, 0.4)]
    y = x[:, 5] + 30 * x[:, 1] + rng.normal(size=300) * 20 > 0
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1,
                         "seed": seed}, xgb.DMatrix(x.astype(np.float32), label=y), 5)
    booster.save_model(str(path))
    return path


def ok(module, *argv):
    code = module.main([str(a) for a in argv])
    assert code == 0


def failure(capsys, module, *argv) -> str:
    """Run a program that must fail: exit 2 and one line on stderr (returned)."""
    capsys.readouterr()
    code = module.main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


def hist_run(samples, out, *extra):
    ok(histograms, "--samples", samples, "--histograms", out, "--dask_workers", "1",
       "--no_progress", "true", *extra)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Backgrounds (4000 ttbar events), a 1.5 TeV Z' (2000 events), their histograms alone and
    together, and the models without and with the signal."""
    from reanimate.analyses.agc.steps import datasets

    tmp = tmp_path_factory.mktemp("signal")
    ok(datasets, "--samples", tmp / "bkg", "--events", 4000, "--signal_masses", "none")
    ok(signal, "--model", "zprime", "--mass", 1500, "--events", 2000, "--samples", tmp / "sig")
    both: dict = {}
    for where in ("bkg", "sig"):
        doc = json.loads((tmp / where / "catalogue.json").read_text())
        for variations in doc.values():
            for entry in variations.values():
                for f in entry["files"]:
                    f["path"] = str(tmp / where / f["path"])
        both.update(doc)
    (tmp / "both.json").write_text(json.dumps(both))
    even, odd = tiny_model(tmp / "even.json", 2), tiny_model(tmp / "odd.json", 3)
    hist_run(tmp / "bkg", tmp / "bkg.root")
    hist_run(tmp / "sig", tmp / "sig.root", "--processes", "signal", "--dump_json",
             tmp / "sig.json", "--histograms_ml", tmp / "sig_ml.root", "--model_even", even,
             "--model_odd", odd)
    hist_run(tmp / "both.json", tmp / "both.root", "--processes", BACKGROUNDS + ",signal")
    for name, hists, extra in (("bkg", "bkg.root", ()), ("full", "both.root",
                                                         ("--signal", "signal"))):
        ok(statmodel, "--histograms", tmp / hists, "--workspace", tmp / f"{name}_ws.json",
           "--hs3", tmp / f"{name}.hs3.json", "--report", tmp / f"{name}_report.json", *extra)
    return tmp


def load(path):
    return json.loads(path.read_text())


def patch(chain, histograms_path, out="patch.json", *extra):
    ok(signal_patch, "--signal_histograms", histograms_path, "--workspace",
       chain / "bkg_ws.json", "--report", chain / "bkg_report.json", "--patch", chain / out,
       *extra)
    return load(chain / out)


def test_patch_of_the_preserved_workspace_equals_the_full_build(chain):
    ops = patch(chain, chain / "sig.root")
    assert jsonpatch.apply_patch(load(chain / "bkg_ws.json"), ops) == load(chain / "full_ws.json")
    assert [op["op"] for op in ops] == ["add", "add", "replace", "add"]


def test_the_background_part_is_the_model_without_signal(chain):
    full, bkg = load(chain / "full_ws.json"), load(chain / "bkg_ws.json")
    for ch in full["channels"]:
        assert ch["samples"][-1]["name"] == "signal"
        ch["samples"] = ch["samples"][:-1]
    measurement = full["measurements"][0]["config"]
    assert measurement["poi"] == "mu_signal"
    measurement["poi"] = "ttbar_norm"
    assert measurement["parameters"].pop()["name"] == "mu_signal"
    assert full == bkg
    report, bkg_report = load(chain / "full_report.json"), load(chain / "bkg_report.json")
    assert report["channels"] == bkg_report["channels"]
    # the HS3 document carries the signal too, and its POI
    hs3 = load(chain / "full.hs3.json")
    assert hs3["analyses"][0]["parameters_of_interest"] == ["mu_signal"]


def test_histograms_of_a_signal_alone_with_ml_have_no_pseudodata(chain):
    import uproot

    with uproot.open(chain / "sig.root") as f:
        names = [k.split(";")[0] for k in f.keys()]
    assert "4j1b_signal" in names and "4j2b_signal_pt_res_up" in names
    assert not [n for n in names if "pseudodata" in n or not n[5:].startswith("signal")]
    with uproot.open(chain / "sig_ml.root") as f:
        ml = [k.split(";")[0] for k in f.keys()]
    assert len(ml) == 220 and not [n for n in ml if "pseudodata" in n]
    assert set(load(chain / "sig.json")) == set(names)
    # the signal's histograms are the same alone as among the backgrounds
    with uproot.open(chain / "sig.root") as alone, uproot.open(chain / "both.root") as both:
        for name in names:
            assert np.array_equal(alone[name].values(flow=True), both[name].values(flow=True))
            assert np.array_equal(alone[name].variances(flow=True),
                                  both[name].variances(flow=True))


def test_patch_from_the_json_histograms(chain, capsys):
    import uproot

    capsys.readouterr()
    ops = patch(chain, chain / "sig.json", "patch_json.json")
    assert "unit weights assumed" in capsys.readouterr().err
    assert ops[:2] != patch(chain, chain / "sig.root")[:2]  # the staterror differs
    doc = load(chain / "sig.json")
    with uproot.open(chain / "sig.root") as f:
        for name, h in doc.items():
            h["variances"] = f[name].variances(flow=True).tolist()
    (chain / "sig_var.json").write_text(json.dumps(doc))
    ops = patch(chain, chain / "sig_var.json", "patch_var.json")
    assert jsonpatch.apply_patch(load(chain / "bkg_ws.json"), ops) == load(chain / "full_ws.json")


def test_a_region_without_the_signal_is_left_out_and_said(chain, capsys):
    doc = {n: h for n, h in load(chain / "sig.json").items() if n.startswith("4j2b")}
    (chain / "sig_4j2b.json").write_text(json.dumps(doc))
    capsys.readouterr()
    ops = patch(chain, chain / "sig_4j2b.json", "patch_4j2b.json")
    err = capsys.readouterr().err
    assert "no histogram 4j1b_signal: the signal has no events in 4j1b_CR" in err
    samples = load(chain / "bkg_ws.json")["channels"][1]["samples"]
    assert [op["path"] for op in ops][:2] == [f"/channels/1/samples/{len(samples)}",
                                              "/measurements/0/config/poi"]


def test_signal_recipe_is_deterministic_and_is_the_generators_zprime(tmp_path):
    from reanimate.analyses.agc import generate

    args = ["--model", "zprime", "--mass", "1500", "--events", "500", "--seed", "42"]
    ok(signal, *args, "--samples", tmp_path / "a")
    ok(signal, *args, "--samples", tmp_path / "b")
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["catalogue.json", "signal.json", "signal__nominal__000.root"]
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    recipe = load(tmp_path / "a" / "signal.json")
    assert recipe["width"] == 0.03 and recipe["xsec_pb"] == pytest.approx(
        generate.zprime_xsec_pb(1500) * 0.543, rel=1e-3)
    # named as the generator names it, it is the generator's Z' sample byte for byte
    ok(signal, *args, "--name", "zprime_1500", "--samples", tmp_path / "z")
    sample = next(s for s in generate.plan_samples(10_000, [1500]) if s.kind == "zprime")
    columns = generate.generate_columns(sample, 500, generate._rng(42, sample, 0))
    written = _counts(tmp_path / "z" / "zprime_1500__nominal__000.root")
    assert written == (columns["Jet"][0].tolist(), columns["GenPart"][0].tolist())
    # another width, other events; a given cross section is the catalogue's
    ok(signal, *args, "--width", "0.1", "--xsec_pb", "1.25", "--samples", tmp_path / "w")
    assert (tmp_path / "w" / "signal__nominal__000.root").read_bytes() != \
        (tmp_path / "a" / "signal__nominal__000.root").read_bytes()
    assert load(tmp_path / "w" / "catalogue.json")["signal"]["nominal"]["xsec_pb"] == 1.25


def _counts(path):
    import uproot

    with uproot.open(path) as f:
        return tuple(f["Events"][b].array(library="np").tolist() for b in ("nJet", "nGenPart"))


def test_bad_inputs_are_one_line_exit_2(chain, tmp_path, capsys):
    base = ["--model", "zprime", "--events", "10", "--samples", tmp_path / "s"]
    assert "outside the supported" in failure(capsys, signal, *base, "--mass", "100")
    assert "--width" in failure(capsys, signal, *base, "--mass", "1000", "--width", "0")
    assert "--name 'ttbar'" in failure(capsys, signal, *base, "--mass", "1000", "--name",
                                       "ttbar")
    assert "--xsec_pb" in failure(capsys, signal, *base, "--mass", "1000", "--xsec_pb", "-1")
    assert "invalid choice" in failure(capsys, signal, "--model", "wprime", "--mass", "1000",
                                       "--samples", tmp_path / "s")
    common = ["--workspace", chain / "bkg_ws.json", "--report", chain / "bkg_report.json",
              "--patch", tmp_path / "p.json"]
    err = failure(capsys, signal_patch, "--signal_histograms", chain / "bkg.root", *common)
    assert "no histogram 4j1b_signal or 4j2b_signal of the signal 'signal'" in err
    err = failure(capsys, signal_patch, "--signal_histograms", tmp_path / "nope.root", *common)
    assert "histogram file not found" in err
    doc = load(chain / "sig.json")
    doc["4j1b_signal_pt_res_up"]["contents"] = doc["4j1b_signal_pt_res_up"]["contents"][:-3]
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    err = failure(capsys, signal_patch, "--signal_histograms", tmp_path / "bad.json", *common)
    assert "histogram 4j1b_signal_pt_res_up" in err
    doc = load(chain / "sig.json")
    doc["4j2b_signal"]["edges"] = [e + 1 for e in doc["4j2b_signal"]["edges"]]
    (tmp_path / "edges.json").write_text(json.dumps(doc))
    err = failure(capsys, signal_patch, "--signal_histograms", tmp_path / "edges.json", *common)
    assert "histogram 4j2b_signal: cannot rebin" in err
    err = failure(capsys, signal_patch, "--signal_histograms", chain / "sig.root",
                  "--workspace", chain / "full_ws.json", "--report", chain / "bkg_report.json",
                  "--patch", tmp_path / "p.json")
    assert "already has a sample 'signal'" in err
    err = failure(capsys, signal_patch, "--signal_histograms", chain / "sig.root",
                  "--workspace", chain / "bkg_report.json", "--report", chain / "bkg_report.json",
                  "--patch", tmp_path / "p.json")
    assert "not a pyhf workspace" in err
    err = failure(capsys, statmodel, "--histograms", chain / "bkg.root", "--signal", "zp",
                  "--workspace", tmp_path / "w.json", "--hs3", tmp_path / "h.json")
    assert "no events in the fit range of any channel (histograms 4j1b_zp, 4j2b_zp)" in err
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize("program", ["reanimate.analyses.agc.steps.signal",
                                     "reanimate.analyses.agc.steps.signal_patch"])
def test_new_programs_declare_their_interface_and_import_light(program):
    interface = load_interface(program)
    assert interface.prog == f"python -m {program}" and interface.by_role("output")
    code = (f"import sys; import {program}; "
            "print([m for m in ('numpy', 'pyhf', 'uproot', 'awkward') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == "[]"
    proc = subprocess.run([sys.executable, "-m", program, "--help"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0 and all(f"--{n}" in proc.stdout for n in interface.names)
