"""Compile a plan to CWL v1.2 (one CommandLineTool per step) and run it with cwltool.

The subset is the conservative one REANA's 2021 cwltool accepts: CommandLineTool, Workflow,
DockerRequirement under hints (with it under requirements `cwltool --no-container` aborts),
memory duplicated into a `reana` hint. A program step's parameters are typed from its declared
interface (int, float, string; a boolean as the enum true|false, because CWL renders a boolean
as a bare flag while our programs take `--flag true`), so cwltool checks job values and renders
the same argv as the local engine. A command step's parameters are strings rendered as the
local engine renders them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from reanimate.engines.plan import Arg, Plan, PlanStep, make_plan, render
from reanimate.errors import ReanimateError
from reanimate.hashing import HashMemo
from reanimate.lock import verified_pin_outputs
from reanimate.spec.loader import LoadedSpec
from reanimate.spec.refs import DatasetRef, FileRef, StepOutputRef, substitute, whole_placeholder
from reanimate.urls import is_remote

CWL_VERSION = "v1.2"
# Python's shlex.quote in JavaScript, for values inside a larger command argument
SHELL_QUOTE_JS = ("function shq(s) { s = (s === null) ? '' : String(s); if (s === '') "
                  "return \"''\"; if (!/[^\\w@%+=:,.\\/-]/.test(s)) return s; "
                  "return \"'\" + s.replace(/'/g, \"'\\\"'\\\"'\") + \"'\"; }")
BOOLEAN = {"type": "enum", "symbols": ["true", "false"]}
CWL_TYPES = {"int": "int", "float": "float", "str": "string", "bool": BOOLEAN}


def _clean(path: str) -> str:
    return path.rstrip("/")


def _cwl_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


class CwlCompiler:
    """`writable_folders`: output folders as writable entries (see _folder_listing)."""

    def __init__(self, plan: Plan, outdir: Path, writable_folders: bool = False) -> None:
        self.plan = plan
        self.writable_folders = writable_folders
        self.spec = plan.spec
        self.outdir = outdir.resolve()
        self.workflow_inputs: dict[str, dict] = {}
        self.job: dict[str, Any] = {}

    # -- types --------------------------------------------------------------------------
    def input_type(self, planned: PlanStep, name: str) -> str:
        refs = planned.step.input_refs[name]
        kinds = set()
        many = len(refs) > 1 or isinstance(planned.step.inputs[name], list)
        for ref in refs:
            if isinstance(ref, DatasetRef):
                kinds.add("File")
                many = True
            elif isinstance(ref, FileRef):
                kinds.add("File")
            else:
                producer = self.plan.steps[ref.step]
                kinds.add("Directory" if producer.output_is_dir(ref.output) else "File")
        if len(kinds) != 1:
            raise ReanimateError("CWL cannot mix files and directories in one input")
        kind = kinds.pop()
        return f"{kind}[]" if many else kind

    def parameter_type(self, planned: PlanStep, name: str) -> Any:
        flag = planned.interface.flag(name) if planned.interface else None
        kind = CWL_TYPES.get(flag.kind, "string") if flag else "string"
        if planned.parameters.get(name) is None and planned.step.program:
            return ["null", kind]  # a null value: cwltool leaves the flag out, as we do
        return kind

    def job_value(self, planned: PlanStep, name: str, value: Any) -> Any:
        if value is None:  # a program's flag is left out; a command gets ''
            return None if planned.step.program else ""
        kind = self.parameter_type(planned, name)
        if kind in ("int", "float", ["null", "int"], ["null", "float"]) and \
                not isinstance(value, bool):
            return value
        return render(value)

    # -- tools ----------------------------------------------------------------------------
    def tool(self, planned: PlanStep) -> dict:
        step = planned.step
        tool: dict[str, Any] = {"cwlVersion": CWL_VERSION, "class": "CommandLineTool"}
        if step.description:
            tool["doc"] = step.description
        hints = self._hints(planned)
        if hints:
            tool["hints"] = hints
        inputs: dict[str, dict] = {}
        outputs: dict[str, dict] = {
            oname: {"type": "Directory" if planned.output_is_dir(oname) else "File",
                    "outputBinding": {"glob": _clean(path)}}
            for oname, path in step.outputs.items()
        }
        for iname in step.inputs:
            inputs[iname] = {"type": self.input_type(planned, iname)}
        for pname in step.parameters:
            inputs[pname] = {"type": self.parameter_type(planned, pname)}
        if step.program:
            tool["baseCommand"], tool["arguments"] = self._program_bindings(planned, inputs)
        else:
            args = planned.args
            tool["baseCommand"] = [args[0].value]
            arguments, needs_js = [], False
            for arg in args[1:]:
                converted, js = self._convert_argument(arg, inputs, planned)
                needs_js |= js
                arguments.append(converted)
            tool["arguments"] = arguments
            if needs_js:
                tool["requirements"] = {"InlineJavascriptRequirement": {
                    "expressionLib": [SHELL_QUOTE_JS]}}
        folders = _output_folders(step.outputs)
        if folders:
            # every engine creates the folders outputs live in (the local one does too)
            requirements = tool.setdefault("requirements", {})
            if self.writable_folders:
                folders = [{"entry": f"$({json.dumps(f)})", "writable": True} for f in folders]
                requirements.setdefault("InlineJavascriptRequirement", {})
            requirements["InitialWorkDirRequirement"] = {"listing": folders}
        tool["inputs"] = inputs
        tool["outputs"] = outputs
        return tool

    def _program_bindings(self, planned: PlanStep, inputs: dict) -> tuple[list, list]:
        """baseCommand and arguments of a program step: the plan's argv, position by position."""
        base, arguments = [], []
        position = 0
        for arg in planned.args:
            if arg.kind == "text" and not arg.flag:
                base.append(arg.value)
                continue
            position += 1
            if arg.kind in ("input", "parameter"):
                inputs[arg.value]["inputBinding"] = {"prefix": arg.flag, "position": position}
            elif arg.kind == "output":
                path = _clean(planned.outputs[arg.value])
                arguments.append({"prefix": arg.flag, "valueFrom": path, "position": position})
            else:
                arguments.append({"prefix": arg.flag, "valueFrom": arg.value, "position": position})
        return base, arguments

    def _convert_argument(self, arg: Arg, inputs: dict, planned: PlanStep) -> tuple[str, bool]:
        named = "{" + f"{arg.kind}s.{arg.value}" + "}"
        text = arg.value if arg.kind in ("text", "template") else named
        whole = whole_placeholder(text)
        if whole and whole[0] == "inputs" and inputs[whole[1]]["type"].endswith("[]"):
            js = "${return inputs." + whole[1] + ".map(function(f) { return f.path; });}"
            return js, True

        # inside a larger argument a value is shell-quoted (engines.plan.fill); whole
        # placeholders are plain
        inside = whole is None

        def value(kind: str, key: str) -> str:
            if kind == "outputs":
                path = _clean(planned.outputs[key])
                return shlex.quote(path) if inside else path
            if kind == "parameters":
                return f"$(shq(inputs.{key}))" if inside else f"$(inputs.{key})"
            if inputs[key]["type"].endswith("[]"):
                raise ReanimateError(f"{{inputs.{key}}} names several files; CWL needs it as a "
                                     "whole argument")
            return f"$(shq(inputs.{key}.path))" if inside else f"$(inputs.{key}.path)"

        converted = substitute(text.replace("$(", "\\$("), value)
        return converted, "$(shq(" in converted

    def _hints(self, planned: PlanStep) -> dict:
        step = planned.step
        hints: dict[str, Any] = {}
        if step.container:
            # by digest once pushed (REANA and any other runner pull that exact image), and the
            # local build's id, which cwltool runs when the daemon has it (docker inspect)
            docker = {"dockerPull": self.plan.image_reference(step.container)}
            entry = self.plan.image_entry(step.container)
            if entry is not None:
                docker["dockerImageId"] = entry["id"]
            hints["DockerRequirement"] = docker
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
        steps: dict[str, dict] = {}
        outputs: dict[str, dict] = {}
        requirements: dict[str, dict] = {}
        for name in self.plan.order:
            planned = self.plan.steps[name]
            if planned.pin is not None:
                continue
            step = planned.step
            wiring: dict[str, Any] = {}
            for iname, refs in step.input_refs.items():
                sources = [self._source(ref) for ref in refs]
                if isinstance(step.inputs[iname], list) and len(sources) > 1:
                    requirements["MultipleInputFeatureRequirement"] = {}
                    wiring[iname] = {"source": sources, "linkMerge": "merge_flattened"}
                else:
                    wiring[iname] = sources[0]
            for pname, value in planned.parameters.items():
                glob = planned.parameter_sources.get(pname)
                if glob is not None:
                    gname = f"param_{_cwl_id(glob)}"
                    self.workflow_inputs[gname] = {"type": self.parameter_type(planned, pname)}
                    self.job[gname] = self.job_value(planned, pname, self.plan.parameters[glob])
                    wiring[pname] = gname
                else:
                    wiring[pname] = {"default": self.job_value(planned, pname, value)}
            steps[name] = {"run": f"steps/{name}.cwl", "in": wiring, "out": list(step.outputs)}
            if step.resources and step.resources.memory:
                # where REANA's docs put it: on the workflow step (REANA ignores
                # ResourceRequirement); cwltool reports it as an unknown hint and goes on
                steps[name]["hints"] = {"reana": {"kubernetes_memory_limit": step.resources.memory}}
            for oname in step.outputs:
                outputs[f"{_cwl_id(name)}__{_cwl_id(oname)}"] = {
                    "type": "Directory" if planned.output_is_dir(oname) else "File",
                    "outputSource": f"{name}/{oname}",
                }
        doc: dict[str, Any] = {"cwlVersion": CWL_VERSION, "class": "Workflow",
                               "label": self.spec.metadata.title or self.spec.metadata.name}
        if requirements:
            doc["requirements"] = requirements
        doc.update({"inputs": self.workflow_inputs, "outputs": outputs, "steps": steps})
        return doc

    def _source(self, ref) -> str:
        if isinstance(ref, StepOutputRef):
            pin = self.plan.steps[ref.step].pin
            if pin is not None:
                wid = f"pinned_{_cwl_id(ref.step)}_{_cwl_id(ref.output)}"
                files = pin["files"]
                if ref.output not in files:
                    raise ReanimateError(f"step {ref.step!r} is pinned; its pin has no "
                                         f"{ref.output!r}")
                self.workflow_inputs[wid] = {"type": "File"}
                self.job[wid] = self._file(files[ref.output]["path"])
                return wid
            return f"{ref.step}/{ref.output}"
        if isinstance(ref, DatasetRef):
            wid = f"dataset_{_cwl_id(ref.name)}"
            self.workflow_inputs[wid] = {"type": "File[]"}
            self.job[wid] = [self._file(f.path) for f in self.spec.datasets[ref.name].files]
            return wid
        wid = f"file_{_cwl_id(ref.path)}"
        self.workflow_inputs[wid] = {"type": "File"}
        self.job[wid] = self._file(ref.path)
        return wid

    def _file(self, key: str) -> dict:
        if is_remote(key):
            return {"class": "File", "location": key}
        absolute = (self.plan.base_dir / key).resolve()
        return {"class": "File", "location": os.path.relpath(absolute, self.outdir)}

    def write(self) -> dict[str, Path]:
        """Write workflow/main.cwl, workflow/steps/*.cwl and job.yml under the output folder."""
        steps_dir = self.outdir / "workflow" / "steps"
        steps_dir.mkdir(parents=True, exist_ok=True)
        written = {}
        for name in self.spec.steps:
            planned = self.plan.steps[name]
            if planned.pin is None:
                written[f"steps/{name}"] = _dump(steps_dir / f"{name}.cwl", self.tool(planned))
        written["main"] = _dump(self.outdir / "workflow" / "main.cwl", self.workflow())
        written["job"] = _dump(self.outdir / "job.yml", self.job)
        return written


def _output_folders(outputs: dict[str, str]) -> list[dict]:
    """Directory literals for the parent folders of a step's outputs (nested as needed)."""
    tree: dict = {}
    for path in outputs.values():
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


def export_cwl(loaded: LoadedSpec, outdir: Path, plan: Plan | None = None,
               writable_folders: bool = False) -> dict[str, Path]:
    """Write the CWL export. `writable_folders` (cwltool inside containers): the folders of
    nested outputs as writable entries, because cwltool creates a plain folder literal only
    when it runs a tool without a container (inside one it mounts real folders only)."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ReanimateError(f"{outdir}: exists and is not a folder; give a folder to write into")
    try:
        return CwlCompiler(plan or make_plan(loaded), outdir, writable_folders).write()
    except OSError as exc:
        raise ReanimateError(f"cannot write the CWL export under {outdir}: {exc}") from None


def run_cwl(loaded: LoadedSpec, workdir: Path, provenance: bool = False,
            container: bool = False) -> dict[str, Any]:
    """Export to WORKDIR/cwl, run the current cwltool; return its JSON output object.

    `container`: run each tool inside its image (the lock's, by id: `dockerImageId`; checked
    first as `--containers docker` checks it, and never pulled); otherwise `--no-container`.
    """
    workdir = workdir.resolve()
    plan = make_plan(loaded)
    if container:  # one line, exit 2, when docker or an image is missing: no silent fallback
        from reanimate.engines.container import ContainerSteps

        ContainerSteps(plan, set(plan.order))
    memo = HashMemo(workdir / "hashes.json")
    plan.verify_inputs(None, memo)  # the same tamper check as the local engine
    for step, pin in plan.pins.items():
        verified_pin_outputs(plan.base_dir, step, pin, memo)
    export_dir = workdir / "cwl"
    if export_dir.exists():
        shutil.rmtree(export_dir)
    export_cwl(loaded, export_dir, plan, writable_folders=container)
    outdir = workdir / "cwl-outputs"
    bindir = Path(sys.executable).parent
    cwltool = bindir / "cwltool"
    argv = [str(cwltool if cwltool.exists() else "cwltool"), "--outdir", str(outdir),
            "--preserve-environment", "PYTHONHASHSEED"]
    for name in ("DASK_SCHEDULER_URI", "SOURCE_DATE_EPOCH"):
        if os.environ.get(name):
            argv += ["--preserve-environment", name]
    argv.append("--disable-pull" if container else "--no-container")
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
