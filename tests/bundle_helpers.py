"""The small AGC chain that the bundle and verify tests preserve, run once per test session.

The flagship on 10,000 ttbar events without signal samples, training or ML histograms, one
Dask worker and no significance (as tests/test_agc_engines.py), with its plots (PNG and PDF),
laid out as an analysis repository: the spec in analysis/specs/, a container build context in
analysis/containers/analysis/ (named by the spec as ../containers/analysis), a dataset file in
analysis/data/ and a command step whose script is a file: input in analysis/tools/. Locked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
FLAGSHIP = REPO / "specs" / "agc-ttbar.yaml"
STAMP = ("import hashlib, sys\n"
         "data = open(sys.argv[1], 'rb').read()\n"
         "open(sys.argv[2], 'w').write(hashlib.sha256(data).hexdigest() + '\\n')\n")


@dataclass
class SmallRun:
    root: Path  # holds analysis/ and work/
    spec: Path
    workdir: Path
    bundle: Path  # made by `reanimate bundle` (the CLI)


_RUNS: dict[str, SmallRun] = {}


def cli(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reanimate.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, check=False)


def write_analysis(root: Path) -> Path:
    """The small flagship as an analysis folder under `root`; returns the spec's path."""
    doc = yaml.safe_load(FLAGSHIP.read_text())
    doc["parameters"]["events"] = 10000
    doc["steps"]["datasets"]["parameters"]["signal_masses"] = "none"
    del doc["steps"]["train"]
    histograms = doc["steps"]["histograms"]
    for name in ("model_even", "model_odd"):
        del histograms["inputs"][name]
    del histograms["outputs"]["histograms_ml"]
    del doc["steps"]["plots"]["inputs"]["histograms_ml"]
    histograms["dask"]["workers"] = 1
    doc["steps"]["fit"]["parameters"]["significance"] = False
    doc["datasets"] = {"notes": {"description": "a small local input",
                                 "files": [{"path": "../data/notes.txt"}]}}
    doc["steps"]["stamp"] = {
        "description": "the sha256 of the notes, by a script of the analysis",
        "command": ["python", "{inputs.script}", "{inputs.notes}", "{outputs.digest}"],
        "inputs": {"script": "file:../tools/stamp.py", "notes": "datasets.notes"},
        "outputs": {"digest": "stamp/notes.sha256"},
    }
    analysis = root / "analysis"
    for folder in ("specs", "containers/analysis", "data", "tools"):
        (analysis / folder).mkdir(parents=True, exist_ok=True)
    (analysis / "containers" / "analysis" / "Dockerfile").write_text("FROM scratch\n")
    (analysis / "data" / "notes.txt").write_text("preserved with the analysis\n")
    (analysis / "tools" / "stamp.py").write_text(STAMP)
    spec = analysis / "specs" / "agc-small.yaml"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    return spec


def small_run(tmp_path_factory) -> SmallRun:
    """Run the small chain and bundle it, once per session."""
    if "small" in _RUNS:
        return _RUNS["small"]
    root = tmp_path_factory.mktemp("preserved")
    spec = write_analysis(root)
    workdir = root / "work"
    for args in (("lock", spec), ("run", spec, "--workdir", workdir),
                 ("bundle", spec, "--workdir", workdir, "-o", root / "small.crate.zip")):
        proc = cli(*args, cwd=root)
        assert proc.returncode == 0, f"reanimate {args[0]} failed:\n{proc.stderr}"
    _RUNS["small"] = SmallRun(root, spec, workdir, root / "small.crate.zip")
    return _RUNS["small"]


# -- rewriting a bundle ------------------------------------------------------------------------
def rewrite_bundle(source: Path, target: Path, changes: dict[str, bytes | None],
                   fix_metadata: bool = True) -> Path:
    """`source` with members replaced (None: left out), in the same order and with the same
    stamps; with `fix_metadata` their sha256 and size in the metadata follow."""
    import hashlib

    with zipfile.ZipFile(source) as zin:
        infos = zin.infolist()
        data = {i.filename: zin.read(i.filename) for i in infos}
    for name, content in changes.items():
        data[name] = content
    if fix_metadata:
        doc = json.loads(data["ro-crate-metadata.json"])
        for entity in doc["@graph"]:
            if entity["@id"] in changes and changes[entity["@id"]] is not None:
                content = changes[entity["@id"]]
                entity["sha256"] = hashlib.sha256(content).hexdigest()
                entity["contentSize"] = str(len(content))
        data["ro-crate-metadata.json"] = json.dumps(doc, indent=2, sort_keys=True).encode()
    with zipfile.ZipFile(target, "w") as zout:
        for info in infos:
            if data.get(info.filename) is not None:
                zout.writestr(info, data[info.filename])
    return target


def copy_tree(run: SmallRun, dest: Path) -> SmallRun:
    """A copy of the analysis and its work directory (relative results links stay valid)."""
    shutil.copytree(run.root / "analysis", dest / "analysis", symlinks=True)
    shutil.copytree(run.workdir, dest / "work", symlinks=True)
    return SmallRun(dest, dest / "analysis" / "specs" / run.spec.name, dest / "work", run.bundle)
