"""Whole-spec rules that a field validator cannot see: references, the step graph, outputs."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from reanimate.spec.graph import dependencies, find_cycle, parse_step_reference, references
from reanimate.spec.models import Spec
from reanimate.spec.problems import did_you_mean
from reanimate.spec.yaml_source import Loc

PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\.([A-Za-z0-9_-]+)\}")
PARAMETER_REF = re.compile(r"^\$\{parameters\.([A-Za-z0-9_-]+)\}$")

# (loc, message, hint)
Finding = tuple[Loc, str, str | None]


def check_spec(spec: Spec) -> Iterator[Finding]:
    yield from _check_containers(spec)
    yield from _check_parameters(spec)
    for name, step in spec.steps.items():
        yield from _check_step(spec, name, step)
    yield from _check_outputs_unique(spec)
    cycle = find_cycle(dependencies(spec))
    if cycle:
        yield (("steps", cycle[0]), "steps form a cycle: " + " -> ".join(cycle), None)
    yield from _check_statistics(spec)
    yield from _check_reinterpretation(spec)


def _check_containers(spec: Spec) -> Iterator[Finding]:
    for name, container in spec.containers.items():
        image = container.image
        last = image.rsplit("/", 1)[-1]
        if "@sha256:" in image:
            continue
        if ":" not in last:
            yield (("containers", name, "image"), f"image {image!r} has no tag",
                   "pin an explicit tag such as :1.0.0; REANA refuses implicit latest")
        elif last.endswith(":latest"):
            yield (("containers", name, "image"), f"image {image!r} uses the tag 'latest'",
                   "pin an explicit version tag; REANA refuses latest")


def _check_parameters(spec: Spec) -> Iterator[Finding]:
    for name, value in spec.parameters.items():
        if isinstance(value, str) and PARAMETER_REF.match(value):
            yield (("parameters", name), "a global parameter cannot reference another", None)


def _check_step(spec: Spec, name: str, step) -> Iterator[Finding]:
    base: Loc = ("steps", name)
    if (step.program is None) == (step.command is None):
        yield (base, "a step needs exactly one of 'program' or 'command'",
               "program: a Python module; command: an argv list")
    if step.program is not None and not _module_exists(step.program):
        yield (base + ("program",), f"program module {step.program!r} cannot be imported",
               "give a module runnable with python -m")
    if step.container is not None and step.container not in spec.containers:
        yield (base + ("container",), f"container {step.container!r} is not declared",
               did_you_mean(step.container, list(spec.containers)) or "declare it under containers")
    for input_name, value in step.inputs.items():
        for ref in references(value):
            yield from _check_reference(spec, name, base + ("inputs", input_name), ref)
    for pname, value in step.parameters.items():
        if isinstance(value, str) and value.startswith("${"):
            match = PARAMETER_REF.match(value)
            if not match:
                yield (base + ("parameters", pname), f"malformed parameter reference {value!r}",
                       "write ${parameters.NAME}")
            elif match.group(1) not in spec.parameters:
                yield (base + ("parameters", pname),
                       f"parameter {match.group(1)!r} is not declared under parameters",
                       did_you_mean(match.group(1), list(spec.parameters)))
    for oname, path in step.outputs.items():
        pure = PurePosixPath(path)
        if not path or pure.is_absolute() or ".." in pure.parts:
            yield (base + ("outputs", oname), f"output path {path!r} must be relative, inside "
                   "the step's directory", None)
    if step.command:
        for index, arg in enumerate(step.command):
            for kind, key in PLACEHOLDER.findall(arg):
                table = {"inputs": step.inputs, "outputs": step.outputs,
                         "parameters": step.parameters}.get(kind)
                if table is None:
                    yield (base + ("command", index), f"unknown placeholder {{{kind}.{key}}}",
                           "use {inputs.X}, {outputs.Y} or {parameters.Z}")
                elif key not in table:
                    yield (base + ("command", index),
                           f"placeholder {{{kind}.{key}}} names no {kind[:-1]} of this step",
                           did_you_mean(key, list(table)))


def _check_reference(spec: Spec, step_name: str, loc: Loc, ref: str) -> Iterator[Finding]:
    if ref.startswith("datasets."):
        dataset = ref.removeprefix("datasets.")
        if dataset not in spec.datasets:
            yield (loc, f"dataset {dataset!r} is not declared",
                   did_you_mean(dataset, list(spec.datasets)) or "declare it under datasets")
    elif ref.startswith("steps."):
        producer, output = parse_step_reference(ref) or ("", "")
        if not producer:
            yield (loc, f"malformed reference {ref!r}", "write steps.STEP.OUTPUT")
        elif producer not in spec.steps:
            yield (loc, f"step {producer!r} does not exist",
                   did_you_mean(producer, list(spec.steps)))
        elif producer == step_name:
            yield (loc, f"step {step_name!r} reads its own output {output!r}", None)
        elif output not in spec.steps[producer].outputs:
            yield (loc, f"step {producer!r} has no output {output!r}",
                   did_you_mean(output, list(spec.steps[producer].outputs))
                   or f"its outputs: {', '.join(spec.steps[producer].outputs) or 'none'}")
    elif ref.startswith("file:") and not ref.removeprefix("file:"):
        yield (loc, "empty file reference", "write file:PATH relative to the spec")


def _check_outputs_unique(spec: Spec) -> Iterator[Finding]:
    # Engines with one shared workspace (REANA serial, CWL outputs/) put every output in one
    # folder, so two steps may not declare the same path.
    producers: dict[str, str] = {}
    for name, step in spec.steps.items():
        for oname, path in step.outputs.items():
            key = str(PurePosixPath(path))
            if key in producers and producers[key] != name:
                yield (("steps", name, "outputs", oname),
                       f"output {path!r} is also produced by step {producers[key]!r}",
                       "give each output a distinct path")
            producers.setdefault(key, name)


def _check_output_ref(spec: Spec, loc: Loc, ref: str) -> Iterator[Finding]:
    parsed = parse_step_reference(ref)
    if not parsed or not parsed[0]:
        yield (loc, f"{ref!r} is not a step output reference", "write steps.STEP.OUTPUT")
    elif parsed[0] not in spec.steps:
        yield (loc, f"step {parsed[0]!r} does not exist", did_you_mean(parsed[0], list(spec.steps)))
    elif parsed[1] not in spec.steps[parsed[0]].outputs:
        yield (loc, f"step {parsed[0]!r} has no output {parsed[1]!r}",
               did_you_mean(parsed[1], list(spec.steps[parsed[0]].outputs)))


def _check_statistics(spec: Spec) -> Iterator[Finding]:
    if spec.statistics is None:
        return
    yield from _check_output_ref(spec, ("statistics", "hs3"), spec.statistics.hs3)
    if spec.statistics.pyhf:
        yield from _check_output_ref(spec, ("statistics", "pyhf"), spec.statistics.pyhf)


def _check_reinterpretation(spec: Spec) -> Iterator[Finding]:
    if spec.reinterpretation is None:
        return
    for index, step in enumerate(spec.reinterpretation.steps):
        if step not in spec.steps:
            yield (("reinterpretation", "steps", index), f"step {step!r} does not exist",
                   did_you_mean(step, list(spec.steps)))


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
