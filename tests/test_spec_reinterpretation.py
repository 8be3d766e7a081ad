"""The spec's reinterpretation: block: the flagship's validates, broken references are located."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from reanimate.spec.loader import validate_text

FLAGSHIP = Path(__file__).resolve().parents[1] / "specs" / "agc-ttbar.yaml"


@pytest.fixture(scope="module")
def flagship() -> dict:
    return yaml.safe_load(FLAGSHIP.read_text())


def test_the_flagship_block_validates():
    spec, problems = validate_text(FLAGSHIP.read_text(), str(FLAGSHIP))
    assert problems == []
    block = spec.reinterpretation
    assert block.steps == ["histograms"] and block.signal_input == "steps.histograms.samples"
    assert block.patch.program == "reanimate.analyses.agc.steps.signal_patch"
    assert block.recipes["zprime"].parameters["mass"] == 1500
    assert block.poi == "mu_signal" and block.confidence_level == 0.95


def _problems(doc: dict) -> list[str]:
    text = yaml.safe_dump(doc, sort_keys=False)
    _, problems = validate_text(text, "s.yaml")
    for problem in problems:
        assert problem.line > 0 and problem.column > 0, problem
    return [f"{p.key_path}: {p.message}" for p in problems]


def _set(doc: dict, path: str, value) -> dict:
    doc = copy.deepcopy(doc)
    node = doc["reinterpretation"]
    *parents, last = path.split("/")
    for key in parents:
        node = node[key]
    node[last] = value
    return doc


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("signal_input", "steps.statmodel.histograms",
     "reinterpretation.signal_input: step 'statmodel' is not one of the signal steps"),
    ("signal_input", "steps.histograms.sample",
     "reinterpretation.signal_input: step 'histograms' has no input 'sample'"),
    ("signal_input", "histograms.samples",
     "reinterpretation.signal_input: 'histograms.samples' is not a reference to a step's input"),
    ("signal_histograms", "steps.histograms.histogram",
     "reinterpretation.signal_histograms: step 'histograms' has no output 'histogram'"),
    ("workspace", "steps.statmodell.workspace",
     "reinterpretation.workspace: step 'statmodell' does not exist"),
    ("steps", ["histogram"], "reinterpretation.steps[0]: step 'histogram' does not exist"),
    ("parameters", {"fit": {"processes": "signal"}},
     "reinterpretation.parameters.fit: 'fit' is not one of the signal steps"),
    ("parameters", {"histograms": {"process": "signal"}},
     "reinterpretation.parameters.histograms.process: reanimate.analyses.agc.steps.histograms "
     "has no parameter 'process'"),
    ("parameters", {"histograms": {"seed": "many"}},
     "reinterpretation.parameters.histograms.seed: --seed of "
     "reanimate.analyses.agc.steps.histograms takes an integer, got 'many'"),
    ("patch/program", "reanimate.analyses.agc.steps.nothing",
     "reinterpretation.patch.program: program module "
     "'reanimate.analyses.agc.steps.nothing' cannot be imported"),
    ("patch/program", "reanimate.analyses.agc.steps.statmodel",
     "reinterpretation.patch.program: reanimate.analyses.agc.steps.statmodel has no input "
     "'signal_histograms'"),
    ("patch/inputs", {"workspace": "steps.statmodel.workspaces"},
     "reinterpretation.patch.inputs.workspace: step 'statmodel' has no output 'workspaces'"),
    ("patch/inputs", {"workspaces": "steps.statmodel.workspace"},
     "reinterpretation.patch.inputs.workspaces: reanimate.analyses.agc.steps.signal_patch has "
     "no input 'workspaces'"),
    ("recipes/zprime/program", "reanimate.analyses.agc.steps.no_signal",
     "reinterpretation.recipes.zprime.program: program module "
     "'reanimate.analyses.agc.steps.no_signal' cannot be imported"),
    ("recipes/zprime/parameters", {"model": "zprime", "mas": 1500},
     "reinterpretation.recipes.zprime.parameters.mas: reanimate.analyses.agc.steps.signal has "
     "no parameter 'mas'"),
    ("recipes/zprime/parameters", {"model": "axion"},
     "reinterpretation.recipes.zprime.parameters.model: --model of "
     "reanimate.analyses.agc.steps.signal must be one of zprime, got 'axion'"),
])
def test_broken_references_are_located(flagship, path, value, expected):
    problems = _problems(_set(flagship, path, value))
    assert any(p.startswith(expected) for p in problems), problems


def test_unknown_keys_and_types_are_reported(flagship):
    problems = _problems(_set(flagship, "confidence_level", 1.5))
    assert any(p.startswith("reinterpretation.confidence_level:") for p in problems), problems
    problems = _problems(_set(flagship, "recipes/zprime/programme", "x"))
    assert any("unknown key 'programme'" in p for p in problems), problems


def test_validate_stays_light(cli):
    """`reanimate validate` of the flagship imports its programs' interfaces, nothing heavy."""
    code = ("import sys; from reanimate.cli import main; sys.argv=['reanimate','validate','"
            f"{FLAGSHIP}']\ntry: main()\nexcept SystemExit: pass\n"
            "heavy=[m for m in ('numpy','pyhf','dask','uproot','awkward','matplotlib') "
            "if m in sys.modules]; print('HEAVY', heavy)")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr
