"""What a bundle preserves: the latest complete run of a spec, checked, and the files around it.

`find_run` picks the newest run in WORKDIR/runs whose provenance names this spec's bytes and
whose every step completed (executed, cached or pinned). `check_run` refuses it when what it
recorded no longer holds: an output that differs from the cache, an input that changed, or a
step whose cache key the current spec and code would not give (the bundle's code would then not
be the code that produced its outputs). `collect` lists every file of the bundle with its place
in the zip; nothing is copied.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from reanimate.engines.plan import Plan, cache_key, key_changes
from reanimate.errors import ReanimateError
from reanimate.hashing import HashMemo, sha256_file, sha256_path
from reanimate.lock import verified_pin_outputs, verify_input

COMPLETE = ("executed", "cached", "pinned")
SKIPPED_PARTS = ("__pycache__", ".git")
META = ".reanimate-meta.json"


@dataclass
class PreservedRun:
    run_dir: Path
    provenance: dict
    records: dict[str, dict]  # step -> provenance record
    outputs: dict[str, dict[str, Path]] = field(default_factory=dict)  # step -> output -> path
    metas: dict[str, dict] = field(default_factory=dict)  # step -> cache meta (run steps)
    metas_paths: dict[str, Path] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return str(self.provenance.get("run") or self.run_dir.name)


@dataclass
class Member:
    """One file of the bundle: where it goes, where it comes from, what it is."""

    arcname: str
    source: Path | None = None  # a file to copy ...
    data: bytes | None = None  # ... or bytes made here
    role: str = "file"  # spec, lock, pin, context, code, input, wheel, export, output, ...
    step: str | None = None  # the step that produced it (outputs) or reads it (inputs)
    output: str | None = None  # the step's output it is (or is inside)
    description: str | None = None


@dataclass
class RemoteInput:
    key: str  # the URL as the spec writes it
    sha256: str | None  # declared in the spec, if any
    steps: list[str]


@dataclass
class Collected:
    root: Path  # the analysis folder: the spec's folder or the nearest one holding all it names
    spec_arcname: str
    members: dict[str, Member]
    remote_inputs: list[RemoteInput]
    inputs: dict[str, str]  # spec key of a local input -> its arcname
    contexts: dict[str, str] = field(default_factory=dict)  # container -> its folder's arcname
    warnings: list[str] = field(default_factory=list)


# -- the run ------------------------------------------------------------------------------
def find_run(plan: Plan, workdir: Path) -> PreservedRun:
    """The newest complete run of this spec (these bytes) in `workdir`."""
    spec_path = plan.loaded.path
    spec_sha = sha256_file(spec_path)
    runs_dir = Path(workdir) / "runs"
    candidates = []
    if runs_dir.is_dir():
        for run_dir in runs_dir.iterdir():
            if run_dir.is_symlink() or not (run_dir / "provenance.json").is_file():
                continue
            try:
                prov = json.loads((run_dir / "provenance.json").read_text())
                records = {r["name"]: r for r in prov.get("steps", [])}
            except (OSError, ValueError, TypeError, KeyError):
                continue
            if prov.get("spec_sha256") != spec_sha:
                continue
            if all(records.get(n, {}).get("status") in COMPLETE for n in plan.order):
                candidates.append((str(prov.get("ended") or ""), run_dir.name, run_dir, prov,
                                   records))
    if not candidates:
        raise ReanimateError(
            f"{workdir}: no complete run of {spec_path.name} (these bytes, sha256 "
            f"{spec_sha[:12]}); run `reanimate run {spec_path} --workdir {workdir}` first")
    _, _, run_dir, prov, records = max(candidates, key=lambda c: (c[0], c[1]))
    return PreservedRun(run_dir, prov, records)


def _rebase(path: str, recorded_workdir: str | None, workdir: Path) -> Path:
    """A path the provenance recorded, moved to where the work directory is now."""
    if recorded_workdir and Path(path).is_relative_to(recorded_workdir):
        return workdir / Path(path).relative_to(recorded_workdir)
    return Path(path)


def check_run(plan: Plan, run: PreservedRun, workdir: Path) -> None:
    """Refuse a run whose outputs, inputs or cache keys no longer hold (see the module)."""
    workdir = Path(workdir).resolve()
    memo = HashMemo(None)
    recorded_workdir = run.provenance.get("workdir")
    where = f"run {run.run_id}"
    for name in plan.order:
        planned, record = plan.steps[name], run.records[name]
        if record["status"] == "pinned":
            if planned.pin is None:
                raise ReanimateError(f"{where}: step {name!r} was pinned but the lock pins it no "
                                     "longer; rerun `reanimate run` first")
            pinned = verified_pin_outputs(plan.base_dir, name, planned.pin, memo)
            for out, (_path, digest) in pinned.items():
                if record.get("outputs", {}).get(out, {}).get("sha256") != digest:
                    raise ReanimateError(f"{where}: the pinned file of {name}.{out} changed since "
                                         "the run; rerun `reanimate run` first")
            run.outputs[name] = {out: path for out, (path, _) in pinned.items()}
            continue
        outputs: dict[str, Path] = {}
        for out in planned.outputs:
            info = record.get("outputs", {}).get(out)
            if not info:
                raise ReanimateError(f"{where}: step {name!r} recorded no output {out!r}")
            path = _rebase(info["path"], recorded_workdir, workdir)
            if not path.exists() or sha256_path(path) != info["sha256"]:
                raise ReanimateError(
                    f"{where}: output {name}.{out} ({path}) differs from the cache or is gone; "
                    "rerun `reanimate run` first")
            outputs[out] = path
        run.outputs[name] = outputs
        key = record.get("key") or ""
        meta_path = workdir / "cache" / name / key / META
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            raise ReanimateError(f"{where}: the cache entry of step {name!r} ({key[:12]}) is "
                                 "gone; rerun `reanimate run` first") from None
        run.metas[name], run.metas_paths[name] = meta, meta_path
        old = meta.get("key_payload") or {}
        digests = {iname: [item.get("sha256") for item in items]
                   for iname, items in record.get("inputs", {}).items()}
        payload = planned.key_payload(digests)
        if "image" in old:  # the image a container run ran the step in
            payload["image"] = old["image"]
        if cache_key(payload) != key:
            why = ", ".join(key_changes(old, payload)) or "its cache key differs"
            raise ReanimateError(
                f"{where}: step {name!r} would not give the recorded outputs with the current "
                f"spec and code ({why}); rerun `reanimate run` first")
        for iname, items in planned.inputs.items():
            recorded = record.get("inputs", {}).get(iname, [])
            for item, entry in zip(items, recorded, strict=False):
                if item.external is not None and item.external.path is not None:
                    digest = verify_input(item.external, plan.lock, memo)
                    if digest != entry.get("sha256"):
                        raise ReanimateError(f"{where}: input {item.external.key} changed since "
                                             "the run; rerun `reanimate run` first")


# -- the files ----------------------------------------------------------------------------
def _absolute(base: Path, key: str) -> Path:
    """A spec-relative path made absolute without following links (the spec's own layout)."""
    return Path(os.path.normpath(base.absolute() / key))


def _tree(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()
                  and not any(part in SKIPPED_PARTS for part in p.relative_to(path).parts))


def _refuse_absolute(key: str, what: str) -> None:
    if os.path.isabs(key):
        raise ReanimateError(
            f"{what} {key} is an absolute path; a bundle keeps the spec's folder layout, so "
            "name it relative to the spec (or by an https:// or root:// URL)")


def collect(plan: Plan, run: PreservedRun, workdir: Path, max_input_size: int) -> Collected:
    """Every file of the bundle but the generated ones (wheel, exports, metadata)."""
    loaded, spec, base = plan.loaded, plan.spec, plan.loaded.base_dir
    warnings: list[str] = []
    local_inputs = {k: i for k, i in plan.external_inputs().items() if i.path is not None}
    remote = [k for k, i in plan.external_inputs().items() if i.path is None]
    for key in local_inputs:
        _refuse_absolute(key, "input")
    places: list[Path] = [_absolute(base, loaded.path.name).parent]
    places += [_absolute(base, k).parent for k in local_inputs]
    code_files = sorted({f for n in plan.order for f in spec.steps[n].code})
    for file in code_files:
        _refuse_absolute(file, "code file")
        places.append(_absolute(base, file).parent)
    contexts = {}
    for cname, container in sorted(spec.containers.items()):
        if container.build:
            _refuse_absolute(container.build, f"the build context of container {cname}:")
            folder = _absolute(base, container.build)
            if folder.is_dir():
                contexts[cname] = folder
                places.append(folder)
            else:
                warnings.append(f"container {cname}: build context {container.build} not found; "
                                "not in the bundle")
    pins = dict(plan.pins)
    for pin in pins.values():
        for entry in pin.get("files", {}).values():
            _refuse_absolute(entry["path"], "pinned model file")
            places.append(_absolute(base, entry["path"]).parent)
    root = Path(os.path.commonpath([str(p) for p in places]))

    def arc(path: Path) -> str:
        return "analysis/" + path.relative_to(root).as_posix()

    members: dict[str, Member] = {}

    def add(member: Member) -> None:
        members.setdefault(member.arcname, member)

    spec_arc = arc(_absolute(base, loaded.path.name))
    add(Member(spec_arc, loaded.path, role="spec", description="the analysis spec"))
    if plan.lock.path.is_file():
        add(Member(arc(_absolute(base, plan.lock.path.name)), plan.lock.path, role="lock",
                   description="the lock: input digests, model pins, container images"))
    for name, pin in pins.items():
        for out, entry in sorted(pin.get("files", {}).items()):
            add(Member(arc(_absolute(base, entry["path"])), base / entry["path"], role="pin",
                       step=name, output=out,
                       description=f"{name}.{out}: pinned model {pin.get('name')} version "
                                   f"{pin.get('version')}"))
    for cname, folder in contexts.items():
        for file in _tree(folder):
            add(Member(arc(folder / file.relative_to(folder)), file, role="context",
                       output=cname, description=f"build context of container {cname}"))
    for file in code_files:
        add(Member(arc(_absolute(base, file)), base / file, role="code",
                   description="code of a command step"))
    inputs: dict[str, str] = {}
    for key, item in sorted(local_inputs.items()):
        size = item.path.stat().st_size if item.path.is_file() else None
        if size is None:
            raise ReanimateError(f"input {key} not found ({item.path})")
        if size > max_input_size:
            raise ReanimateError(
                f"input {key} is {size} bytes, over --max-input-size ({max_input_size}); a "
                "bundle refers to an input by URL only when the spec names it by URL: raise "
                "the limit, or publish the file and name its URL (with its sha256) in the spec")
        readers = [n for n in plan.order if any(
            i.key == key for i in plan.steps[n].external_files())]
        inputs[key] = arc(_absolute(base, key))
        add(Member(inputs[key], item.path, role="input", step=readers[0] if readers else None,
                   description=f"input {key}"))
    remote_inputs = [RemoteInput(k, plan.external_inputs()[k].declared_sha256,
                                 [n for n in plan.order if any(
                                     i.key == k for i in plan.steps[n].external_files())])
                     for k in sorted(remote)]
    for name in plan.order:
        record = run.records[name]
        if record["status"] == "pinned":
            continue
        for out, declared in plan.steps[name].outputs.items():
            path = run.outputs[name][out]
            prefix = f"outputs/{name}/{declared.rstrip('/')}"
            files = [(prefix + "/" + f.relative_to(path).as_posix(), f) for f in _tree(path)] \
                if path.is_dir() else [(prefix, path)]
            for arcname, file in files:
                add(Member(arcname, file, role="output", step=name, output=out))
        meta_path = run.metas_paths.get(name)
        if meta_path is not None:
            add(Member(f"provenance/cache/{name}.json", meta_path, role="provenance", step=name,
                       description=f"cache entry of step {name}: its key and what it hashes"))
        logs = record.get("logs") or (run.metas.get(name, {}).get("record") or {}).get("logs")
        for stream, log in sorted((logs or {}).items()):
            log_path = _rebase(log, run.provenance.get("workdir"), Path(workdir).resolve())
            if log_path.is_file():
                add(Member(f"provenance/logs/{name}.{stream}", log_path, role="log", step=name,
                           description=f"{stream} of step {name}"))
    add(Member("provenance/provenance.json", run.run_dir / "provenance.json", role="provenance",
               description=f"provenance of run {run.run_id}"))
    return Collected(root, spec_arc, members, remote_inputs, inputs,
                     {cname: arc(folder) for cname, folder in contexts.items()}, warnings)
