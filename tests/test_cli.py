"""The `reanimate` command as a user meets it: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

from reanimate.spec import Spec

INVALID = Path(__file__).parent / "specs" / "invalid"
VALID = Path(__file__).parent / "specs" / "valid" / "chain.yaml"


def test_validate_valid_spec_exits_0(cli):
    proc = cli("validate", VALID)
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stderr and "3 steps" in proc.stderr


def test_validate_reports_each_problem_on_one_line_and_exits_2(cli):
    spec = INVALID / "21-undeclared-container.yaml"
    proc = cli("validate", spec)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == (f"{spec}:9:5: steps.a.container: container 'analisys' is not declared "
                        "(did you mean 'analysis'?)")
    assert lines[-1] == "1 problem(s)"
    assert "Traceback" not in proc.stderr


def test_validate_missing_file(cli, tmp_path):
    proc = cli("validate", tmp_path / "nope.yaml")
    assert proc.returncode == 2
    assert "file not found" in proc.stderr and "Traceback" not in proc.stderr


def test_user_error_is_one_line_and_debug_shows_traceback(cli, tmp_path):
    proc = cli("run", VALID, "--workdir", tmp_path, "--set", "missing=1")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: --set missing: no such parameter (declared: n, label)"
    )
    proc = cli("--debug", "run", VALID, "--workdir", tmp_path, "--set", "missing=1")
    assert "Traceback" in proc.stderr


def test_usage_error_exits_2(cli):
    proc = cli("run")
    assert proc.returncode == 2 and "Missing argument" in proc.stderr


def test_schema_is_json_schema_of_the_spec(cli, repo_root):
    """`reanimate schema` prints the packaged copy; it, and the copy beside the specs, are
    byte for byte the models' schema as rendered by reanimate.spec.schema.render (regenerate
    both with `python -m reanimate.spec.schema`)."""
    from reanimate.spec.schema import RESOURCE, packaged, render

    expected = render()
    assert json.loads(expected) == Spec.model_json_schema()
    properties = json.loads(expected)["properties"]
    assert {"metadata", "steps", "datasets", "statistics"} <= set(properties)
    package_copy = repo_root / "src" / "reanimate" / Path(*RESOURCE)
    for path in (package_copy, repo_root / "specs" / "reanimate-spec.schema.json"):
        assert path.read_text() == expected, (
            f"{path} is stale: regenerate it with `python -m reanimate.spec.schema`")
    assert packaged() == expected  # what the installed package ships
    proc = cli("schema")
    assert proc.returncode == 0
    assert proc.stdout == expected
