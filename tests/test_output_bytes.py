"""Speed-ups must not change a byte: the whole flagship chain (samples, training, histograms with
ML, statistical model, fit with significance, plots) on 4000 events, every output file's sha256
against the digests blessed in tests/data/output_digests.json.

Two runs: one with the flagship's two Dask workers (one cluster for the run, handed to the
histogram step through $DASK_SCHEDULER_URI) and one with a single worker (the chunks in the
step's own process); both must give the blessed bytes. A change of numbers that is meant must be
explained and re-blessed: ``REANIMATE_BLESS=1 pytest tests/test_output_bytes.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_cli

BLESSED = Path(__file__).parent / "data" / "output_digests.json"
EVENTS = 4000


def chain_spec(tmp_path: Path, workers: int) -> Path:
    doc = yaml.safe_load((REPO / "specs" / "agc-ttbar.yaml").read_text())
    doc["parameters"]["events"] = EVENTS
    # several files per sample, so the merge order counts (one basket, one chunk, per file)
    doc["steps"]["datasets"]["parameters"]["events_per_file"] = 1500
    doc["steps"]["datasets"]["parameters"]["signal_masses"] = "none"
    doc["steps"]["histograms"]["dask"]["workers"] = workers
    del doc["containers"]["analysis"]["build"]
    spec = tmp_path / "spec.yaml"  # no lock beside it: the training runs
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    return spec


def digests(results: Path) -> dict[str, str]:
    """sha256 of every result file (results/STEP links into the cache: followed)."""
    out = {}
    for folder, _, files in os.walk(results, followlinks=True):
        for name in files:
            if name != ".reanimate-meta.json":
                path = Path(folder, name)
                out[str(path.relative_to(results))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return dict(sorted(out.items()))


@pytest.mark.parametrize("workers", [2, 1])
def test_the_chain_gives_the_blessed_bytes(tmp_path, workers):
    spec = chain_spec(tmp_path, workers)
    work = tmp_path / "work"
    run_cli("run", spec, "--workdir", work, check=True)
    got = digests(work / "results")
    assert len(got) > 30, sorted(got)
    if os.environ.get("REANIMATE_BLESS"):
        BLESSED.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    blessed = json.loads(BLESSED.read_text())
    changed = sorted(k for k in blessed.keys() | got.keys() if blessed.get(k) != got.get(k))
    assert not changed, f"outputs whose bytes changed: {changed}"
