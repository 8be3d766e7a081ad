"""`reanimate plan`: the resolved plan says what a run would do, and why, before it runs.

The flagship runs once (its defaults: about 30 s); the plan is then asked about the same parameters
(everything cached), about `--set seed=7` (exactly the seed-dependent steps and their
dependants, with the reason), and about a copy of the reanimate package whose statistics/
module was edited (exactly fit and its dependants, because of their code).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import reanimate
from reanimate.engines.local import run_spec
from reanimate.engines.plan import make_plan
from reanimate.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
FLAGSHIP = REPO / "specs" / "agc-ttbar.yaml"


def plan_json(*args: str, env: dict | None = None, cwd: Path | None = None) -> dict:
    proc = subprocess.run([sys.executable, "-m", "reanimate.cli", "plan", *args, "--json"],
                          capture_output=True, text=True, env=env, cwd=cwd, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def by_name(result: dict) -> dict[str, dict]:
    return {step["name"]: step for step in result["steps"]}


@pytest.fixture(scope="module")
def flagship_run(tmp_path_factory) -> Path:
    """The flagship run with its training step (a copy of the spec without the committed lock,
    which pins the training); the copy is WORKDIR/../agc-ttbar.yaml."""
    root = tmp_path_factory.mktemp("plan")
    shutil.copyfile(FLAGSHIP, root / FLAGSHIP.name)
    workdir = root / "work"
    report = run_spec(load_spec(root / FLAGSHIP.name), workdir)
    assert not report.failed, report.records
    return workdir


def training(workdir: Path) -> str:
    return str(workdir.parent / FLAGSHIP.name)


def test_the_committed_lock_pins_the_training_so_plan_says_pinned(flagship_run):
    result = plan_json(str(FLAGSHIP), "--workdir", str(flagship_run))
    steps = by_name(result)
    assert steps["train"]["status"] == "pinned", steps["train"]
    # the pinned files are the ones this spec's own training makes, byte for byte
    lock = json.loads((FLAGSHIP.parent / "agc-ttbar.lock.json").read_text())
    for output, entry in lock["models"]["train"]["files"].items():
        made = flagship_run / "results" / "train" / "models" / f"{output}.json"
        assert made.read_bytes() == (FLAGSHIP.parent / entry["path"]).read_bytes()


def test_plan_after_a_run_says_every_step_is_cached(flagship_run):
    result = plan_json(training(flagship_run), "--workdir", str(flagship_run))
    steps = by_name(result)
    assert list(steps) == ["datasets", "train", "histograms", "statmodel", "fit", "plots"]
    assert all(s["status"] == "cached" for s in steps.values()), steps
    assert result["summary"]["cached"] == list(steps)
    assert result["summary"]["run"] == []
    # the keys are those the run stored
    for name, step in steps.items():
        assert (flagship_run / "cache" / name / step["key"]).is_dir()


def test_plan_with_a_new_seed_names_exactly_what_reruns_and_why(flagship_run):
    result = plan_json(training(flagship_run), "--workdir", str(flagship_run), "--set", "seed=7")
    steps = by_name(result)
    assert result["summary"]["run"] == list(steps)  # seed feeds datasets, so everything
    for name in ("datasets", "train", "histograms"):
        assert "parameter seed: 42 -> 7" in steps[name]["reasons"], steps[name]
    assert steps["statmodel"]["reasons"] == ["upstream histograms runs"]
    assert steps["fit"]["reasons"] == ["upstream statmodel runs"]
    # the seed on the command line of the step that reads it
    command = steps["datasets"]["command"]
    assert command[command.index("--seed") + 1] == "7"


def test_plan_only_a_late_step_with_new_chunking_reruns_only_it(flagship_run):
    # chunk_size changes only the histogram stage's key (its bytes do not depend on it)
    result = plan_json(training(flagship_run), "--workdir", str(flagship_run),
                       "--set", "chunk_size=500", "--only", "histograms")
    steps = by_name(result)
    assert steps["histograms"]["status"] == "run"
    assert steps["histograms"]["reasons"] == ["parameter chunk_size: 100000 -> 500"]
    assert steps["datasets"]["status"] == steps["train"]["status"] == "cached"
    assert steps["fit"]["status"] == "not-selected"


def test_editing_statistics_changes_exactly_the_keys_of_fit_and_its_dependants(
        flagship_run, tmp_path):
    package = tmp_path / "pkg"
    shutil.copytree(Path(reanimate.__file__).parent, package / "reanimate",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH=str(package))
    args = (training(flagship_run), "--workdir", str(flagship_run))
    before = by_name(plan_json(*args, env=env, cwd=tmp_path))
    assert all(s["status"] == "cached" for s in before.values())  # a copy is the same code
    fitting = package / "reanimate" / "statistics" / "fitting.py"
    fitting.write_text(fitting.read_text() + "\n# a developer's edit\n")
    after = by_name(plan_json(*args, env=env, cwd=tmp_path))
    changed = [n for n in after if after[n]["key"] != before[n]["key"]]
    assert changed == ["fit", "plots"]
    assert after["fit"]["status"] == "run" and after["fit"]["reasons"] == ["code changed"]
    assert after["plots"]["status"] == "run"
    assert all(after[n]["status"] == "cached"
               for n in ("datasets", "train", "histograms", "statmodel"))


def test_plan_writes_nothing(flagship_run):
    before = sorted(p.relative_to(flagship_run) for p in flagship_run.rglob("*"))
    stamps = {p: p.stat().st_mtime_ns for p in flagship_run.rglob("*") if p.is_file()}
    plan_json(training(flagship_run), "--workdir", str(flagship_run), "--set", "seed=3")
    assert sorted(p.relative_to(flagship_run) for p in flagship_run.rglob("*")) == before
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


COMMAND_SPEC = """
metadata: {name: code-test, version: "1"}
steps:
  make:
    command: [python, "{inputs.script}", "{outputs.out}"]
    inputs: {script: "file:script.py"}
    code: [lib.py]
    outputs: {out: out.txt}
  use:
    command: [python, -c, "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])",
              "{inputs.src}", "{outputs.out}"]
    inputs: {src: steps.make.out}
    outputs: {out: copy.txt}
"""
SCRIPT = "import sys, lib; open(sys.argv[1], 'w').write(lib.WORD)\n"


def test_a_command_steps_declared_code_is_part_of_its_key(tmp_path):
    # script.py is an input (hashed, staged); lib.py, which it imports, is declared as code
    (tmp_path / "script.py").write_text(SCRIPT)
    (tmp_path / "lib.py").write_text("WORD = 'one'\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(COMMAND_SPEC)
    workdir = tmp_path / "work"
    assert run_spec(load_spec(spec), workdir).executed == ["make", "use"]
    assert by_name(plan_json(str(spec), "--workdir", str(workdir)))["make"]["status"] == "cached"
    (tmp_path / "lib.py").write_text("WORD = 'two'\n")
    steps = by_name(plan_json(str(spec), "--workdir", str(workdir)))
    assert steps["make"]["reasons"] == ["code changed"]
    assert steps["use"]["reasons"] == ["upstream make runs"]
    report = run_spec(load_spec(spec), workdir)
    assert report.executed == ["make", "use"]
    assert (workdir / "results" / "use" / "copy.txt").read_text() == "two"


def test_a_missing_code_file_is_one_clear_error(tmp_path, cli):
    (tmp_path / "script.py").write_text(SCRIPT)
    spec = tmp_path / "spec.yaml"
    spec.write_text(COMMAND_SPEC)
    proc = cli("plan", str(spec), "--workdir", str(tmp_path / "work"))
    assert proc.returncode == 2
    assert "code file lib.py not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_plan_resolves_parameters_references_and_argv_once():
    plan = make_plan(load_spec(FLAGSHIP), {"seed": "5"})
    histograms = plan.steps["histograms"]
    assert histograms.parameters == {"seed": 5, "chunk_size": 100000}
    assert histograms.parameter_sources == {"seed": "seed", "chunk_size": "chunk_size"}
    assert [str(i.ref) for i in histograms.inputs["model_even"]] == ["steps.train.model_even"]
    assert histograms.upstream == ["datasets", "train"]
    flags = [a.flag for a in histograms.args if a.flag]
    assert flags[:3] == ["--samples", "--model_even", "--model_odd"]
    assert "--dask_workers" in flags
    assert plan.order == ["datasets", "train", "histograms", "statmodel", "fit", "plots"]


def test_the_training_run_ids_are_in_the_provenance_not_in_the_outputs(flagship_run):
    provenance = json.loads((flagship_run / "runs" / "latest" / "provenance.json").read_text())
    train = next(s for s in provenance["steps"] if s["name"] == "train")
    assert len(train["facts"]["mlflow"]["run_id"]) == 32 and train["facts"]["mlflow"]["version"]
    metrics = flagship_run / "results" / "train" / "models" / "training_metrics.json"
    assert train["facts"]["mlflow"]["run_id"] not in metrics.read_text()
