"""Compile a spec to reana.yaml (type cwl or serial) and submit it through reana-client.

reana-client lives in its own virtual environment (.venv-reana): it pins jsonschema<4 and a 2021
cwltool that would downgrade ours, so we only ever call its command line.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from reanimate.engines.cwl import CwlCompiler
from reanimate.engines.plan import Plan, fill, make_plan, render
from reanimate.errors import ReanimateError
from reanimate.hashing import sha256_file
from reanimate.spec.loader import LoadedSpec
from reanimate.spec.refs import FileRef

REANA_VERSIONS = ("0.9", "0.95")
REPO_ROOT = Path(__file__).resolve().parents[3]


def _clean(path: str) -> str:
    return path.rstrip("/")


def _dump(path: Path, doc: dict, header: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=100))
    return path


class ReanaCompiler:
    def __init__(self, plan: Plan, root: Path, workflow_type: str = "cwl",
                 reana_version: str = "0.9") -> None:
        if workflow_type not in ("cwl", "serial"):
            raise ReanimateError(f"unknown REANA workflow type {workflow_type!r} (cwl, serial)")
        if reana_version not in REANA_VERSIONS:
            raise ReanimateError(f"unknown REANA version {reana_version!r} "
                                 f"(known: {', '.join(REANA_VERSIONS)})")
        self.plan, self.loaded, self.spec = plan, plan.loaded, plan.spec
        self.root = root.resolve()
        self.type = workflow_type
        self.version = reana_version
        self.order = plan.order

    # -- shared pieces ---------------------------------------------------------------------
    def data_files(self) -> list[str]:
        """Dataset and file: inputs, relative to the export root (they are uploaded)."""
        files = [self._relative(item.key) for item in self.plan.external_inputs().values()
                 if item.path is not None]
        return list(dict.fromkeys(files))

    def _relative(self, key: str) -> str:
        absolute = (self.loaded.base_dir / key).resolve()
        rel = os.path.relpath(absolute, self.root)
        if rel.startswith(".."):
            raise ReanimateError(
                f"input {key} lies outside {self.root}; REANA uploads only files inside the "
                "export folder (copy it in, or give it as an https:// or root:// URL)"
            )
        return rel

    def output_paths(self) -> tuple[list[str], list[str]]:
        files, directories = [], []
        for name in self.order:
            for path in self.plan.steps[name].outputs.values():
                clean = _clean(path)
                where = (f"outputs/{Path(clean).name}" if self.type == "cwl"
                         else f"results/{name}/{clean}")
                (directories if path.endswith("/") else files).append(where)
        return files, directories

    def dask_resources(self) -> dict | None:
        for name in self.order:
            step = self.spec.steps[name]
            if step.dask:
                image = step.dask.image or (
                    self.spec.containers[step.container].image if step.container else None)
                block = {"number_of_workers": step.dask.workers,
                         "single_worker_memory": step.dask.memory_per_worker,
                         "single_worker_threads": step.dask.threads_per_worker}
                return {"image": image, **block} if image else block
        return None

    # -- serial ---------------------------------------------------------------------------
    def serial_steps(self) -> tuple[list[dict], dict[str, Any]]:
        used: dict[str, Any] = {}
        steps = []
        for name in self.order:
            step = self.spec.steps[name]
            if not step.container:
                raise ReanimateError(f"step {name!r} has no container; a serial REANA workflow "
                                     "needs an image for every step")
            command = self._serial_command(name, used)
            entry: dict[str, Any] = {"name": name,
                                     "environment": self.spec.containers[step.container].image}
            if step.resources and step.resources.memory:
                entry["kubernetes_memory_limit"] = step.resources.memory
            if step.resources and step.resources.timeout_seconds:
                entry["kubernetes_job_timeout"] = step.resources.timeout_seconds
            entry["commands"] = [command]
            steps.append(entry)
        return steps, used

    def _serial_command(self, name: str, used: dict[str, Any]) -> str:
        planned = self.plan.steps[name]
        up = "../.."  # each step runs inside results/STEP/

        def input_paths(iname: str) -> list[str]:
            out = []
            for item in planned.inputs[iname]:
                if item.producer is not None:
                    path = _clean(self.plan.steps[item.producer.step].outputs[item.producer.output])
                    out.append(f"{up}/results/{item.producer.step}/{path}")
                elif item.external.path is None:
                    out.append(item.external.key)
                else:
                    out.append(f"{up}/{self._relative(item.external.key)}")
            return out

        def parameter(pname: str) -> str:
            glob = planned.parameter_sources.get(pname)
            if glob is not None:
                used[glob] = self.plan.parameters[glob]
                return '"${' + glob + '}"'
            return shlex.quote(render(planned.parameters[pname]))

        def value(kind: str, key: str) -> list[str]:
            if kind == "input":
                return [shlex.quote(p) for p in input_paths(key)]
            if kind == "output":
                return [shlex.quote(_clean(planned.outputs[key]))]
            return [parameter(key)]

        quoted = [a if a.kind != "text" else type(a)("text", shlex.quote(a.value), a.flag)
                  for a in planned.args]
        argv = fill(quoted, value)
        folders = sorted({f"results/{name}/{Path(_clean(p)).parent}".rstrip("/.")
                          for p in planned.outputs.values()} | {f"results/{name}"})
        return (f"mkdir -p {' '.join(folders)} && cd results/{name} && " + " ".join(argv))

    # -- the document ---------------------------------------------------------------------
    def document(self, feature: str | None) -> dict:
        files_out, dirs_out = self.output_paths()
        doc: dict[str, Any] = {"version": "0.9.0"}
        inputs: dict[str, Any] = {}
        data = self.data_files()
        if self.type == "cwl":
            inputs["directories"] = ["workflow"]
            inputs["files"] = ["job.yml", *data]
            inputs["parameters"] = {"input": "job.yml"}
            workflow: dict[str, Any] = {"type": "cwl", "file": "workflow/main.cwl"}
        else:
            steps, used = self.serial_steps()
            if data:
                inputs["files"] = data
            if used:
                inputs["parameters"] = {k: used[k] for k in sorted(used)}
            workflow = {"type": "serial", "specification": {"steps": steps}}
        if inputs:
            doc["inputs"] = inputs
        dask = self.dask_resources() if self.version == "0.95" else None
        if dask:
            workflow["resources"] = {"dask": dask}
        doc["workflow"] = workflow
        outputs: dict[str, list[str]] = {}
        if files_out:
            outputs["files"] = files_out
        if dirs_out:
            outputs["directories"] = dirs_out
        doc["outputs"] = outputs
        if feature:
            doc["tests"] = {"files": [feature]}
        return doc

    def feature(self, blessed: Path | None) -> str:
        """Gherkin tests in the REANA 0.95 step vocabulary: outputs exist (and their sha256)."""
        files_out, dirs_out = self.output_paths()
        lines = [f"Feature: {self.spec.metadata.name} reproduces its preserved outputs", "",
                 "  Scenario: The workflow finishes", "    When the workflow execution completes",
                 '    Then the workflow status should be "finished"', "",
                 "  Scenario: Every declared output is in the workspace",
                 '    When the workflow is "finished"']
        lines += [f'    Then the workspace should include "{p}"' if i == 0 else
                  f'    And the workspace should include "{p}"'
                  for i, p in enumerate(files_out + dirs_out)]
        if blessed:
            sums = self._blessed_checksums(blessed)
            if sums:
                lines += ["", "  Scenario: Outputs are bit-for-bit the preserved ones",
                          '    When the workflow is "finished"']
                lines += [f"    {'Then' if i == 0 else 'And'} the sha256 checksum of the file "
                          f"{path} should be {digest}" for i, (path, digest) in enumerate(sums)]
        return "\n".join(lines) + "\n"

    def _blessed_checksums(self, workdir: Path) -> list[tuple[str, str]]:
        sums = []
        files_out, _ = self.output_paths()
        index = 0
        for name in self.order:
            for path in self.spec.steps[name].outputs.values():
                if path.endswith("/"):
                    continue
                local = workdir / "results" / name / path
                if not local.is_file():
                    raise ReanimateError(f"cannot bless: {local} not found; run the spec with "
                                         f"--workdir {workdir} first")
                sums.append((files_out[index], sha256_file(local)))
                index += 1
        return sums

    def write(self, output: Path, blessed: Path | None = None) -> dict[str, Path]:
        written: dict[str, Path] = {}
        if self.type == "cwl":
            written.update(CwlCompiler(self.plan, self.root).write())
        name = self.spec.metadata.name
        feature_rel = f"workflow/tests/{name}.feature"
        feature_path = self.root / feature_rel
        feature_path.parent.mkdir(parents=True, exist_ok=True)
        feature_path.write_text(self.feature(blessed))
        written["feature"] = feature_path
        header = (f"# Generated by `reanimate export reana` from "
                  f"{os.path.relpath(self.loaded.path, self.root)}; do not edit by hand.\n")
        written["reana"] = _dump(output, self.document(feature_rel), header)
        return written


def export_reana(loaded: LoadedSpec, output: Path, workflow_type: str = "cwl",
                 reana_version: str = "0.9", blessed: Path | None = None) -> dict[str, Path]:
    compiler = ReanaCompiler(make_plan(loaded), output.resolve().parent, workflow_type,
                             reana_version)
    return compiler.write(output.resolve(), blessed)


# -- submission through reana-client ------------------------------------------------------
def reana_client() -> str:
    candidates = [os.environ.get("REANIMATE_REANA_CLIENT"),
                  str(REPO_ROOT / ".venv-reana" / "bin" / "reana-client"),
                  shutil.which("reana-client")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise ReanimateError("reana-client not found: run `make .venv-reana` (it lives in its own "
                         "virtual environment) or set REANIMATE_REANA_CLIENT")


def require_server() -> None:
    missing = [v for v in ("REANA_SERVER_URL", "REANA_ACCESS_TOKEN") if not os.environ.get(v)]
    if missing:
        raise ReanimateError(f"{' and '.join(missing)} not set: export the address of your REANA "
                             "server and your access token (see `reana-client --help`)")


def client_commands(workflow: str, reana_yaml: Path) -> list[list[str]]:
    client = reana_client()
    return [[client, "validate", "-f", str(reana_yaml)],
            [client, "run", "-w", workflow, "-f", str(reana_yaml)]]


def call_client(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise ReanimateError(f"`{' '.join(argv[1:3])}` failed (exit {proc.returncode}): "
                             + " | ".join(tail))
    return proc


def stage(loaded: LoadedSpec, folder: Path) -> LoadedSpec:
    """A copy of the spec rooted in `folder`, its local input files copied to folder/inputs/.

    REANA uploads only what lies under the folder of reana.yaml, so a submission is built in
    a staging folder of its own; dataset and file: paths are rewritten to the copies.
    """
    from reanimate.spec.models import Spec

    folder = folder.resolve()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    renamed: dict[str, str] = {}
    for key, item in make_plan(loaded).external_inputs().items():
        if item.path is None:
            continue
        if not item.path.is_file():
            raise ReanimateError(f"input file {key} not found ({item.path})")
        inside = not os.path.relpath(item.path, loaded.base_dir).startswith("..")
        rel = os.path.relpath(item.path, loaded.base_dir) if inside else item.path.name
        target = folder / "inputs" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(item.path, target)
        renamed[key] = f"inputs/{rel}"
    data = loaded.spec.model_dump(mode="json", exclude_unset=True)
    for dataset in data.get("datasets", {}).values():
        for file in dataset["files"]:
            file["path"] = renamed.get(file["path"], file["path"])
    for name, step in loaded.spec.steps.items():
        for iname, refs in step.input_refs.items():
            new = [f"file:{renamed.get(r.path, r.path)}" if isinstance(r, FileRef) else str(r)
                   for r in refs]
            data["steps"][name]["inputs"][iname] = (
                new if isinstance(step.inputs[iname], list) else new[0])
    copy_path = folder / loaded.path.name
    copy_path.write_text(loaded.path.read_text())
    return LoadedSpec(spec=Spec.model_validate(data), source=loaded.source, path=copy_path)
