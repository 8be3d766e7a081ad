"""`reanimate reinterpret`: a new signal through the preserved small AGC chain.

One session fixture runs the chain once (datasets, histograms, statmodel, fit on 10,000 ttbar
events) and one Z' point through it; the tests read what that point wrote and ran.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from engine_specs import small_flagship

from reanimate.hashing import sha256_file

SIGNAL = "zprime:mass=750,events=2000"


@pytest.fixture(scope="session")
def chain(tmp_path_factory):
    """(folder, spec path, PreparedAnalysis, the point's output folder, its record)."""
    from reanimate.engines.local import run_spec
    from reanimate.reinterpret.analysis import prepare_analysis
    from reanimate.reinterpret.signal_run import reinterpret_signal
    from reanimate.spec.loader import load_spec

    root = tmp_path_factory.mktemp("reinterpret")
    spec = root / "agc-small.yaml"
    spec.write_text(yaml.safe_dump(small_flagship(10000), sort_keys=False))
    report = run_spec(load_spec(spec), root / "work")
    assert not report.failed
    prepared = prepare_analysis(spec, root / "work")
    before = {ref: sha256_file(Path(p)) for ref, p in prepared.outputs.items()
              if Path(p).is_file()}
    out = root / "points" / "zp750"
    record = reinterpret_signal(prepared, SIGNAL, output=out, workdir=root / "work" / "signals")
    return {"root": root, "spec": spec, "prepared": prepared, "out": out, "record": record,
            "before": before}


def _provenance(record: dict) -> dict:
    return json.loads(Path(record["run"]["provenance"]).read_text())


def test_only_the_declared_signal_steps_run_on_the_signal_alone(chain):
    prov = _provenance(chain["record"])
    steps = {s["name"]: s for s in prov["steps"]}
    assert [s["name"] for s in prov["steps"] if s["status"] == "executed"] == \
        ["signal_events", "histograms", "signal_patch"]
    # the histograms step read the signal's catalogue alone, with the block's overrides
    histograms = steps["histograms"]
    assert histograms["parameters"]["processes"] == "signal"
    catalogue = Path(histograms["inputs"]["samples"][0]["path"]) / "catalogue.json"
    assert list(json.loads(catalogue.read_text())) == ["signal"]
    assert "--dask_workers" in histograms["command"]
    assert histograms["command"][histograms["command"].index("--dask_workers") + 1] == "1"
    # the patch read the preserved workspace and report, and the signal's histograms
    patch_inputs = steps["signal_patch"]["inputs"]
    prepared = chain["prepared"]
    assert patch_inputs["workspace"][0]["path"] == prepared.outputs["steps.statmodel.workspace"]
    assert patch_inputs["signal_histograms"][0]["path"] == \
        histograms["outputs"]["histograms"]["path"]
    # nothing preserved was recomputed or touched
    assert histograms["outputs"]["histograms"]["path"] != \
        prepared.outputs["steps.histograms.histograms"]
    for ref, digest in chain["before"].items():
        assert sha256_file(Path(prepared.outputs[ref])) == digest, ref
    assert prepared.output_sha256["steps.histograms.histograms"] == \
        chain["before"]["steps.histograms.histograms"]


def test_outputs_and_the_patchset_apply_to_the_preserved_workspace(chain):
    import jsonpatch
    import pyhf

    out, prepared = chain["out"], chain["prepared"]
    for name in ("patch.json", "workspace.json", "model.hs3.json", "limits.json",
                 "plots/prefit.png", "plots/postfit.png", "derived/reinterpret.yaml"):
        assert (out / name).is_file(), name
    preserved = json.loads(prepared.output("steps.statmodel.workspace").read_text())
    patchset_doc = json.loads((out / "patch.json").read_text())
    patchset = pyhf.PatchSet(patchset_doc)
    patchset.verify(preserved)  # the digest of the preserved workspace
    assert patchset.labels == ["mass", "events"]
    assert patchset.patches[0].values == (750, 2000)
    patched = json.loads((out / "workspace.json").read_text())
    assert dict(patchset.apply(preserved, patchset.patches[0].name)) == patched
    assert jsonpatch.apply_patch(preserved, patchset.patches[0].patch) == patched
    model = pyhf.Workspace(patched).model()
    assert model.config.poi_name == "mu_signal" and "signal" in model.config.samples
    with pytest.raises(pyhf.exceptions.PatchSetVerificationError):
        patchset.verify({**preserved, "version": "9.9.9"})
    limits = json.loads((out / "limits.json").read_text())
    assert limits["name"] == "zprime_mass750_events2000"
    assert limits["labels"] == {"mass": 750, "events": 2000}
    assert limits["status"] == "ok" and limits["poi"] == "mu_signal", limits
    assert 0 < limits["limit_observed"] < 100
    from reanimate.statistics.limits import load_patchset

    [(patch_name, labels, applied)] = load_patchset(preserved, patchset_doc)
    assert (patch_name, labels, applied) == (limits["name"], limits["labels"], patched)
    assert limits["analysis"]["digest"] == prepared.digest
    assert limits["signal"]["spec"] == SIGNAL
    from reanimate.statistics.hs3 import hs3_to_pyhf

    assert hs3_to_pyhf(json.loads((out / "model.hs3.json").read_text())) == patched


def test_the_patch_equals_a_full_rerun_with_the_signal_from_the_start(chain, tmp_path):
    """Histograms of backgrounds + signal in one catalogue, statmodel --signal: the same
    workspace as the preserved one with the patch applied (then the limits are the same)."""
    from reanimate.analyses.agc.steps import statmodel

    if statmodel.INTERFACE.flag("signal") is None:
        pytest.skip("statmodel --signal not there yet")
    steps = {s["name"]: s for s in _provenance(chain["record"])["steps"]}
    signal_dir = Path(steps["signal_events"]["outputs"]["samples"]["path"])
    background_dir = chain["prepared"].output("steps.datasets.samples")
    combined = {}
    for folder in (background_dir, signal_dir):
        for process, variations in json.loads((folder / "catalogue.json").read_text()).items():
            for entry in variations.values():
                for f in entry["files"]:
                    f["path"] = str((folder / f["path"]).resolve())
            combined[process] = variations
    (tmp_path / "catalogue.json").write_text(json.dumps(combined, indent=2, sort_keys=True))
    run = [sys.executable, "-m"]
    subprocess.run(run + ["reanimate.analyses.agc.steps.histograms", "--samples",
                          str(tmp_path), "--histograms", str(tmp_path / "h.root"), "--seed",
                          "42", "--dask_workers", "1", "--processes",
                          ",".join(combined)], check=True, capture_output=True)
    subprocess.run(run + ["reanimate.analyses.agc.steps.statmodel", "--histograms",
                          str(tmp_path / "h.root"), "--workspace", str(tmp_path / "ws.json"),
                          "--hs3", str(tmp_path / "hs3.json"), "--signal", "signal"],
                   check=True, capture_output=True)
    full = json.loads((tmp_path / "ws.json").read_text())
    assert json.loads((chain["out"] / "workspace.json").read_text()) == full


def test_signal_histograms_run_only_the_patch(chain, tmp_path):
    from reanimate.reinterpret.signal_run import reinterpret_signal

    steps = {s["name"]: s for s in _provenance(chain["record"])["steps"]}
    histograms = steps["histograms"]["outputs"]["histograms"]["path"]
    record = reinterpret_signal(chain["prepared"], f"histograms:{histograms}", name="own",
                                output=tmp_path / "own", plots=False,
                                workdir=chain["root"] / "work" / "signals")
    assert record["run"]["executed"] + record["run"]["cached"] == ["signal_patch"]
    assert (tmp_path / "own" / "workspace.json").read_bytes() == \
        (chain["out"] / "workspace.json").read_bytes()
    assert not (tmp_path / "own" / "plots").exists()
    patchset = json.loads((tmp_path / "own" / "patch.json").read_text())
    assert patchset["patches"][0]["metadata"]["name"] == "own"


def test_prepared_analysis_is_picklable_and_small(chain):
    prepared = chain["prepared"]
    data = pickle.dumps(prepared)
    assert len(data) < 20_000
    assert pickle.loads(data) == prepared
    assert prepared.kind == "spec" and prepared.name == "agc-ttbar"
    assert set(prepared.block["steps"]) == {"histograms"}


@pytest.mark.parametrize(("signal", "message"), [
    ("nope:mass=1", "unknown recipe 'nope' (the spec's recipes: zprime)"),
    ("zprime:bogus=1", "recipe 'zprime' has no parameter 'bogus'"),
    ("zprime:mass", "'mass' is not key=value"),
    ("zprime:mass=heavy", "mass=heavy: expected float"),
    ("missing.root@xsec_pb=0.4", "signal file missing.root not found"),
    ("missing/catalogue.json", "signal missing/catalogue.json not found"),
    ("histograms:nothing.root", "signal histograms nothing.root not found"),
    ("x.root@xsec=1", "after '@' write xsec_pb=X"),
])
def test_bad_signals_are_one_line_exit_2(chain, cli, signal, message):
    proc = cli("reinterpret", chain["spec"], "--signal", signal, "--workdir",
               chain["root"] / "work", "-o", chain["root"] / "bad", cwd=chain["root"])
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_event_files_need_a_cross_section(chain, tmp_path):
    from reanimate.errors import ReanimateError
    from reanimate.reinterpret.signals import parse_signal

    steps = {s["name"]: s for s in _provenance(chain["record"])["steps"]}
    folder = Path(steps["signal_events"]["outputs"]["samples"]["path"])
    root_file = sorted(folder.glob("*.root"))[0]
    with pytest.raises(ReanimateError, match="need a cross section"):
        parse_signal(str(root_file), ["zprime"])
    parsed = parse_signal(f"{root_file}@xsec_pb=0.5", ["zprime"])
    assert parsed.kind == "files" and parsed.xsec_pb == 0.5
    assert parse_signal(str(folder), ["zprime"]).kind == "catalogue"
    hist = steps["histograms"]["outputs"]["histograms"]["path"]
    assert parse_signal(hist, ["zprime"]).kind == "histograms"


def test_a_bundle_is_unpacked_once_and_its_outputs_used(chain, cli, tmp_path):
    from reanimate.reinterpret.analysis import prepare_analysis
    from reanimate.reinterpret.signal_run import reinterpret_signal

    bundle = tmp_path / "small.crate.zip"
    cli("bundle", chain["spec"], "--workdir", chain["root"] / "work", "-o", bundle, check=True)
    prepared = prepare_analysis(bundle, tmp_path / "w")
    assert prepared.kind == "bundle" and prepared.digest.startswith("sha256:")
    workspace = Path(prepared.outputs["steps.statmodel.workspace"])
    assert workspace.is_relative_to(tmp_path / "w" / "bundles")
    assert workspace.read_bytes() == \
        chain["prepared"].output("steps.statmodel.workspace").read_bytes()
    assert prepare_analysis(bundle, tmp_path / "w") == prepared  # unpacked once
    steps = {s["name"]: s for s in _provenance(chain["record"])["steps"]}
    histograms = steps["histograms"]["outputs"]["histograms"]["path"]
    record = reinterpret_signal(prepared, f"histograms:{histograms}", output=tmp_path / "p",
                                plots=False)
    assert record["analysis"]["kind"] == "bundle"
    assert (tmp_path / "p" / "workspace.json").read_bytes() == \
        (chain["out"] / "workspace.json").read_bytes()


def test_event_files_with_a_cross_section_give_the_recipe_s_model(chain, tmp_path):
    from reanimate.reinterpret.signal_run import reinterpret_signal

    steps = {s["name"]: s for s in _provenance(chain["record"])["steps"]}
    folder = Path(steps["signal_events"]["outputs"]["samples"]["path"])
    entry = json.loads((folder / "catalogue.json").read_text())["signal"]["nominal"]
    files = ",".join(str(folder / f["path"]) for f in entry["files"])
    record = reinterpret_signal(chain["prepared"], f"{files}@xsec_pb={entry['xsec_pb']!r}",
                                output=tmp_path / "files", plots=False,
                                workdir=chain["root"] / "work" / "signals")
    assert "signal_events" not in record["run"]["executed"] + record["run"]["cached"]
    written = json.loads((tmp_path / "files" / "derived" / "signal-catalogue" /
                          "catalogue.json").read_text())
    assert written["signal"]["nominal"]["nevts_total"] == entry["nevts_total"]
    assert (tmp_path / "files" / "workspace.json").read_bytes() == \
        (chain["out"] / "workspace.json").read_bytes()


def test_points_run_concurrently_on_one_shared_cache(chain, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from reanimate.reinterpret.signal_run import reinterpret_signal

    steps = {s["name"]: s for s in _provenance(chain["record"])["steps"]}
    signal = f"histograms:{steps['histograms']['outputs']['histograms']['path']}"
    shared = tmp_path / "shared"
    with ThreadPoolExecutor(2) as pool:
        records = list(pool.map(lambda n: reinterpret_signal(
            chain["prepared"], signal, name=f"p{n}", output=tmp_path / f"p{n}", plots=False,
            workdir=shared), range(2)))
    assert sorted(r["run"]["executed"] + r["run"]["cached"] for r in records) == \
        [["signal_patch"], ["signal_patch"]]
    assert (tmp_path / "p0" / "workspace.json").read_bytes() == \
        (tmp_path / "p1" / "workspace.json").read_bytes()


def test_the_agc_limits_with_a_zprime_equal_pyhf(chain):
    """The AGC model with a Z' signal (the patched workspace): CLs at mu = 1 (observed and the
    five expected) equal pyhf's hypotest, and pyhf's CLs at our observed and median expected
    limits is 1 - CL (pyhf's upper_limit itself takes minutes on this model). Tolerances:
    docs/limits.md."""
    import numpy as np
    import pyhf

    record = json.loads((chain["out"] / "limits.json").read_text())
    assert record["status"] == "ok", record["reason"]
    workspace = pyhf.Workspace(json.loads((chain["out"] / "workspace.json").read_text()))
    model = workspace.model()
    data = workspace.data(model)
    assert model.config.poi_name == "mu_signal"
    pyhf.set_backend("numpy", "scipy")
    init, bounds = model.config.suggested_init(), model.config.suggested_bounds()
    bounds[model.config.poi_index] = (0.0, max(10.0, 2 * max(record["limit_expected"])))

    def cls(mu):
        observed, expected = pyhf.infer.hypotest(
            mu, data, model, init_pars=init, par_bounds=bounds, test_stat="qtilde",
            return_expected_set=True)
        return float(observed), [float(e) for e in expected]

    observed, expected = cls(record["mu"])
    assert np.isclose(record["cls_observed"], observed, rtol=2e-3, atol=1e-5)
    assert np.allclose(record["cls_expected"], expected, rtol=2e-3, atol=1e-5)
    alpha = 1 - record["cl"]
    at_limit, _ = cls(record["limit_observed"])
    assert abs(at_limit - alpha) < 2e-3
    _, expected_at_median = cls(record["limit_expected"][2])
    assert abs(expected_at_median[2] - alpha) < 2e-3


def test_a_bundle_whose_training_is_pinned_is_reinterpreted(tmp_path):
    """The flagship's lock pins the training: its bundle holds the pinned models and no
    training metrics (the step did not run), which a reinterpretation does not need."""
    import shutil

    from reanimate.reinterpret.analysis import prepare_analysis

    repo = Path(__file__).resolve().parents[1]
    root = tmp_path / "analysis"
    (root / "specs").mkdir(parents=True)
    shutil.copy(repo / "specs" / "agc-ttbar.lock.json", root / "specs")
    text = (repo / "specs" / "agc-ttbar.yaml").read_text()
    assert "  events: 20000 " in text
    (root / "specs" / "agc-ttbar.yaml").write_text(text.replace("  events: 20000 ",
                                                                "  events: 10000 ", 1))
    shutil.copytree(repo / "specs" / "models", root / "specs" / "models")
    shutil.copytree(repo / "containers" / "analysis", root / "containers" / "analysis")
    spec, work, bundle = root / "specs" / "agc-ttbar.yaml", tmp_path / "work", tmp_path / "b.zip"
    for args in (["run", spec, "--workdir", work],
                 ["bundle", spec, "--workdir", work, "-o", bundle]):
        done = subprocess.run([sys.executable, "-m", "reanimate.cli", *map(str, args)],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
    prepared = prepare_analysis(bundle, tmp_path / "prepared")
    assert "steps.train.metrics" not in prepared.outputs
    for model in ("model_even", "model_odd"):
        pinned = Path(prepared.output(f"steps.train.{model}"))
        assert pinned.read_bytes() == (repo / "specs" / "models" / "agc-ttbar-jet-assignment"
                                       / "v1" / f"{model}.json").read_bytes()
    done = subprocess.run([sys.executable, "-m", "reanimate.cli", "reinterpret", str(bundle),
                           "--signal", "zprime:mass=1000,events=2000", "-o",
                           str(tmp_path / "point")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "point" / "limits.json").read_text())
    assert record["status"] == "ok" and record["analysis"]["kind"] == "bundle"
