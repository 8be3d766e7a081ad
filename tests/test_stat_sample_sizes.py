"""The flagship at the sample sizes that used to break it (issue 12): 30,000 events failed in the
model builder (a single-top variation lost all its events), 40,000 ran away in the fit. Each runs
`reanimate run specs/agc-ttbar.yaml --set events=N --set seed=S` up to the fit (no plots), as
the README's tour does, and must end with a converged fit, no nuisance parameter at a bound, and
a treatment report that says what was done."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

FLAGSHIP = Path(__file__).resolve().parents[1] / "specs" / "agc-ttbar.yaml"
CHAIN = ("datasets", "train", "histograms", "statmodel", "fit")


@pytest.mark.parametrize("events,seed", [(30000, 42), (30000, 7), (40000, 42), (40000, 123)])
def test_flagship_fit_converges(tmp_path, events, seed):
    work = tmp_path / "work"
    only = [arg for step in CHAIN for arg in ("--only", step)]
    proc = run_cli("run", FLAGSHIP, "--workdir", work, "--set", f"events={events}",
                   "--set", f"seed={seed}", *only)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fit = json.loads((work / "results" / "fit" / "fit" / "fit_results.json").read_text())
    assert fit["converged"], fit["status"]
    assert fit["status"]["reason"] is None and fit["status"]["at_bounds"] == []
    assert 0.3 < fit["poi"]["value"] < 2.0 and 0 < fit["poi"]["error"] < 1.0
    report = json.loads((work / "results" / "statmodel" / "statmodel" /
                         "statmodel_report.json").read_text())
    assert {c["name"] for c in report["channels"]} == {"4j1b_CR", "4j2b_SR"}
    assert report["treatments"]["max_mc_rel_error"] == 0.2
    rows = report["systematics"]
    assert rows and all(r["normsys"] in ("kept", "pruned", "dropped") for r in rows)
    # the model's bins are the report's: the same count per channel in the workspace
    workspace = json.loads((work / "results" / "statmodel" / "statmodel" /
                            "workspace.json").read_text())
    for ch in workspace["channels"]:
        edges = next(c["edges"] for c in report["channels"] if c["name"] == ch["name"])
        assert all(len(s["data"]) == len(edges) - 1 for s in ch["samples"])
