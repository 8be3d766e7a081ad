"""`reanimate verify`: rerun a bundle with its own code and compare every preserved output.

1. The bundle is opened safely and unpacked into a fresh folder (`archive.py`), each file
   checked against the metadata's sha256 as it is written: VERIFY/bundle/.
2. Its wheel is unpacked (as safely) into VERIFY/code/, and the rerun's processes get
   ``PYTHONPATH=VERIFY/code``, so every module of reanimate (the engine and each step program)
   comes from the bundle, none from the installation that runs `verify`; a probe in the same
   environment reports where `reanimate` is imported from, and verify refuses to go on unless
   that lies in VERIFY/code. The third-party libraries (numpy, uproot, ...) are this Python's.
3. Inputs by URL with a sha256 are fetched and checked first (`reanimate.datasets.remote`,
   into the shared input cache). The bundle's spec, lock, pinned models and inputs are used
   where they lie in VERIFY/bundle/analysis/.
4. The rerun: `python -m reanimate.cli run SPEC --workdir VERIFY/work` (the local engine, with
   `--containers docker` passed on when asked), or cwltool on the bundle's own exported
   workflow/main.cwl and job.yml (``--engine cwl``).
5. Every file under outputs/ is compared with the rerun's (`compare.py`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reanimate.errors import ReanimateError
from reanimate.preserve.archive import Bundle, BundleRefused, Limits, SafeZip, types
from reanimate.preserve.compare import EXTRA, MISSING, FileComparison, compare_file

Progress = Callable[[str], None]
ENGINES = ("local", "cwl")
TAIL = 15


@dataclass
class OutputResult:
    path: str  # the member, outputs/STEP/...
    step: str
    output: str | None
    status: str  # identical, within tolerance, differs, missing, extra
    kind: str
    details: list[str] = field(default_factory=list)
    preserved_size: int | None = None
    rerun_size: int | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("identical", "within tolerance")


@dataclass
class VerifyReport:
    bundle: str
    directory: str  # where it was unpacked and rerun (removed afterwards unless --keep)
    kept: bool
    engine: str
    spec: str  # the bundle's spec, relative to the bundle
    code: str  # where the rerun imported reanimate from
    code_in_bundle: bool
    rerun_exit: int
    rerun_tail: list[str]
    inputs_by_url: list[dict]
    outputs: list[OutputResult]

    @property
    def ok(self) -> bool:
        return self.rerun_exit == 0 and bool(self.outputs) and all(o.ok for o in self.outputs)

    @property
    def status(self) -> str:
        if self.rerun_exit != 0:
            return "rerun failed"
        if not self.ok:
            return "differs"
        if all(o.status == "identical" for o in self.outputs):
            return "identical"
        return "within tolerance"

    def as_dict(self) -> dict:
        out = asdict(self)
        out["status"], out["ok"] = self.status, self.ok
        return out


def verify_bundle(path: Path, *, engine: str = "local", containers: str | None = None,
                  tolerance: float = 0.0, keep: Path | None = None, limits: Limits = Limits(),
                  progress: Progress | None = None) -> VerifyReport:
    say = progress or (lambda text: None)
    if engine not in ENGINES:
        raise ReanimateError(f"unknown engine {engine!r} (available: {', '.join(ENGINES)})")
    if containers not in (None, "docker"):
        raise ReanimateError(f"--containers {containers}: only docker is supported")
    if not (tolerance >= 0):
        raise ReanimateError(f"--tolerance {tolerance}: expected a number >= 0")
    path = Path(path)
    with Bundle(path, limits) as bundle:  # refuses an unsafe archive before anything is written
        if keep is not None:
            keep = Path(keep)
            if keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
                raise ReanimateError(f"--keep {keep}: exists and is not an empty folder")
            created = not keep.exists()
            directory = keep
            directory.mkdir(parents=True, exist_ok=True)
        else:
            created, directory = True, Path(tempfile.mkdtemp(prefix="reanimate-verify-"))
        finished = False
        try:
            say(f"unpacking {path.name} into {directory}/bundle")
            bundle.extract(directory / "bundle")
            spec_arc, wheel_arc, outputs = _layout(bundle)
            by_url = [{"url": url, "sha256": e.get("sha256")}
                      for url, e in sorted(bundle.by_url.items())]
            report = _rerun(directory, spec_arc, wheel_arc, outputs, by_url, engine, containers,
                            tolerance, limits, say)
            report.bundle, report.kept = str(path), keep is not None
            finished = True
            return report
        finally:
            # a refused bundle leaves nothing; a finished verification stays only with --keep
            if created and (keep is None or not finished):
                shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Outputs:
    """The preserved outputs: member -> (step, output name); folder outputs by their prefix."""

    files: dict[str, tuple[str, str | None]]
    folders: dict[str, tuple[str, str | None]]  # "outputs/STEP/PATH" -> (step, output)

    def declared(self, member: str) -> tuple[str, str]:
        """(the output's own prefix in the bundle, the member's path inside it, or '')."""
        for folder in self.folders:
            if member.startswith(folder + "/"):
                return folder, member[len(folder) + 1:]
        return member, ""


def _layout(bundle: Bundle) -> tuple[str, str, Outputs]:
    """(spec member, wheel member, the outputs) from the metadata."""
    workflow = bundle.ref(bundle.root.get("mainEntity"))
    spec = bundle.ref(workflow.get("isBasedOn")).get("@id")
    if not spec or spec not in bundle.files:
        raise BundleRefused(f"{bundle.path}: the metadata names no spec (the main workflow's "
                            "isBasedOn); not a reanimate bundle")
    wheels = [m for m in bundle.files if m.startswith("code/") and m.endswith(".whl")]
    if len(wheels) != 1:
        raise BundleRefused(f"{bundle.path}: expected one wheel under code/, found "
                            f"{len(wheels)}")
    named: dict[str, str | None] = {}
    folders: dict[str, tuple[str, str | None]] = {}
    for entity in bundle.entities.values():
        work = bundle.ref(entity.get("exampleOfWork"))
        identifier = entity.get("@id", "").rstrip("/")
        if not work or not identifier.startswith("outputs/"):
            continue
        members = [identifier]
        if "Dataset" in types(entity):
            folders[identifier] = (identifier.split("/")[1], work.get("name"))
            members = [part.get("@id") for part in bundle.refs(entity.get("hasPart"))]
        for member in members:
            named[member] = work.get("name")
    files = {}
    for member in bundle.files:
        parts = member.split("/")
        if parts[0] == "outputs" and len(parts) >= 3:
            files[member] = (parts[1], named.get(member))
    return spec, wheels[0], Outputs(files, folders)


def _environment(directory: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(directory / "code"), PYTHONNOUSERSITE="1", PYTHONHASHSEED="0",
               PYTHONDONTWRITEBYTECODE="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _probe(directory: Path, env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-c", "import reanimate; print(reanimate.__file__)"],
                          cwd=directory, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ReanimateError(f"the bundle's code does not import: "
                             f"{'; '.join(proc.stderr.strip().splitlines()[-3:])}")
    return proc.stdout.strip()


def _fetch_inputs(by_url: list[dict], say: Progress) -> None:
    if not by_url:
        return
    try:
        from reanimate.datasets import remote
    except ImportError:
        raise ReanimateError(f"input by URL not supported yet: {by_url[0]['url']}") from None
    for item in by_url:
        if item["sha256"] is None:
            item["checked"] = "no sha256 in the spec: read by the rerun unverified"
            continue
        if not item["url"].startswith(remote.FETCH_SCHEMES):
            item["checked"] = "read in place by the rerun (scheme not fetched)"
            continue
        say(f"fetching {item['url']}")
        local = remote.cached(item["url"], item["sha256"])
        item["checked"] = f"sha256 matches (cached at {local})"


def _rerun(directory: Path, spec_arc: str, wheel_arc: str,
           outputs: Outputs, by_url: list[dict], engine: str,
           containers: str | None, tolerance: float, limits: Limits,
           say: Progress) -> VerifyReport:
    unpacked = directory / "bundle"
    say(f"unpacking the analysis code {Path(wheel_arc).name}")
    with SafeZip(unpacked / wheel_arc, limits, what="wheel") as wheel:
        wheel.extract(directory / "code")
    env = _environment(directory)
    code = _probe(directory, env)
    inside = Path(code).resolve().is_relative_to((directory / "code").resolve())
    if not inside:
        raise ReanimateError(f"the rerun would import reanimate from {code}, not from the "
                             f"bundle's code in {directory / 'code'}; refusing to verify")
    _fetch_inputs(by_url, say)
    spec = unpacked / spec_arc
    logs = directory / "logs"
    logs.mkdir(exist_ok=True)
    if engine == "local":
        argv = [sys.executable, "-m", "reanimate.cli", "run", str(spec), "--workdir",
                str(directory / "work")]
        if containers:
            argv += ["--containers", containers]
    else:
        cwltool = Path(sys.executable).parent / "cwltool"
        argv = [str(cwltool if cwltool.exists() else "cwltool"), "--outdir",
                str(directory / "cwl-outputs"), "--preserve-environment", "PYTHONPATH",
                "--preserve-environment", "PYTHONHASHSEED"]
        if not containers:
            argv.append("--no-container")
        argv += [str(unpacked / "workflow" / "main.cwl"), str(unpacked / "job.yml")]
    say(f"rerunning with the bundle's code ({engine} engine): {' '.join(argv[1:4])} ...")
    with open(logs / "rerun.stdout", "wb") as out, open(logs / "rerun.stderr", "wb") as err:
        proc = subprocess.run(argv, cwd=directory, env=env, stdout=out, stderr=err, check=False)
    tail = (logs / "rerun.stderr").read_text(errors="replace").strip().splitlines()[-TAIL:]
    report = VerifyReport("", str(directory), False, engine, spec_arc, code, inside,
                          proc.returncode, tail if proc.returncode else [], by_url, [])
    if proc.returncode != 0:
        return report
    say("comparing the outputs")
    roots = _output_roots(directory, engine, outputs)
    report.outputs = _compare_all(unpacked, outputs, roots, tolerance)
    return report


def _output_roots(directory: Path, engine: str, outputs: Outputs) -> dict[str, Path]:
    """Where the rerun wrote each output (by its prefix in the bundle)."""
    prefixes = {outputs.declared(m)[0]: outputs.files[m] for m in outputs.files}
    prefixes.update(outputs.folders)
    roots: dict[str, Path] = {}
    if engine == "local":
        for prefix in prefixes:
            _, step, rest = prefix.split("/", 2)
            roots[prefix] = directory / "work" / "results" / step / rest
        return roots
    try:
        result = json.loads((directory / "logs" / "rerun.stdout").read_text() or "{}")
    except ValueError:
        result = {}
    for prefix, (step, output) in prefixes.items():
        cwl_id = f"{_cwl_id(step)}__{_cwl_id(output or '')}"
        found = (result.get(cwl_id) or {}).get("path")
        roots[prefix] = Path(found) if found else directory / "cwl-outputs" / ".missing" / cwl_id
    return roots


def _cwl_id(text: str) -> str:
    """As the CWL export names a workflow output: STEP__OUTPUT with [^A-Za-z0-9_] as _."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def _compare_all(unpacked: Path, outputs: Outputs, roots: dict[str, Path],
                 tolerance: float) -> list[OutputResult]:
    results = []
    for member in sorted(outputs.files):
        step, output = outputs.files[member]
        prefix, inside = outputs.declared(member)
        preserved = unpacked / member
        rerun = roots[prefix] / inside if inside else roots[prefix]
        size = preserved.stat().st_size
        if not rerun.is_file():
            results.append(OutputResult(member, step, output, MISSING, "-",
                                        ["the rerun did not write it"], size, None))
            continue
        cmp: FileComparison = compare_file(preserved, rerun, tolerance)
        results.append(OutputResult(member, step, output, cmp.status, cmp.kind, cmp.details,
                                    size, rerun.stat().st_size))
    for prefix, (step, output) in sorted(outputs.folders.items()):
        root = roots[prefix]
        if not root.is_dir():
            continue
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            member = f"{prefix}/{file.relative_to(root).as_posix()}"
            if member not in outputs.files:
                results.append(OutputResult(member, step, output, EXTRA, "-",
                                            ["only in the rerun"], None, file.stat().st_size))
    return results
