"""CWL export: cwltool accepts it, and a cwltool run gives the local engine's bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from engine_specs import SPEC

from reanimate.engines.cwl import export_cwl, run_cwl
from reanimate.engines.local import run_spec
from reanimate.engines.plan import write_spec_lock
from reanimate.errors import DigestMismatch
from reanimate.spec import load_spec

BIN = Path(sys.executable).parent
ENV = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.fixture
def project(tmp_path: Path):
    (tmp_path / "data.txt").write_text("abc\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    return tmp_path, spec


def cwltool(*args, cwd=None):
    return subprocess.run([str(BIN / "cwltool"), *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, check=False)


def test_exported_workflow_validates(project):
    root, spec = project
    written = export_cwl(load_spec(spec), root / "cwl")
    proc = cwltool("--validate", written["main"])
    assert proc.returncode == 0, proc.stderr
    assert "is valid CWL" in proc.stdout + proc.stderr
    main = yaml.safe_load(written["main"].read_text())
    assert main["cwlVersion"] == "v1.2" and main["class"] == "Workflow"
    assert set(main["steps"]) == {"scale", "label", "combine", "report"}
    job = yaml.safe_load(written["job"].read_text())
    assert job["param_factor"] == "2" and job["dataset_raw"][0]["location"] == "../data.txt"


def test_program_step_tool_shape(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("""
metadata: {name: shape, version: "1"}
containers: {env: {image: "reanimate/agc:0.1.0"}}
steps:
  stage:
    program: reanimate.cli
    container: env
    parameters: {flag: true, events: 10}
    outputs: {out: sub/out.json}
    resources: {memory: 3Gi}
    dask: {workers: 3, memory_per_worker: 1Gi}
""")
    written = export_cwl(load_spec(spec), tmp_path / "cwl")
    tool = yaml.safe_load(written["steps/stage"].read_text())
    assert tool["baseCommand"] == ["python", "-m", "reanimate.cli"]
    assert tool["hints"]["DockerRequirement"] == {"dockerPull": "reanimate/agc:0.1.0"}
    assert tool["hints"]["ResourceRequirement"]["ramMin"] == 3072
    assert "DockerRequirement" not in tool.get("requirements", {})
    flags = [a["prefix"] for a in tool["arguments"]]
    assert flags == ["--out", "--dask_workers", "--dask_threads_per_worker",
                     "--dask_memory_per_worker"]
    assert tool["requirements"]["InitialWorkDirRequirement"]["listing"][0]["basename"] == "sub"
    main = yaml.safe_load(written["main"].read_text())
    assert main["steps"]["stage"]["hints"] == {"reana": {"kubernetes_memory_limit": "3Gi"}}
    assert main["steps"]["stage"]["in"]["flag"] == {"default": "true"}
    assert cwltool("--validate", written["main"]).returncode == 0


def test_cwltool_run_gives_the_local_engines_bytes(project):
    root, spec = project
    loaded = load_spec(spec)
    local = run_spec(loaded, root / "local")
    assert not local.failed
    outputs = run_cwl(loaded, root / "cwlrun")
    assert set(outputs) == {"scale__out", "label__out", "combine__out", "report__out"}
    for key, info in outputs.items():
        step = key.split("__")[0]
        rel = loaded.spec.steps[step].outputs["out"]
        local_bytes = (root / "local" / "results" / step / rel).read_bytes()
        assert Path(info["path"]).read_bytes() == local_bytes, key


def test_cwl_run_refuses_tampered_input(project):
    root, spec = project
    write_spec_lock(load_spec(spec))
    (root / "data.txt").write_text("changed\n")
    with pytest.raises(DigestMismatch, match="data.txt"):
        run_cwl(load_spec(spec), root / "cwlrun")


def test_cli_engine_cwl_with_provenance(project, cli):
    root, spec = project
    proc = cli("run", spec, "--engine", "cwl", "--provenance", "--workdir", root / "w")
    assert proc.returncode == 0, proc.stderr
    assert (root / "w" / "cwl-provenance" / "bagit.txt").exists()
    assert Path(yaml.safe_load(proc.stdout)["report__out"]).read_text() == "abc\nabc\nfirst"


def test_program_parameters_are_typed_from_their_declared_interface(tmp_path):
    flagship = Path(__file__).resolve().parents[1] / "specs" / "agc-ttbar.yaml"
    written = export_cwl(load_spec(flagship), tmp_path / "cwl")
    histograms = yaml.safe_load(written["steps/histograms"].read_text())
    assert histograms["inputs"]["seed"]["type"] == "int"
    assert histograms["inputs"]["chunk_size"]["type"] == "int"
    assert histograms["inputs"]["samples"]["type"] == "Directory"
    datasets = yaml.safe_load(written["steps/datasets"].read_text())
    assert datasets["inputs"]["compression"]["type"] == "string"
    fit = yaml.safe_load(written["steps/fit"].read_text())
    assert fit["inputs"]["significance"]["type"] == {"type": "enum", "symbols": ["true", "false"]}
    main = yaml.safe_load(written["main"].read_text())
    assert main["inputs"]["param_seed"] == {"type": "int"}
    job = yaml.safe_load(written["job"].read_text())
    assert job["param_seed"] == 42 and job["param_events"] == 20000
    assert cwltool("--validate", written["main"]).returncode == 0
    # a job value of the wrong type is refused by cwltool itself
    job["param_seed"] = "forty-two"
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(job))
    proc = cwltool("--validate", written["main"], tmp_path / "bad.yml")
    assert proc.returncode != 0
    said = " ".join((proc.stdout + proc.stderr).split())  # cwltool wraps its lines
    assert "param_seed" in said and "is not int" in said


def test_cwltool_follows_the_quoting_and_null_rules_of_the_local_engine(tmp_path):
    """A placeholder inside a `sh -c` string is shell-quoted, a null is '' in a command and a
    left-out flag in a program: cwltool gives the local engine's bytes."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("""
metadata: {name: quoting, version: "1"}
parameters: {label: "it's a $label; done", nothing: null}
steps:
  shell:
    command: [sh, -c, "printf '%s|%s|' {parameters.label} {parameters.none} > {outputs.out}",
              "{parameters.none}"]
    parameters: {label: "${parameters.label}", none: "${parameters.nothing}"}
    outputs: {out: out.txt}
""")
    local = run_spec(load_spec(spec), tmp_path / "local")
    assert not local.failed, local.records
    mine = (tmp_path / "local" / "results" / "shell" / "out.txt").read_bytes()
    assert mine == b"it's a $label; done||"
    outputs = run_cwl(load_spec(spec), tmp_path / "cwl", container=False)
    assert Path(outputs["shell__out"]["path"]).read_bytes() == mine
