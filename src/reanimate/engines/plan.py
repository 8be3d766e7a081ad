"""One resolved run of a spec, which every engine renders.

`make_plan(loaded, overrides)` resolves, once: the step order, each step's parameter values
(global parameters and --set overrides substituted), its inputs (dataset files and `file:`
inputs with their lock entries, upstream outputs), model pins from the lock, the command line
as a template of typed arguments, and the code digest of its cache key. The local engine fills
the template with paths and hashes; the CWL and REANA compilers turn the same template into
input bindings and shell commands. Nothing outside this module and spec/refs.py reads a
reference string or the lock.
"""

from __future__ import annotations

import hashlib
import json
import math
import shlex
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from reanimate.engines.code import code_files_digest, program_digest
from reanimate.errors import ReanimateError
from reanimate.hashing import HashMemo
from reanimate.lock import (
    InputFile,
    Lock,
    external_input,
    image_by_digest,
    read_lock,
    verify_input,
    write_lock,
)
from reanimate.spec.graph import dependencies, downstream, topological_order
from reanimate.spec.loader import LoadedSpec
from reanimate.spec.models import Spec, Step
from reanimate.spec.refs import (
    DatasetRef,
    FileRef,
    ParameterRef,
    Ref,
    StepOutputRef,
    placeholders,
    substitute,
    whole_placeholder,
)
from reanimate.steps.interface import Interface, load_interface, render

KEY_FORMAT = 2
#: Packages whose version is part of every cache key (a new numpy may change results).
KEY_PACKAGES = ("numpy", "awkward", "uproot", "dask", "distributed", "hist", "xgboost", "pyhf")
#: Packages recorded in provenance (not in the key).
RECORDED_PACKAGES = KEY_PACKAGES + ("pydantic", "mlflow", "iminuit", "matplotlib")


def package_versions(names: tuple[str, ...] = RECORDED_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# -- the command-line template ------------------------------------------------------------
@dataclass(frozen=True)
class Arg:
    """One piece of a step's command line.

    kind: "text" (a literal), "input"/"output"/"parameter" (the value(s) of that name, after
    `flag` if set) or "template" (a command argument with {kind.name} placeholders inside).
    """

    kind: str
    value: str
    flag: str | None = None


def program_args(step: Step) -> list[Arg]:
    """`python -m MODULE --INPUT PATH... --PARAM VALUE --OUTPUT PATH [--dask_*/--mlflow_*]`."""
    args = [Arg("text", "python"), Arg("text", "-m"), Arg("text", step.program)]
    args += [Arg("input", name, f"--{name}") for name in step.inputs]
    args += [Arg("parameter", name, f"--{name}") for name in step.parameters]
    args += [Arg("output", name, f"--{name}") for name in step.outputs]
    args += [Arg("text", value, flag) for flag, value in block_flags(step)]
    return args


def command_args(step: Step) -> list[Arg]:
    args = []
    for arg in step.command or []:
        whole = whole_placeholder(arg)
        if whole:
            args.append(Arg(whole[0][:-1], whole[1]))  # inputs -> input, ...
        elif placeholders(arg):
            args.append(Arg("template", arg))
        else:
            args.append(Arg("text", arg))
    return args


def block_flags(step: Step) -> list[tuple[str, str]]:
    """Flags a program step gets from its dask: and mlflow: blocks."""
    flags = []
    if step.dask:
        flags += [("--dask_workers", str(step.dask.workers)),
                  ("--dask_threads_per_worker", str(step.dask.threads_per_worker)),
                  ("--dask_memory_per_worker", step.dask.memory_per_worker)]
    if step.mlflow:
        flags.append(("--mlflow_experiment", step.mlflow.experiment))
        if step.mlflow.registered_model:
            flags.append(("--mlflow_registered_model", step.mlflow.registered_model))
    return flags


def fill(args: list[Arg], value) -> list[str]:
    """The argv of a template: value(kind, name) -> list of strings for each named piece.

    A placeholder inside a larger argument is shell code (think `sh -c "... {inputs.x} ..."`):
    each of its values is shell-quoted there and they are joined by spaces. Every engine follows
    this rule, so their command lines agree byte for byte.
    """
    argv: list[str] = []
    for arg in args:
        if arg.kind == "text":
            argv += ([arg.flag] if arg.flag else []) + [arg.value]
        elif arg.kind == "template":
            argv.append(substitute(arg.value, lambda k, n: " ".join(
                shlex.quote(v) for v in value(k[:-1], n) or [])))
        else:
            values = value(arg.kind, arg.value)
            if values is None:
                continue  # a null parameter: the flag is left out
            argv += ([arg.flag] if arg.flag else []) + list(values)
    return argv


def parameter_words(planned: PlanStep, name: str) -> list[str] | None:
    """A parameter's value on the command line. A null value: a program's flag is left out
    (None); in a command it is the empty string."""
    value = planned.parameters[name]
    if value is None:
        return None if planned.step.program else [""]
    return [render(value)]


# -- the plan -----------------------------------------------------------------------------
@dataclass(frozen=True)
class InputItem:
    """One file or folder an input names: an external file, or an upstream step's output."""

    ref: Ref
    external: InputFile | None = None
    producer: StepOutputRef | None = None


@dataclass
class PlanStep:
    name: str
    step: Step
    upstream: list[str]
    parameters: dict[str, Any]  # resolved values
    parameter_sources: dict[str, str]  # step parameter -> the global parameter it reads
    inputs: dict[str, list[InputItem]]
    outputs: dict[str, str]  # output name -> path as declared (a trailing / for folders)
    args: list[Arg]
    code: str
    interface: Interface | None = None
    pin: dict | None = None

    def output_is_dir(self, output: str) -> bool:
        return self.outputs[output].endswith("/")

    def argv(self, inputs: dict[str, list[str]], outputs: dict[str, str]) -> list[str]:
        """The command line with these input and output paths (`python` as written)."""
        tables = {"input": inputs, "output": {k: [v] for k, v in outputs.items()},
                  "parameter": {k: parameter_words(self, k) for k in self.parameters}}
        return fill(self.args, lambda kind, name: tables[kind][name])

    def external_files(self) -> list[InputFile]:
        return [item.external for items in self.inputs.values() for item in items
                if item.external is not None]

    def key_payload(self, input_digests: dict[str, list[str]], image: str | None = None) -> dict:
        """What the cache key hashes; stored beside each cache entry so changes can be named.

        `image` is the id of the image a container run runs the step in (`--containers
        docker`); a native run has no such entry, so their results never share a key.
        """
        definition = self.step.model_dump(mode="json",
                                          exclude={"description", "resources", "dask"})
        payload = {
            "format": KEY_FORMAT,
            "definition": definition,
            "parameters": self.parameters,
            "inputs": input_digests,
            "code": self.code,
            "packages": package_versions(KEY_PACKAGES),
        }
        if image is not None:
            payload["image"] = image
        return payload


def cache_key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def key_changes(old: dict, new: dict) -> list[str]:
    """Why two key payloads differ, in words: which parameter, input, code or package."""
    reasons = []
    for name in sorted(set(old.get("parameters", {})) | set(new.get("parameters", {}))):
        a, b = old.get("parameters", {}).get(name), new.get("parameters", {}).get(name)
        if a != b:
            reasons.append(f"parameter {name}: {a!r} -> {b!r}")
    for name in sorted(set(old.get("inputs", {})) | set(new.get("inputs", {}))):
        if old.get("inputs", {}).get(name) != new.get("inputs", {}).get(name):
            reasons.append(f"input {name} changed")
    if old.get("code") != new.get("code"):
        reasons.append("code changed")
    if old.get("definition") != new.get("definition"):
        reasons.append("step definition changed")
    for name, version in new.get("packages", {}).items():
        if old.get("packages", {}).get(name) != version:
            reasons.append(f"package {name} {old.get('packages', {}).get(name)} -> {version}")
    if old.get("image") != new.get("image"):
        reasons.append(f"image {_short(old.get('image'))} -> {_short(new.get('image'))}")
    if old.get("format") != new.get("format"):
        reasons.append("cache format changed")
    return reasons


def _short(image: str | None) -> str:
    """An image id as docker prints it (12 hex digits), or `none` for a native run."""
    return image.removeprefix("sha256:")[:12] if image else "none"


@dataclass
class Plan:
    loaded: LoadedSpec
    lock: Lock
    parameters: dict[str, Any]
    order: list[str]
    deps: dict[str, list[str]]
    steps: dict[str, PlanStep] = field(default_factory=dict)

    @property
    def spec(self) -> Spec:
        return self.loaded.spec

    @property
    def base_dir(self) -> Path:
        return self.loaded.base_dir

    @property
    def pins(self) -> dict[str, dict]:
        return {name: s.pin for name, s in self.steps.items() if s.pin is not None}

    def image_entry(self, container: str) -> dict | None:
        """What `reanimate containers build` recorded in the lock for a container, if anything:
        ``{"image": TAG, "id": "sha256:...", "pushed": {REPOSITORY: "sha256:..."}, ...}``."""
        return self.lock.images.get(container)

    def image_reference(self, container: str) -> str:
        """How an export names a container's image: ``REPOSITORY@sha256:MANIFEST`` once the
        lock records a push, otherwise the spec's tag."""
        entry = self.image_entry(container)
        return (entry and image_by_digest(entry)) or self.spec.containers[container].image

    def select(self, only: list[str] | None = None, from_step: str | None = None) -> set[str]:
        """The steps the user asked for: --only, --from, or all of them."""
        for name in (only or []) + ([from_step] if from_step else []):
            if name not in self.steps:
                raise ReanimateError(f"no step {name!r} in {self.loaded.path.name} "
                                     f"(steps: {', '.join(self.order)})")
        if only:
            return set(only)
        if from_step:
            return downstream(self.deps, {from_step})
        return set(self.order)

    def needed(self, selected: set[str]) -> set[str]:
        """Selected steps plus everything upstream of them (served from the cache)."""
        needed, frontier = set(selected), list(selected)
        while frontier:
            for dep in self.deps[frontier.pop()]:
                if dep not in needed:
                    needed.add(dep)
                    frontier.append(dep)
        return needed

    def external_inputs(self, steps: set[str] | None = None) -> dict[str, InputFile]:
        """Every external input file by its spec key: of all steps, or of `steps`."""
        out: dict[str, InputFile] = {}
        for name in self.order:
            if steps is None or name in steps:
                for item in self.steps[name].external_files():
                    out.setdefault(item.key, item)
        return out

    def verify_inputs(self, steps: set[str] | None, memo: HashMemo) -> dict[str, str | None]:
        """sha256 of every external input of `steps` after checking the lock and the spec."""
        return {key: verify_input(item, self.lock, memo)
                for key, item in self.external_inputs(steps).items()}


def make_plan(loaded: LoadedSpec, overrides: dict[str, str] | None = None) -> Plan:
    spec = loaded.spec
    lock = read_lock(loaded.path)
    globals_ = global_parameters(spec, overrides)
    deps = dependencies(spec)
    plan = Plan(loaded, lock, globals_, topological_order(deps), deps)
    for name in plan.order:
        plan.steps[name] = _plan_step(loaded, name, spec.steps[name], deps[name], globals_,
                                      lock.models.get(name))
    return plan


def _plan_step(loaded: LoadedSpec, name: str, step: Step, upstream: list[str],
               globals_: dict[str, Any], pin: dict | None) -> PlanStep:
    parameters, sources = {}, {}
    for pname, value in step.parameter_values.items():
        if isinstance(value, ParameterRef):
            parameters[pname], sources[pname] = globals_[value.name], value.name
        else:
            parameters[pname] = value
    inputs = {iname: [item for ref in refs for item in _items(loaded, ref)]
              for iname, refs in step.input_refs.items()}
    if step.program:
        code = program_digest(step.program)
        interface = load_interface(step.program)
    else:
        for file in step.code:
            if not (loaded.base_dir / file).is_file():
                raise ReanimateError(f"step {name!r}: code file {file} not found "
                                     f"(relative to {loaded.base_dir})")
        code = code_files_digest(step.code, loaded.base_dir)
        interface = None
    args = program_args(step) if step.program else command_args(step)
    return PlanStep(name, step, upstream, parameters, sources, inputs, dict(step.outputs),
                    args, code, interface, pin)


def _items(loaded: LoadedSpec, ref: Ref) -> list[InputItem]:
    if isinstance(ref, DatasetRef):
        return [InputItem(ref, external_input(loaded.base_dir, f.path, f.sha256))
                for f in loaded.spec.datasets[ref.name].files]
    if isinstance(ref, FileRef):
        return [InputItem(ref, external_input(loaded.base_dir, ref.path))]
    return [InputItem(ref, producer=ref)]


def write_spec_lock(loaded: LoadedSpec) -> tuple[Path, int]:
    """`reanimate lock`: the sha256 of every external input of the spec into SPEC.lock.json."""
    return write_lock(make_plan(loaded).external_inputs(), loaded.path)


# -- global parameters and --set ------------------------------------------------------------
def global_parameters(spec: Spec, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """The spec's parameters with NAME=VALUE overrides, coerced to the declared type."""
    values = dict(spec.parameters)
    for name, text in (overrides or {}).items():
        if name not in values:
            known = ", ".join(values) or "none"
            raise ReanimateError(f"--set {name}: no such parameter (declared: {known})")
        values[name] = _coerce(name, text, values[name])
    return values


def _coerce(name: str, text: str, declared: Any) -> Any:
    try:
        if isinstance(declared, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
        if isinstance(declared, int):
            return int(text)
        if isinstance(declared, float):
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
            return value
    except ValueError:
        raise ReanimateError(f"--set {name}={text}: expected {type(declared).__name__}") from None
    return text
