"""Compile a plan to reana.yaml (type cwl or serial) with its Gherkin tests.

Serial commands are quoted for bash and for REANA's `$` substitution (`_Words`;
docs/engines.md, "Serial commands"). Staging and submission: engines/reana_submit.py.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reanimate.engines.cwl import CwlCompiler
from reanimate.engines.plan import Arg, Plan, PlanStep, make_plan, render
from reanimate.errors import ReanimateError
from reanimate.hashing import sha256_file
from reanimate.spec.loader import LoadedSpec
from reanimate.spec.refs import substitute

REANA_VERSIONS = ("0.9", "0.95")

#: What REANA's string.Template accepts in ${...}: a name with '-' cannot be substituted.
_TEMPLATE_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
#: What bash still interprets inside double quotes: REANA puts a parameter's value as plain text
#: into "${NAME}", so a value holding one of these is written into the command instead.
_DOUBLE_QUOTE_SPECIAL = frozenset('"$`\\')
_MARK = "\0"  # stands for a placeholder while a template is cut up (argv holds no NUL)


def _clean(path: str) -> str:
    return path.rstrip("/")


def _quote(text: str) -> str:
    """shlex.quote, written shorter where `text` holds single quotes: 'it'\\''s' for it's."""
    if text and shlex.quote(text) == text:
        return text
    return "\\'".join(f"'{part}'" if part else "" for part in text.split("'")) or "''"


def _literal(text: str) -> str:
    """Text as one shell word of a REANA serial command: quoted, each `$` doubled (REANA
    expands `$NAME` and `${NAME}` in the whole command before bash runs it; `$$` is a `$`).

    A literal `${` is also cut in two by an empty quote (`'$''{'`, the same word to bash):
    reana-client validate would take `$${X}` for a use of parameter X. A `$` makes the text
    quoted, and never sits next to a `'`, so the cut is always inside single quotes.
    """
    return _quote(text).replace("${", "$''{").replace("$", "$$")


@dataclass(frozen=True)
class _Global:
    """A global parameter left to REANA: `"${NAME}"`, replaced by its inputs.parameters value."""

    name: str


class _Words:
    """The shell words of one serial step, from the plan's argument template.

    * a text, input or output argument, and a whole-argument placeholder: one word per value;
    * a null parameter: a program flag is left out; in a command it is the empty string;
    * an argument with placeholders inside is shell code (`sh -c "..."`): each value is
      substituted shell-quoted (shlex.quote, so a plain word stays as it is) inside the word;
    * a step parameter that reads a global parameter stays REANA's `"${NAME}"` (so
      `reana-client run -p NAME=VALUE` works) when REANA's plain-text substitution keeps the
      value intact there: not null, a name string.Template accepts, no double quote, `$`,
      backquote or backslash (and no `'` inside an argument, where the value is single-quoted);
      otherwise its value is written in.
    """

    def __init__(self, compiler: ReanaCompiler, planned: PlanStep, used: dict[str, Any]) -> None:
        self.compiler, self.planned, self.used = compiler, planned, used

    def argument(self, arg: Arg) -> list[str]:
        flag = [_literal(arg.flag)] if arg.flag else []
        if arg.kind == "text":
            return flag + [_literal(arg.value)]
        if arg.kind == "template":
            return [self._word(self._template(arg.value))]
        if arg.kind == "input":
            return flag + [_literal(p) for p in self.compiler.input_paths(self.planned, arg.value)]
        if arg.kind == "output":
            return flag + [_literal(_clean(self.planned.outputs[arg.value]))]
        value = self.planned.parameters[arg.value]
        if value is None and arg.flag:
            return []  # a null parameter: its flag is left out (as the local engine does)
        glob = self._global(arg.value, inside=False)
        if glob is not None:
            return flag + [self._word([_Global(glob)])]
        return flag + [_literal(_text(value))]

    def _global(self, pname: str, inside: bool) -> str | None:
        glob = self.planned.parameter_sources.get(pname)
        if glob is None or not _TEMPLATE_NAME.fullmatch(glob):
            return None
        value = self.compiler.plan.parameters[glob]
        if value is None:
            return None
        text = render(value)
        if _DOUBLE_QUOTE_SPECIAL & set(text) or (inside and "'" in text):
            return None
        # REANA writes str(value): a boolean must reach it rendered (true, not True)
        self.used[glob] = text if isinstance(value, bool) else value
        return glob

    def _template(self, text: str) -> list[str | _Global]:
        if _MARK in text:
            raise ReanimateError(f"step {self.planned.name!r}: a command argument holds a NUL "
                                 "character")
        found: list[tuple[str, str]] = []
        marked = substitute(text, lambda kind, name: found.append((kind, name)) or _MARK)
        pieces: list[str | _Global] = []
        for index, literal in enumerate(marked.split(_MARK)):
            pieces.append(literal)
            if index < len(found):
                pieces += self._placeholder(*found[index])
        return pieces

    def _placeholder(self, kind: str, name: str) -> list[str | _Global]:
        """A placeholder inside an argument, as shell code: its value(s) shell-quoted."""
        if kind == "inputs":
            return [" ".join(shlex.quote(p)
                             for p in self.compiler.input_paths(self.planned, name))]
        if kind == "outputs":
            return [shlex.quote(_clean(self.planned.outputs[name]))]
        glob = self._global(name, inside=True)
        if glob is None:
            return [shlex.quote(_text(self.planned.parameters[name]))]
        text = render(self.compiler.plan.parameters[glob])
        quote = "" if shlex.quote(text) == text else "'"  # shlex.quote(text), done by REANA
        return [quote, _Global(glob), quote]

    @staticmethod
    def _word(pieces: list[str | _Global]) -> str:
        """Pieces joined into one shell word: literal runs quoted, globals as "${NAME}"."""
        out, text = [], ""
        for piece in pieces:
            if isinstance(piece, _Global):
                if text:
                    out.append(_literal(text))
                    text = ""
                out.append('"${' + piece.name + '}"')
            else:
                text += piece
        if text or not out:
            out.append(_literal(text))
        return "".join(out)


def _text(value: Any) -> str:
    """A parameter value in a command: rendered as everywhere, null as the empty string."""
    return "" if value is None else render(value)


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
        """Dataset and file: inputs, command steps' code: files and the files of pinned steps,
        relative to the export root (they are uploaded)."""
        files = [self._relative(item.key) for item in self.plan.external_inputs().values()
                 if item.path is not None]
        files += [self._relative(code) for name in self.order
                  for code in self.spec.steps[name].code if self.plan.steps[name].pin is None]
        files += [self._relative(entry["path"]) for pin in self.plan.pins.values()
                  for entry in pin.get("files", {}).values()]
        return list(dict.fromkeys(files))

    def run_steps(self) -> list[str]:
        """The steps the workflow runs: all but those pinned to a registered model (their
        files are uploaded as inputs and their consumers read them there)."""
        return [name for name in self.order if self.plan.steps[name].pin is None]

    def _relative(self, key: str) -> str:
        absolute = (self.loaded.base_dir / key).resolve()
        if not absolute.is_relative_to(self.root):
            raise ReanimateError(
                f"input {key} lies outside {self.root}; REANA uploads only files inside the "
                "export folder (copy it in, or give it as an https:// or root:// URL)"
            )
        return absolute.relative_to(self.root).as_posix()

    def output_paths(self) -> tuple[list[str], list[str]]:
        files, directories = [], []
        for name in self.run_steps():
            for path in self.plan.steps[name].outputs.values():
                clean = _clean(path)
                where = (f"outputs/{Path(clean).name}" if self.type == "cwl"
                         else f"results/{name}/{clean}")
                (directories if path.endswith("/") else files).append(where)
        return files, directories

    def dask_resources(self) -> dict | None:
        for name in self.run_steps():
            step = self.spec.steps[name]
            if step.dask:
                image = step.dask.image or (
                    self.plan.image_reference(step.container) if step.container else None)
                block = {"number_of_workers": step.dask.workers,
                         "single_worker_memory": step.dask.memory_per_worker,
                         "single_worker_threads": step.dask.threads_per_worker}
                return {"image": image, **block} if image else block
        return None

    # -- serial ---------------------------------------------------------------------------
    def serial_steps(self) -> tuple[list[dict], dict[str, Any]]:
        used: dict[str, Any] = {}
        steps = []
        for name in self.run_steps():
            step = self.spec.steps[name]
            if not step.container:
                raise ReanimateError(f"step {name!r} has no container; a serial REANA workflow "
                                     "needs an image for every step")
            command = self._serial_command(name, used)
            entry: dict[str, Any] = {"name": name,
                                     "environment": self.plan.image_reference(step.container)}
            if step.resources and step.resources.memory:
                entry["kubernetes_memory_limit"] = step.resources.memory
            if step.resources and step.resources.timeout_seconds:
                entry["kubernetes_job_timeout"] = step.resources.timeout_seconds
            entry["commands"] = [command]
            steps.append(entry)
        return steps, used

    def _serial_command(self, name: str, used: dict[str, Any]) -> str:
        """One step as the shell command REANA runs: `mkdir -p ... && cd results/STEP && ARGV`.

        Every argument is one shell word (shlex-quoted) and every literal `$` is written `$$`,
        because REANA expands `$NAME`/`${NAME}` in the whole command (string.Template) before
        bash runs it. See _Words for placeholders inside an argument and global parameters.
        """
        planned = self.plan.steps[name]
        words = _Words(self, planned, used)
        argv: list[str] = []
        for arg in planned.args:
            argv += words.argument(arg)
        folders = sorted({f"results/{name}/{Path(_clean(p)).parent}".rstrip("/.")
                          for p in planned.outputs.values()} | {f"results/{name}"})
        prefix = (f"mkdir -p {' '.join(_literal(f) for f in folders)} && "
                  f"cd {_literal(f'results/{name}')} && ")
        return prefix + " ".join(argv)

    def input_paths(self, planned: PlanStep, iname: str) -> list[str]:
        """The paths of an input as a serial step sees them from results/STEP/."""
        up = "../.."
        out = []
        for item in planned.inputs[iname]:
            producer = item.producer
            pin = self.plan.steps[producer.step].pin if producer is not None else None
            if pin is not None:  # uploaded with the inputs, read where it is
                entry = pin.get("files", {}).get(producer.output)
                if entry is None:
                    raise ReanimateError(f"step {producer.step!r} is pinned; its pin has no "
                                         f"{producer.output!r}")
                out.append(f"{up}/{self._relative(entry['path'])}")
            elif producer is not None:
                path = _clean(self.plan.steps[producer.step].outputs[producer.output])
                out.append(f"{up}/results/{producer.step}/{path}")
            elif item.external.path is None:
                out.append(item.external.key)
            else:
                out.append(f"{up}/{self._relative(item.external.key)}")
        return out

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
        for name in self.run_steps():
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
