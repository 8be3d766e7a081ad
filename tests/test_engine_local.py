"""The local engine: caching by content, failure handling, input locking, concurrency."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from engine_specs import FAIL, JOIN, SLEEP, SPEC

from reanimate.engines.local import run_spec
from reanimate.engines.plan import write_spec_lock
from reanimate.errors import DigestMismatch, ReanimateError
from reanimate.spec import load_spec


@pytest.fixture
def project(tmp_path: Path):
    (tmp_path / "data.txt").write_text("abc\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    return tmp_path, spec


def run(spec: Path, workdir: Path, **kwargs):
    return run_spec(load_spec(spec), workdir, **kwargs)


def provenance(report) -> dict:
    return json.loads((report.run_dir / "provenance.json").read_text())


def test_first_run_executes_all_and_writes_results(project):
    root, spec = project
    report = run(spec, root / "work")
    assert sorted(report.executed) == ["combine", "label", "report", "scale"]
    assert (root / "work/results/report/report/report.txt").read_text() == "abc\nabc\nfirst"


def test_unchanged_spec_executes_nothing(project):
    root, spec = project
    run(spec, root / "work")
    again = run(spec, root / "work")
    assert again.executed == []
    assert sorted(again.with_status("cached")) == ["combine", "label", "report", "scale"]


def test_changing_one_parameter_reruns_only_dependants(project):
    root, spec = project
    run(spec, root / "work")
    spec.write_text(SPEC.replace("tag: first", "tag: second"))
    report = run(spec, root / "work")
    assert sorted(report.executed) == ["combine", "label", "report"]
    assert report.with_status("cached") == ["scale"]
    # the override flag does the same without editing the file
    report = run(spec, root / "work", overrides={"factor": "3"})
    assert sorted(report.executed) == ["combine", "report", "scale"]


def test_deleting_a_cached_output_reruns_its_step(project):
    root, spec = project
    first = run(spec, root / "work")
    cached_file = Path(provenance(first)["steps"][0]["outputs"]["out"]["path"])
    assert cached_file.name == "scaled.txt"
    cached_file.unlink()
    report = run(spec, root / "work")
    assert report.executed == ["scale"]  # same bytes again, so nothing downstream reruns
    assert cached_file.read_text() == "abc\nabc\n"


def test_failing_step_keeps_upstream_and_stops_dependants(project):
    root, spec = project
    run(spec, root / "work")
    broken = SPEC.replace(f'"{JOIN}", "{{inputs.a}}"', f'"{FAIL}", "{{inputs.a}}"')
    spec.write_text(broken.replace("tag: first", "tag: other"))
    report = run(spec, root / "work")
    assert report.failed == ["combine"]
    assert report.with_status("skipped") == ["report"]
    assert report.executed == ["label"]
    record = {s["name"]: s for s in provenance(report)["steps"]}
    assert record["combine"]["exit_code"] == 1
    for step in ("scale", "label"):
        assert Path(record[step]["outputs"]["out"]["path"]).exists()
    assert "something broke here" in (root / "work/runs/latest/logs/combine.stderr").read_text()


def test_failure_through_cli_shows_stderr_tail(project, cli):
    root, spec = project
    spec.write_text(SPEC.replace(f'"{JOIN}", "{{inputs.c}}"', f'"{FAIL}", "{{inputs.c}}"'))
    proc = cli("run", spec, "--workdir", root / "work")
    assert proc.returncode == 1
    assert "report: failed (exit code 1)" in proc.stderr
    assert "something broke here" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads(proc.stdout)["failed"] == ["report"]


def test_missing_output_is_a_failure(project):
    root, spec = project
    extra = "outputs: {out: label.txt, x: x.txt}"
    spec.write_text(SPEC.replace("outputs: {out: label.txt}", extra))
    report = run(spec, root / "work")
    assert report.failed == ["label"]
    assert "did not write output(s): x" in report.records["label"].message


def test_tampered_input_is_refused(project, cli):
    root, spec = project
    path, count = write_spec_lock(load_spec(spec))
    assert count == 1 and path.name == "spec.lock.json"
    run(spec, root / "work")
    (root / "data.txt").write_text("abd\n")
    with pytest.raises(DigestMismatch) as info:
        run(spec, root / "work")
    message = str(info.value)
    locked = json.loads(path.read_text())["files"]["data.txt"]["sha256"]
    assert "data.txt" in message and locked in message
    proc = cli("run", spec, "--workdir", root / "work")
    assert proc.returncode == 2 and "refusing to use it" in proc.stderr
    assert proc.stderr.count("\n") <= 2  # one clear line (plus the lock warning at most)


def test_input_missing_from_lock_is_refused(project):
    root, spec = project
    write_spec_lock(load_spec(spec))
    spec.write_text(SPEC.replace("path: data.txt", "path: other.txt"))
    (root / "other.txt").write_text("x")
    with pytest.raises(DigestMismatch, match="not in the lock"):
        run(spec, root / "work")


def test_independent_steps_run_concurrently(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""
metadata: {{name: concurrent, version: "1"}}
steps:
  left:
    command: [python, -c, "{SLEEP}", "{{outputs.out}}"]
    outputs: {{out: left.txt}}
  right:
    command: [python, -c, "{SLEEP}", "{{outputs.out}}"]
    outputs: {{out: right.txt}}
""")
    report = run(spec, tmp_path / "work", jobs=2)
    steps = {s["name"]: s for s in provenance(report)["steps"]}
    interval = {n: (datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"]))
                for n, s in steps.items()}
    (a0, a1), (b0, b1) = interval["left"], interval["right"]
    assert a0 < b1 and b0 < a1, "the two steps did not overlap in time"
    # and with --jobs 1 they do not
    report = run(spec, tmp_path / "work1", jobs=1)
    steps = {s["name"]: s for s in provenance(report)["steps"]}
    assert steps["right"]["start"] >= steps["left"]["end"]


def test_only_and_from_select_steps(project):
    root, spec = project
    run(spec, root / "work")
    report = run(spec, root / "work", only=["combine"], force=True)
    assert report.executed == ["combine"]
    assert report.records["report"].status == "not-selected"
    report = run(spec, root / "work", from_step="combine", force=True)
    assert sorted(report.executed) == ["combine", "report"]
    with pytest.raises(ReanimateError, match="no step 'nope'"):
        run(spec, root / "work", only=["nope"])


def test_only_without_cached_upstream_is_a_clear_error(project):
    root, spec = project
    with pytest.raises(ReanimateError, match="no valid cached result"):
        run(spec, root / "fresh", only=["report"])


def test_provenance_records_commands_digests_and_versions(project):
    root, spec = project
    report = run(spec, root / "work")
    prov = provenance(report)
    assert prov["environment"]["python"].count(".") == 2
    assert prov["environment"]["packages"]["numpy"]
    scale = next(s for s in prov["steps"] if s["name"] == "scale")
    assert scale["exit_code"] == 0 and scale["start"] <= scale["end"]
    assert scale["inputs"]["src"][0]["sha256"] == (
        "edeaaff3f1774ad2888673770c6d64097e391bc362d7d6fb34982ddf0efd18cb"
    )
    assert scale["outputs"]["out"]["sha256"] and "-c" in scale["command"]
    assert (root / "work/runs/latest").resolve() == report.run_dir.resolve()
