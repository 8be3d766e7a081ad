"""reana.yaml export, checked by the real reana-client 0.9.6 from .venv-reana (offline)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from engine_specs import SPEC

from reanimate.engines.local import run_spec
from reanimate.engines.reana import export_reana
from reanimate.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
CLIENT = REPO / ".venv-reana" / "bin" / "reana-client"
SPECS = sorted((REPO / "specs").glob("*.yaml"))

needs_client = pytest.mark.skipif(not CLIENT.exists(), reason="run `make .venv-reana` first")


def reana_validate(reana_yaml: Path) -> tuple[int, list[str]]:
    """Run `reana-client validate`; return its exit code and REANA's own warning lines."""
    env = dict(os.environ, PATH=f"{CLIENT.parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONWARNINGS="ignore")
    proc = subprocess.run([str(CLIENT), "validate", "-f", str(reana_yaml)], cwd=reana_yaml.parent,
                          env=env, capture_output=True, text=True, check=False)
    lines = (proc.stdout + proc.stderr).splitlines()
    warnings = [line.strip() for line in lines if "-> WARNING" in line or "-> ERROR" in line]
    return proc.returncode, warnings


@pytest.fixture
def project(tmp_path: Path):
    (tmp_path / "data.txt").write_text("abc\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("steps:\n", "containers:\n  env: {image: 'python:3.11-slim'}\n"
                                 "steps:\n", 1).replace("    command:", "    container: env\n"
                                                        "    command:"))
    return tmp_path, spec


@needs_client
@pytest.mark.parametrize("workflow_type", ["cwl", "serial"])
def test_reana_client_accepts_export(project, workflow_type):
    root, spec = project
    written = export_reana(load_spec(spec), root / "reana.yaml", workflow_type)
    code, warnings = reana_validate(written["reana"])
    assert code == 0 and warnings == [], warnings
    doc = yaml.safe_load(written["reana"].read_text())
    assert doc["workflow"]["type"] == workflow_type
    assert "data.txt" in doc["inputs"]["files"]
    assert doc["tests"]["files"] == ["workflow/tests/engine-test.feature"]


@needs_client
@pytest.mark.parametrize("spec_path", SPECS, ids=[p.stem for p in SPECS])
def test_every_committed_spec_exports_cleanly(spec_path, tmp_path):
    for version in ("0.9", "0.95"):
        out = tmp_path / version / "reana.yaml"
        # export beside a copy of the spec's folder (its lock, pinned model files) so that
        # relative inputs stay inside
        shutil.copytree(spec_path.parent, out.parent / "specs")
        loaded = load_spec(out.parent / "specs" / spec_path.name)
        written = export_reana(loaded, out, "cwl", version) if not loaded.spec.datasets else None
        if written is None:
            pytest.skip("spec reads external datasets")
        code, warnings = reana_validate(written["reana"])
        has_dask = any(s.dask for s in loaded.spec.steps.values())
        assert code == 0
        if version == "0.9" or not has_dask:
            assert warnings == [], warnings
        else:
            unexpected = [w for w in warnings if "'dask'" not in w and "appears valid" not in w
                          and "make sure" not in w]
            assert unexpected == [] and any("'dask'" in w for w in warnings), warnings


def test_dask_block_only_with_reana_095(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("""
metadata: {name: dasky, version: "1"}
containers: {env: {image: "reanimate/agc:0.1.0"}}
steps:
  stage:
    program: reanimate.cli
    container: env
    outputs: {out: out.json}
    dask: {workers: 4, threads_per_worker: 2, memory_per_worker: 1536Mi}
""")
    plain = yaml.safe_load(export_reana(load_spec(spec), tmp_path / "a.yaml")["reana"]
                           .read_text())
    assert "resources" not in plain["workflow"]
    new = yaml.safe_load(export_reana(load_spec(spec), tmp_path / "b.yaml", "cwl", "0.95")
                         ["reana"].read_text())
    assert new["workflow"]["resources"]["dask"] == {
        "image": "reanimate/agc:0.1.0", "number_of_workers": 4,
        "single_worker_memory": "1536Mi", "single_worker_threads": 2}


def test_serial_commands_chain_step_folders(project):
    root, spec = project
    doc = yaml.safe_load(export_reana(load_spec(spec), root / "reana.yaml", "serial")["reana"]
                         .read_text())
    steps = {s["name"]: s for s in doc["workflow"]["specification"]["steps"]}
    assert doc["inputs"]["parameters"] == {"factor": 2, "tag": "first"}
    combine = steps["combine"]["commands"][0]
    assert combine.startswith("mkdir -p results/combine && cd results/combine && python -c")
    assert "../../results/scale/scaled.txt ../../results/label/label.txt combined.txt" in combine
    assert '"${factor}"' in steps["scale"]["commands"][0]
    assert steps["report"]["commands"][0].startswith("mkdir -p results/report "
                                                     "results/report/report &&")
    assert doc["outputs"]["files"][-1] == "results/report/report/report.txt"


def test_blessed_feature_lists_local_checksums(project):
    root, spec = project
    loaded = load_spec(spec)
    run_spec(loaded, root / "work")
    written = export_reana(loaded, root / "reana.yaml", blessed=root / "work")
    feature = written["feature"].read_text()
    assert 'Then the workflow status should be "finished"' in feature
    assert 'And the workspace should include "outputs/combined.txt"' in feature
    import hashlib

    digest = hashlib.sha256(b"abc\nabc\nfirst").hexdigest()
    assert f"the sha256 checksum of the file outputs/combined.txt should be {digest}" in feature


def test_submit_dry_run_and_missing_server(project, cli):
    root, spec = project
    proc = cli("submit", spec, "--workdir", root / "w", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].endswith(f"validate -f {root}/w/reana/engine-test/reana.yaml")
    assert " run -w engine-test -f " in lines[1]
    env_free = {k: v for k, v in os.environ.items() if not k.startswith("REANA_")}
    proc = subprocess.run([sys.executable, "-m", "reanimate.cli", "submit", str(spec),
                           "--workdir", str(root / "w")], env=env_free, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: REANA_SERVER_URL and REANA_ACCESS_TOKEN not set: export the address of your "
        "REANA server and your access token (see `reana-client --help`)")


def test_committed_root_reana_yaml_matches_the_flagship_export(tmp_path):
    flagship = REPO / "specs" / "agc-ttbar.yaml"
    if not flagship.exists():
        pytest.skip("no flagship spec yet")
    committed = (REPO / "reana.yaml").read_text()
    # export into a copy of the layout: the spec (its lock, pinned model files) in specs/,
    # reana.yaml at the root
    shutil.copytree(flagship.parent, tmp_path / "specs")
    copy = tmp_path / "specs" / "agc-ttbar.yaml"
    written = export_reana(load_spec(copy), tmp_path / "reana.yaml")
    assert written["reana"].read_text() == committed, "regenerate: reanimate export reana " \
        "specs/agc-ttbar.yaml"
    for name in ("workflow/main.cwl", "job.yml"):
        assert (tmp_path / name).read_text() == (REPO / name).read_text(), name
