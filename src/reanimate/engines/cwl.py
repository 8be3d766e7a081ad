"""Compile a spec to CWL v1.2 (one CommandLineTool per step) and run it with cwltool.

The subset is the conservative one REANA's 2021 cwltool accepts: CommandLineTool, Workflow,
DockerRequirement under hints (with it under requirements `cwltool --no-container` aborts),
memory duplicated into a `reana` hint. Every parameter is passed as a string rendered exactly as
the local engine renders it, so both engines run the same argv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from reanimate.engines.commands import block_flags, render
from reanimate.errors import ReanimateError
from reanimate.hashing import HashMemo
from reanimate.lock import (
    REMOTE_PREFIXES,
    read_lock,
    read_pins,
    spec_inputs,
    verified_pin_outputs,
    verify_input,
)
from reanimate.spec.checks import PARAMETER_REF, PLACEHOLDER
from reanimate.spec.graph import dependencies, parse_step_reference, references, topological_order
from reanimate.spec.loader import LoadedSpec
from reanimate.spec.models import Step

CWL_VERSION = "v1.2"


def _is_dir(path: str) -> bool:
    return path.endswith("/")


def _clean(path: str) -> str:
    return path.rstrip("/")


def _cwl_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


class CwlCompiler:
    def __init__(self, loaded: LoadedSpec, outdir: Path) -> None:
        self.loaded = loaded
        self.spec = loaded.spec
        self.outdir = outdir.resolve()
        self.workflow_inputs: dict[str, dict] = {}
        self.job: dict[str, Any] = {}
        # a step pinned to a registered model is not run: its pinned files become inputs
        self.pins = read_pins(loaded.path)

    # -- types --------------------------------------------------------------------------
    def input_type(self, value: str | list[str]) -> str:
        kinds = set()
        many = isinstance(value, list)
        for ref in references(value):
            if ref.startswith("datasets."):
                kinds.add("File")
                many = True
            elif ref.startswith("file:"):
                kinds.add("File")
            else:
                producer, output = parse_step_reference(ref)
                kinds.add("Directory" if _is_dir(self.spec.steps[producer].outputs[output])
                          else "File")
        if len(kinds) != 1:
            raise ReanimateError("CWL cannot mix files and directories in one input")
        kind = kinds.pop()
        return f"{kind}[]" if many else kind

    # -- tools ----------------------------------------------------------------------------
    def tool(self, name: str, step: Step) -> dict:
        tool: dict[str, Any] = {"cwlVersion": CWL_VERSION, "class": "CommandLineTool"}
        if step.description:
            tool["doc"] = step.description
        hints = self._hints(step)
        if hints:
            tool["hints"] = hints
        inputs: dict[str, dict] = {}
        outputs: dict[str, dict] = {}
        for oname, path in step.outputs.items():
            outputs[oname] = {
                "type": "Directory" if _is_dir(path) else "File",
                "outputBinding": {"glob": _clean(path)},
            }
        if step.program:
            tool["baseCommand"] = ["python", "-m", step.program]
            position = 0
            for iname, value in step.inputs.items():
                position += 1
                inputs[iname] = {"type": self.input_type(value),
                                 "inputBinding": {"prefix": f"--{iname}", "position": position}}
            for pname in step.parameters:
                position += 1
                inputs[pname] = {"type": "string",
                                 "inputBinding": {"prefix": f"--{pname}", "position": position}}
            arguments = []
            for oname, path in step.outputs.items():
                position += 1
                arguments.append({"prefix": f"--{oname}", "valueFrom": _clean(path),
                                  "position": position})
            for flag, val in block_flags(step):
                position += 1
                arguments.append({"prefix": flag, "valueFrom": val, "position": position})
            tool["arguments"] = arguments
        else:
            argv = list(step.command or [])
            tool["baseCommand"] = [argv[0]]
            needs_js = False
            for iname, value in step.inputs.items():
                inputs[iname] = {"type": self.input_type(value)}
            for pname in step.parameters:
                inputs[pname] = {"type": "string"}
            arguments = []
            for arg in argv[1:]:
                converted, js = self._convert_argument(arg, inputs, step)
                needs_js |= js
                arguments.append(converted)
            tool["arguments"] = arguments
            if needs_js:
                tool["requirements"] = {"InlineJavascriptRequirement": {}}
        folders = _output_folders(step)
        if folders:
            # every engine creates the folders outputs live in (the local one does too)
            requirements = tool.setdefault("requirements", {})
            requirements["InitialWorkDirRequirement"] = {"listing": folders}
        tool["inputs"] = inputs
        tool["outputs"] = outputs
        return tool

    def _convert_argument(self, arg: str, inputs: dict, step: Step) -> tuple[str, bool]:
        whole = re.fullmatch(PLACEHOLDER, arg)
        if whole and whole.group(1) == "inputs" and inputs[whole.group(2)]["type"].endswith("[]"):
            js = "${return inputs." + whole.group(2) + ".map(function(f) { return f.path; });}"
            return js, True

        def sub(match: re.Match) -> str:
            kind, key = match.group(1), match.group(2)
            if kind == "outputs":
                return _clean(step.outputs[key])
            if kind == "parameters":
                return f"$(inputs.{key})"
            if inputs[key]["type"].endswith("[]"):
                raise ReanimateError(f"{{inputs.{key}}} names several files; CWL needs it as a "
                                     "whole argument")
            return f"$(inputs.{key}.path)"

        return PLACEHOLDER.sub(sub, arg.replace("$(", "\\$(")), False

    def _hints(self, step: Step) -> dict:
        hints: dict[str, Any] = {}
        if step.container:
            hints["DockerRequirement"] = {"dockerPull": self.spec.containers[step.container].image}
        resources = step.resources
        if resources and (resources.memory or resources.cpus):
            requirement = {}
            if resources.memory:
                requirement["ramMin"] = _mebibytes(resources.memory)
            if resources.cpus:
                requirement["coresMin"] = resources.cpus
            hints["ResourceRequirement"] = requirement
        return hints

    # -- workflow -------------------------------------------------------------------------
    def workflow(self) -> dict:
        globals_ = dict(self.spec.parameters)
        order = topological_order(dependencies(self.spec))
        steps: dict[str, dict] = {}
        outputs: dict[str, dict] = {}
        requirements: dict[str, dict] = {}
        for name in order:
            if name in self.pins:
                continue
            step = self.spec.steps[name]
            wiring: dict[str, Any] = {}
            for iname, value in step.inputs.items():
                sources = [self._source(ref) for ref in references(value)]
                if isinstance(value, list) and len(sources) > 1:
                    requirements["MultipleInputFeatureRequirement"] = {}
                    wiring[iname] = {"source": sources, "linkMerge": "merge_flattened"}
                else:
                    wiring[iname] = sources[0]
            for pname, raw in step.parameters.items():
                match = PARAMETER_REF.match(raw) if isinstance(raw, str) else None
                if match:
                    gname = f"param_{_cwl_id(match.group(1))}"
                    self.workflow_inputs[gname] = {"type": "string"}
                    self.job[gname] = render(globals_[match.group(1)])
                    wiring[pname] = gname
                else:
                    wiring[pname] = {"default": render(raw)}
            steps[name] = {"run": f"steps/{name}.cwl", "in": wiring, "out": list(step.outputs)}
            if step.resources and step.resources.memory:
                # where REANA's docs put it: on the workflow step (REANA ignores
                # ResourceRequirement); cwltool reports it as an unknown hint and goes on
                steps[name]["hints"] = {"reana": {"kubernetes_memory_limit": step.resources.memory}}
            for oname, path in step.outputs.items():
                outputs[f"{_cwl_id(name)}__{_cwl_id(oname)}"] = {
                    "type": "Directory" if _is_dir(path) else "File",
                    "outputSource": f"{name}/{oname}",
                }
        doc: dict[str, Any] = {"cwlVersion": CWL_VERSION, "class": "Workflow",
                               "label": self.spec.metadata.title or self.spec.metadata.name}
        if requirements:
            doc["requirements"] = requirements
        doc.update({"inputs": self.workflow_inputs, "outputs": outputs, "steps": steps})
        return doc

    def _source(self, ref: str) -> str:
        if ref.startswith("steps."):
            producer, output = parse_step_reference(ref)
            if producer in self.pins:
                wid = f"pinned_{_cwl_id(producer)}_{_cwl_id(output)}"
                files = self.pins[producer]["files"]
                if output not in files:
                    raise ReanimateError(f"step {producer!r} is pinned; its pin has no {output!r}")
                self.workflow_inputs[wid] = {"type": "File"}
                self.job[wid] = self._file(files[output]["path"])
                return wid
            return f"{producer}/{output}"
        if ref.startswith("datasets."):
            name = ref.removeprefix("datasets.")
            wid = f"dataset_{_cwl_id(name)}"
            self.workflow_inputs[wid] = {"type": "File[]"}
            self.job[wid] = [self._file(f.path) for f in self.spec.datasets[name].files]
            return wid
        key = ref.removeprefix("file:")
        wid = f"file_{_cwl_id(key)}"
        self.workflow_inputs[wid] = {"type": "File"}
        self.job[wid] = self._file(key)
        return wid

    def _file(self, key: str) -> dict:
        if key.startswith(REMOTE_PREFIXES):
            return {"class": "File", "location": key}
        absolute = (self.loaded.base_dir / key).resolve()
        return {"class": "File", "location": os.path.relpath(absolute, self.outdir)}

    def write(self) -> dict[str, Path]:
        """Write workflow/main.cwl, workflow/steps/*.cwl and job.yml under the output folder."""
        steps_dir = self.outdir / "workflow" / "steps"
        steps_dir.mkdir(parents=True, exist_ok=True)
        written = {}
        for name, step in self.spec.steps.items():
            if name not in self.pins:
                written[f"steps/{name}"] = _dump(steps_dir / f"{name}.cwl", self.tool(name, step))
        written["main"] = _dump(self.outdir / "workflow" / "main.cwl", self.workflow())
        written["job"] = _dump(self.outdir / "job.yml", self.job)
        return written


def _output_folders(step: Step) -> list[dict]:
    """Directory literals for the parent folders of a step's outputs (nested as needed)."""
    tree: dict = {}
    for path in step.outputs.values():
        node = tree
        for part in PurePosixPath(_clean(path)).parts[:-1]:
            node = node.setdefault(part, {})

    def literal(name: str, children: dict) -> dict:
        return {"class": "Directory", "basename": name,
                "listing": [literal(k, v) for k, v in sorted(children.items())]}

    return [literal(k, v) for k, v in sorted(tree.items())]


def _mebibytes(memory: str) -> int:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024**2, "Pi": 1024**3, "Ei": 1024**4}
    for suffix, factor in units.items():
        if memory.endswith(suffix):
            return int(float(memory[: -len(suffix)]) * factor)
    return int(float(memory) / 2**20)


def _dump(path: Path, doc: dict) -> Path:
    header = "#!/usr/bin/env cwl-runner\n" if path.suffix == ".cwl" else ""
    header += "# Generated by reanimate from the analysis spec; do not edit by hand.\n"
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=100))
    return path


def export_cwl(loaded: LoadedSpec, outdir: Path) -> dict[str, Path]:
    return CwlCompiler(loaded, outdir).write()


def container_runtime_available() -> bool:
    if not shutil.which("docker"):
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, check=False)
    return probe.returncode == 0


def run_cwl(loaded: LoadedSpec, workdir: Path, provenance: bool = False,
            container: bool | None = None) -> dict[str, Any]:
    """Export to WORKDIR/cwl, run the current cwltool; return its JSON output object."""
    workdir = workdir.resolve()
    lock = read_lock(loaded.path)
    memo = HashMemo(workdir / "hashes.json")
    for item in spec_inputs(loaded).values():  # the same tamper check as the local engine
        verify_input(item, lock, memo)
    for step, pin in read_pins(loaded.path).items():
        verified_pin_outputs(loaded, step, pin, memo)
    export_dir = workdir / "cwl"
    if export_dir.exists():
        shutil.rmtree(export_dir)
    export_cwl(loaded, export_dir)
    outdir = workdir / "cwl-outputs"
    bindir = Path(sys.executable).parent
    cwltool = bindir / "cwltool"
    argv = [str(cwltool if cwltool.exists() else "cwltool"), "--outdir", str(outdir),
            "--preserve-environment", "PYTHONHASHSEED"]
    if os.environ.get("DASK_SCHEDULER_URI"):
        argv += ["--preserve-environment", "DASK_SCHEDULER_URI"]
    use_container = container_runtime_available() if container is None else container
    if not use_container:
        argv.append("--no-container")
    if provenance:
        prov_dir = workdir / "cwl-provenance"
        if prov_dir.exists():
            shutil.rmtree(prov_dir)
        argv += ["--provenance", str(prov_dir)]
    argv += [str(export_dir / "workflow" / "main.cwl"), str(export_dir / "job.yml")]
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONHASHSEED="0")
    log = workdir / "cwltool.log"
    with open(log, "w") as errors:
        proc = subprocess.run(argv, cwd=workdir, env=env, stdout=subprocess.PIPE,
                              stderr=errors, text=True, check=False)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        raise ReanimateError("cwltool failed (exit {}); last lines of {}:\n{}".format(
            proc.returncode, log, "\n".join(tail)))
    return json.loads(proc.stdout)
