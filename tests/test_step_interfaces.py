"""Declared step interfaces: one declaration per step program, for argparse, --help and validate."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import yaml

from reanimate.errors import ReanimateError
from reanimate.spec import validate_text
from reanimate.steps.interface import (
    REQUIRED,
    Flag,
    Interface,
    load_interface,
    program_main,
)

PROGRAMS = [
    "reanimate.analyses.agc.steps.datasets",
    "reanimate.analyses.agc.steps.train",
    "reanimate.analyses.agc.steps.histograms",
    "reanimate.analyses.agc.steps.statmodel",
    "reanimate.steps.fit",
    "reanimate.analyses.agc.steps.plots",
    "reanimate.analyses.agc.steps.signal",
    "reanimate.analyses.agc.steps.signal_patch",
]
HEAVY = ("numpy", "awkward", "uproot", "dask", "distributed", "xgboost", "pyhf", "mlflow",
         "matplotlib", "iminuit", "scipy")


@pytest.fixture
def spec_file(tmp_path):
    def write(text: str):
        path = tmp_path / "spec.yaml"
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


def problems(proc) -> list[str]:
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == f"{len(lines) - 1} problem(s)", proc.stderr
    return lines[:-1]


# -- the declarations ----------------------------------------------------------------------
@pytest.mark.parametrize("program", PROGRAMS)
def test_every_program_declares_its_interface(program):
    interface = load_interface(program)
    assert isinstance(interface, Interface)
    assert interface.prog == f"python -m {program}"
    assert interface.description and interface.flags
    assert interface.by_role("output"), "a step writes at least one output"
    for flag in interface.flags:
        assert interface.flag(flag.name) is flag
        if flag.role == "engine":
            assert flag.name.startswith(("dask_", "mlflow_")) and not flag.required


def test_step_modules_import_light():
    code = (
        "import sys\n"
        f"for m in {PROGRAMS + ['reanimate.spec.interface_checks']!r}: __import__(m)\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("program", PROGRAMS)
def test_help_exits_0_and_lists_every_flag(program):
    proc = subprocess.run([sys.executable, "-m", program, "--help"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    interface = load_interface(program)
    for flag in interface.flags:
        assert f"--{flag.name}" in proc.stdout, flag.name
    for role in ("input", "parameter", "output"):
        title = f"{role}s (the spec's {role}s:)"
        assert (title in proc.stdout) == bool(interface.by_role(role)), title


def test_flagship_defaults_are_the_program_defaults(repo_root):
    """Run bare, a program does what the flagship spec asks of it."""
    data = yaml.safe_load((repo_root / "specs" / "agc-ttbar.yaml").read_text())
    globals_ = data["parameters"]
    for name, step in data["steps"].items():
        interface = load_interface(step["program"])
        for key, value in step.get("parameters", {}).items():
            if isinstance(value, str) and value.startswith("${parameters."):
                value = globals_[value.removeprefix("${parameters.").removesuffix("}")]
            assert interface.flag(key).default == value, (name, key)
        for block, fields in (("dask", ("workers", "threads_per_worker", "memory_per_worker")),
                              ("mlflow", ("experiment", "registered_model"))):
            for field in fields if block in step else ():
                flag = interface.flag(f"{block}_{field}")
                assert flag.role == "engine" and flag.default == step[block][field], (name, field)


def test_datasets_compressions_are_the_writers():
    from reanimate.analyses.agc.steps import datasets
    from reanimate.datasets.writing import COMPRESSIONS

    assert datasets.INTERFACE.flag("compression").choices == tuple(COMPRESSIONS)


# -- parsing: the engines' rendering round-trips -------------------------------------------
SAMPLES = {
    "int": [0, 7, 123_456_789_012, -3],
    "float": [0.1, 1e-05, 3, 2.5e10],
    "bool": [True, False],
    "str": ["a,b", "500,750", "", "with space", "none"],
}


def _required_argv(interface: Interface, skip: str) -> list[str]:
    argv = []
    for flag in interface.flags:
        if flag.required and flag.name != skip:
            if flag.role == "parameter":  # a required parameter (the recipe's --mass)
                value = flag.choices[0] if flag.choices else SAMPLES[flag.kind][0]
                argv += [f"--{flag.name}", str(value)]
            else:
                argv += [f"--{flag.name}", "x/y/" if flag.kind == "directory" else "x/y.json"]
    return argv


@pytest.mark.parametrize("program", PROGRAMS)
def test_parser_round_trips_the_engines_rendering(program):
    from reanimate.engines.plan import render

    interface = load_interface(program)
    for flag in interface.by_role("parameter"):
        values = list(flag.choices) if flag.choices else SAMPLES[flag.kind]
        for value in values:
            argv = [f"--{flag.name}", render(value)] + _required_argv(interface, flag.name)
            args = interface.parser().parse_args(argv)
            expected = float(value) if flag.kind == "float" else value
            assert getattr(args, flag.name) == expected, (flag.name, value)
            assert type(getattr(args, flag.name)) is type(expected)
    for flag in interface.by_role("input") + interface.by_role("output"):
        one = "dir/sub/" if flag.kind == "directory" else "a.json"
        paths = ["a/b.root", "c d/e.root"] if flag.many else [one]
        argv = [f"--{flag.name}", *paths] + _required_argv(interface, flag.name)
        got = getattr(interface.parser().parse_args(argv), flag.name)
        assert (got if flag.many else [got]) == paths
    # defaults: nothing but the required flags
    args = interface.parser().parse_args(_required_argv(interface, ""))
    for flag in interface.flags:
        if not flag.required:
            assert getattr(args, flag.name) == flag.default


@pytest.mark.parametrize("program", [p for p in PROGRAMS
                                     if any(f.role == "engine" for f in load_interface(p).flags)])
def test_parser_takes_the_flags_of_the_dask_and_mlflow_blocks(program):
    from reanimate.engines.plan import block_flags
    from reanimate.spec.models import Step

    interface = load_interface(program)
    blocks = {}
    if interface.flag("dask_workers"):
        blocks["dask"] = {"workers": 5, "threads_per_worker": 3, "memory_per_worker": "1.5Gi"}
    if interface.flag("mlflow_experiment"):
        blocks["mlflow"] = {"experiment": "exp-1", "registered_model": "model_2"}
    argv = [x for pair in block_flags(Step(program=program, **blocks)) for x in pair]
    assert argv, "the blocks add flags"
    args = interface.parser().parse_args(argv + _required_argv(interface, ""))
    for block, fields in blocks.items():
        for field, value in fields.items():
            assert getattr(args, f"{block}_{field}") == value


def test_bool_flag_takes_a_value_or_stands_alone():
    from reanimate.analyses.agc.steps import histograms

    parser = histograms.INTERFACE.parser()
    base = ["--samples", "s", "--histograms", "h.root"]
    assert parser.parse_args(base).no_progress is False
    assert parser.parse_args(base + ["--no_progress"]).no_progress is True
    assert parser.parse_args(base + ["--no_progress", "true"]).no_progress is True
    assert parser.parse_args(base + ["--no_progress", "false"]).no_progress is False
    assert parser.parse_args(["--no_progress", *base]).no_progress is True


# -- program_main: the one main of every step ----------------------------------------------
TOY = Interface(
    prog="python -m toy",
    description="A toy step.",
    flags=(
        Flag("data", "file", "input", help="the input"),
        Flag("n", "int", "parameter", default=3),
        Flag("fast", "bool", "parameter", default=False),
        Flag("mode", "str", "parameter", default="a", choices=("a", "b")),
        Flag("out", "file", "output"),
    ),
)


def test_program_main_error_contract(capsys):
    def fails(args):
        raise ReanimateError(f"{args.data}: broken\nsecond line")

    assert program_main(TOY, fails, ["--data", "d.json", "--out", "o"]) == 2
    assert capsys.readouterr().err == "error: python -m toy: d.json: broken; second line\n"

    assert program_main(TOY, lambda args: f"n={args.n} fast={args.fast}",
                        ["--data", "d", "--out", "o", "--fast", "true"]) == 0
    assert capsys.readouterr().err == "n=3 fast=True\n"

    for bad in (["--out", "o"], ["--data", "d", "--out", "o", "--n", "x"],
                ["--data", "d", "--out", "o", "--mode", "c"],
                ["--data", "d", "--out", "o", "--fast", "maybe"],
                ["--dat", "d", "--out", "o"]):  # no abbreviations: a flag is its spec name
        assert program_main(TOY, lambda args: None, bad) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: python -m toy: ") and err.count("\n") == 1, err
    assert program_main(TOY, lambda args: None, ["--help"]) == 0
    assert "--mode a|b" in capsys.readouterr().out


def test_flag_and_interface_refuse_bad_declarations():
    assert Flag("x", "int", "parameter").required and Flag("x", "int", "parameter").default \
        is REQUIRED
    assert not Flag("x", "int", "parameter", default=None).required
    with pytest.raises(ValueError):
        Flag("x", "integer", "parameter")
    with pytest.raises(ValueError):
        Flag("x", "int", "argument")
    with pytest.raises(ValueError):
        Flag("x", "file", "output", many=True)
    with pytest.raises(ValueError):
        Interface("p", "d", (Flag("x", "int", "parameter"), Flag("x", "str", "parameter")))


def test_load_interface(tmp_path, monkeypatch):
    assert load_interface("reanimate.cli") is None  # a program that declares none
    with pytest.raises(ReanimateError, match="'reanimate.steps.nope' cannot be imported"):
        load_interface("reanimate.steps.nope")
    # a program outside reanimate is never imported (validate executes no third-party code)
    (tmp_path / "wrong_interface.py").write_text("open('imported', 'w')\nINTERFACE = {}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert load_interface("wrong_interface") is None
    assert not (tmp_path / "imported").exists()


# -- validate against the declaration ------------------------------------------------------
HEADER = """
metadata: {name: demo, version: "1"}
parameters: {seed: 42, chunk: 1.5, label: x}"""  # lines 1-2


def test_validate_reports_a_misspelt_flag(cli, spec_file):
    path = spec_file(HEADER + """
steps:
  fit:
    program: reanimate.steps.fit
    inputs:
      workspce: file:ws.json
    parameters:
      significanse: true
    outputs: {results: fit.json}
""")
    proc = cli("validate", path)
    assert proc.returncode == 2
    assert problems(proc) == [
        f"{path}:7:7: steps.fit.inputs.workspce: reanimate.steps.fit has no input 'workspce' "
        "(did you mean 'workspace'?)",
        f"{path}:9:7: steps.fit.parameters.significanse: reanimate.steps.fit has no parameter "
        "'significanse' (did you mean 'significance'?)",
    ]
    assert "Traceback" not in proc.stderr


def test_validate_reports_a_wrong_typed_parameter(cli, spec_file):
    path = spec_file(HEADER + """
steps:
  histograms:
    program: reanimate.analyses.agc.steps.histograms
    inputs: {samples: file:samples/}
    parameters:
      seed: yes
      chunk_size: ${parameters.chunk}
      max_files_per_sample: "3"
      processes: ttbar
      no_progress: 1
    outputs: {histograms: h.root}
""")
    proc = cli("validate", path)
    assert proc.returncode == 2
    prog = "reanimate.analyses.agc.steps.histograms"
    assert problems(proc) == [
        f"{path}:8:7: steps.histograms.parameters.seed: --seed of {prog} takes an integer, "
        "got True",
        f"{path}:9:7: steps.histograms.parameters.chunk_size: --chunk_size of {prog} takes an "
        "integer, but ${parameters.chunk} is 1.5 (write a whole number)",
        f"{path}:10:7: steps.histograms.parameters.max_files_per_sample: --max_files_per_sample "
        f"of {prog} takes an integer, got '3' (write the number without quotes)",
        f"{path}:12:7: steps.histograms.parameters.no_progress: --no_progress of {prog} takes a "
        "boolean (true or false), got 1 (write true or false, unquoted)",
    ]


def test_validate_reports_a_missing_required_input(cli, spec_file):
    path = spec_file(HEADER + """
steps:
  statmodel:
    program: reanimate.analyses.agc.steps.statmodel
    outputs: {workspace: ws.json, hs3: m.hs3.json}
  fit:
    program: reanimate.steps.fit
    inputs: {}
    outputs: {results: fit.json}
""")
    proc = cli("validate", path)
    assert proc.returncode == 2
    assert problems(proc) == [
        f"{path}:4:3: steps.statmodel: missing required input 'histograms' of "
        "reanimate.analyses.agc.steps.statmodel (--histograms: histograms.root of the AGC stage)",
        f"{path}:9:5: steps.fit.inputs: missing required input 'workspace' of "
        "reanimate.steps.fit (--workspace: pyhf workspace (JSON))",
    ]


def test_validate_reports_misplaced_flags_outputs_and_blocks(spec_file):
    path = spec_file(HEADER + """
datasets:
  raw: {files: [{path: a.root}, {path: b.root}]}
steps:
  train:
    program: reanimate.analyses.agc.steps.train
    inputs: {samples: datasets.raw, seed: file:x}
    parameters: {metrics: m.json, mlflow_experiment: e, learning_rate: 1}
    outputs: {model_even: m/even.json, model_odd: m/odd.json}
    dask: {workers: 2}
  plots:
    program: reanimate.analyses.agc.steps.plots
    inputs:
      histograms: [steps.statmodel.x, file:h.root]
      workspace: file:ws.json
      fit: file:fit.json
    outputs: {plots: figures}
""")
    _, found = validate_text(path.read_text(), str(path))
    got = [(p.key_path, p.message + (f" ({p.hint})" if p.hint else "")) for p in found]
    train, plots = "reanimate.analyses.agc.steps.train", "reanimate.analyses.agc.steps.plots"
    assert got == [
        ("steps.train.inputs.samples",
         f"--samples of {train} takes one path, but this input gives 2 "
         "(reference a single output or file)"),
        ("steps.train.inputs.seed",
         f"--seed is a parameter of {train}; list it under parameters:"),
        ("steps.train.parameters.metrics",
         f"--metrics is an output of {train}; list it under outputs:"),
        ("steps.train.parameters.mlflow_experiment",
         f"--mlflow_experiment of {train} is set by the engines from the step's mlflow: block; "
         "parameters: may not name it (write mlflow: {experiment: ...})"),
        ("steps.train.dask",
         f"the dask: block adds --dask_workers, --dask_threads_per_worker, "
         f"--dask_memory_per_worker, which {train} does not take (remove the dask: block)"),
        ("steps.plots.inputs.histograms",
         f"--histograms of {plots} takes one path, but this input gives 2 "
         "(reference a single output or file)"),
        ("steps.plots.inputs.histograms",
         "step 'statmodel' does not exist"),
        ("steps.plots.outputs.plots",
         f"--plots of {plots} writes a directory, but 'figures' declares a file "
         "(write 'figures/': a trailing '/' marks a directory)"),
    ]


def test_a_third_party_program_is_located_not_executed(tmp_path, monkeypatch):
    (tmp_path / "broken_step.py").write_text("raise RuntimeError('no such detector')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    text = HEADER + "\nsteps:\n  a:\n    program: broken_step\n"
    spec, found = validate_text(text, "s.yaml")
    assert found == [] and spec is not None  # found on the path; its code is not run


def test_flagship_validates_clean(cli, repo_root):
    proc = cli("validate", repo_root / "specs" / "agc-ttbar.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "6 steps" in proc.stderr


def test_the_ml_test_specs_validate_clean():
    """Specs of other tests that use the step programs stay valid."""
    from test_ml_training import PIN_SPEC

    spec, found = validate_text(PIN_SPEC, "pin.yaml")
    assert spec is not None, "\n".join(map(str, found))


def test_findings_are_json_friendly():
    """Every finding's loc is a path into the data (str keys and int indexes)."""
    from reanimate.spec.interface_checks import check_step_interface

    data = yaml.safe_load(HEADER + "\nsteps:\n  f:\n    program: reanimate.steps.fit\n"
                          "    parameters: {1: 2, x: [1]}\n")
    found = list(check_step_interface(data, "f", data["steps"]["f"]))
    json.dumps([list(loc) for loc, _, _ in found])
    assert {loc for loc, _, _ in found} >= {("steps", "f", "parameters", 1), ("steps", "f")}
