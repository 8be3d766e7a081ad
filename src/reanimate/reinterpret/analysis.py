"""A preserved analysis made ready for new signals: its spec, block and preserved outputs.

`prepare_analysis` is called once per command (a campaign: once, before dispatch); what it
returns is plain, picklable data that every point (`signal_run.reinterpret_signal`) reads:

* a spec: it is run (from the cache, if nothing changed) in WORKDIR, and the outputs of that
  complete run are the preserved ones (a pinned step's files are those of its pin);
* a bundle (`reanimate bundle`): it is opened safely and unpacked into WORKDIR once
  (`reanimate.preserve.archive.Bundle`, every file checked against the metadata), and its
  `outputs/STEP/PATH` are the preserved outputs (a pinned step: its pin's files in the
  bundle's analysis/ folder).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from reanimate.engines.report import Reporter
from reanimate.errors import ReanimateError

NEEDED = ("signal_input", "signal_histograms", "patch", "workspace")
UNPACKED = ".reanimate-unpacked.json"  # written last into a complete unpacked bundle


@dataclass(frozen=True)
class PreparedAnalysis:
    source: str  # the spec or bundle path
    kind: str  # "spec" | "bundle"
    digest: str  # spec sha256 or the bundle's content digest
    name: str
    version: str
    spec_path: str  # the spec to derive signal runs from (unpacked for a bundle)
    outputs: dict  # "steps.STEP.OUTPUT" -> absolute path of the preserved output
    block: dict  # the reinterpretation block (plain data)
    parameters: dict = field(default_factory=dict)  # the global parameters of the preserved run
    output_sha256: dict = field(default_factory=dict)  # "steps.STEP.OUTPUT" -> sha256
    statistics: dict = field(default_factory=dict)  # the spec's statistics: block
    references: tuple = ()  # the spec's metadata.references

    def output(self, ref: str) -> Path:
        if ref not in self.outputs:
            raise ReanimateError(f"{self.source}: no preserved output {ref}")
        return Path(self.outputs[ref])

    def as_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "kind": self.kind,
                "digest": self.digest, "source": self.source}


def prepare_analysis(source: Path, workdir: Path, reporter: Reporter | None = None
                     ) -> PreparedAnalysis:
    source, workdir = Path(source), Path(workdir)
    if not source.exists():
        raise ReanimateError(f"{source}: not found (give a spec or a bundle)")
    if source.is_file() and zipfile.is_zipfile(source):
        return _bundle(source, workdir)
    return _spec(source, workdir, reporter)


def _block(loaded) -> dict:
    block = loaded.spec.reinterpretation
    if block is None:
        raise ReanimateError(f"{loaded.path}: the spec has no reinterpretation: block")
    missing = [k for k in NEEDED if getattr(block, k) is None]
    if missing:
        raise ReanimateError(f"{loaded.path}: reinterpretation: needs {', '.join(missing)} for "
                             "reanimate reinterpret (docs/reinterpretation.md)")
    if block.mode != "add":
        raise ReanimateError(f"{loaded.path}: reinterpretation.mode {block.mode}: only 'add' is "
                             "supported")
    return block.model_dump(mode="json")


def _spec(path: Path, workdir: Path, reporter: Reporter | None) -> PreparedAnalysis:
    from reanimate.engines.local import run_spec
    from reanimate.engines.plan import make_plan
    from reanimate.hashing import sha256_file
    from reanimate.spec.loader import load_spec

    loaded = load_spec(path)
    block = _block(loaded)
    plan = make_plan(loaded)
    report = run_spec(loaded, workdir, plan=plan, reporter=reporter)
    if report.failed or report.with_status("skipped"):
        raise ReanimateError(f"the run of {path} did not complete (failed: "
                             f"{', '.join(report.failed) or 'none'}); see {report.run_dir}")
    outputs, digests = {}, {}
    for name, record in report.records.items():
        for out, info in record.outputs.items():
            outputs[f"steps.{name}.{out}"] = str(Path(info["path"]).resolve())
            digests[f"steps.{name}.{out}"] = info.get("sha256")
    meta = loaded.spec.metadata
    return PreparedAnalysis(str(loaded.path), "spec", sha256_file(loaded.path), meta.name,
                            meta.version, str(loaded.path), outputs, block,
                            dict(plan.parameters), digests, **_extras(loaded))


def _bundle(path: Path, workdir: Path) -> PreparedAnalysis:
    from reanimate.lock import read_lock
    from reanimate.preserve.archive import Bundle
    from reanimate.preserve.verify import _layout
    from reanimate.spec.loader import load_spec

    with Bundle(path) as bundle:
        digest = str(bundle.root.get("identifier") or "")
        spec_arc, _, _ = _layout(bundle)
        target = workdir / "bundles" / (digest.removeprefix("sha256:")[:16] or path.stem)
        marker = target / UNPACKED
        if not marker.is_file():
            if target.exists() and any(target.iterdir()):
                raise ReanimateError(f"{target}: an incomplete unpacked bundle; remove it")
            bundle.extract(target)
            marker.write_text(json.dumps({"bundle": str(path.resolve()), "digest": digest}))
    spec_path = target / spec_arc
    loaded = load_spec(spec_path)
    block = _block(loaded)
    pins = read_lock(loaded.path).models
    outputs = {}
    for name, step in loaded.spec.steps.items():
        for out, declared in step.outputs.items():
            if name in pins:  # a pinned step's outputs are its pinned files, as in a run
                entry = pins[name].get("files", {}).get(out)
                if entry is None:
                    continue
                found = loaded.base_dir / entry["path"]
            else:
                found = target / "outputs" / name / declared.rstrip("/")
            if found is None or not found.exists():
                raise ReanimateError(f"{path}: the bundle holds no output {name}.{out}")
            outputs[f"steps.{name}.{out}"] = str(found.resolve())
    provenance = json.loads((target / "provenance" / "provenance.json").read_text())
    meta = loaded.spec.metadata
    return PreparedAnalysis(str(path.resolve()), "bundle", digest, meta.name, meta.version,
                            str(loaded.path), outputs, block,
                            dict(provenance.get("parameters") or loaded.spec.parameters),
                            **_extras(loaded))


def _extras(loaded) -> dict:
    statistics = loaded.spec.statistics
    return {"statistics": statistics.model_dump(mode="json") if statistics else {},
            "references": tuple(loaded.spec.metadata.references)}
