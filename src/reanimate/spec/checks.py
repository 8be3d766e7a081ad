"""Whole-spec rules a field validator cannot see: references, the step graph, shared outputs.

They run on the raw YAML data (defensively: anything of the wrong shape is skipped, since the
pydantic pass reports it), so that a spec with a type error still gets its reference errors
reported in the same pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from reanimate.errors import ReanimateError
from reanimate.spec.graph import find_cycle
from reanimate.spec.interface_checks import _StepCheck, check_step_interface
from reanimate.spec.problems import did_you_mean
from reanimate.spec.programs import locate, program_problem, trusted
from reanimate.spec.refs import (
    DatasetRef,
    ParameterRef,
    RefError,
    StepOutputRef,
    as_list,
    parse_parameter,
    parse_ref,
    placeholders,
)
from reanimate.spec.yaml_source import Loc
from reanimate.steps.interface import load_interface

Finding = tuple[Loc, str, str | None]  # (loc, message, hint)


def _table(data: Any, key: str) -> dict:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def _steps(data: dict) -> dict[str, dict]:
    return {k: v for k, v in _table(data, "steps").items() if isinstance(v, dict)}


def _refs(value: Any) -> list:
    """The well-formed references of a raw input value (malformed ones: the model reports them)."""
    out = []
    for item in as_list(value):
        try:
            out.append(parse_ref(item))
        except RefError:
            pass
    return out


def raw_dependencies(data: dict) -> dict[str, list[str]]:
    steps = _steps(data)
    deps: dict[str, list[str]] = {}
    for name, step in steps.items():
        found: list[str] = []
        for value in _table(step, "inputs").values():
            for ref in _refs(value):
                # a self-reference is reported on its own, not as a cycle
                if (isinstance(ref, StepOutputRef) and ref.step in steps
                        and ref.step not in found + [name]):
                    found.append(ref.step)
        deps[name] = found
    return deps


def check_spec(data: dict) -> Iterator[Finding]:
    yield from _check_containers(data)
    yield from _check_parameters(data)
    for name, step in _steps(data).items():
        yield from _check_step(data, name, step)
    yield from _check_outputs_unique(data)
    yield from _check_step_names(data)
    cycle = find_cycle(raw_dependencies(data))
    if cycle:
        shown = cycle if len(cycle) <= 12 else (
            cycle[:5] + [f"... ({len(cycle) - 8} more)"] + cycle[-3:])
        yield (("steps", cycle[0]), "steps form a cycle: " + " -> ".join(shown),
               "a step cannot depend on its own outputs, directly or not")
    yield from _check_statistics(data)
    yield from _check_reinterpretation(data)


def _check_containers(data: dict) -> Iterator[Finding]:
    for name, container in _table(data, "containers").items():
        image = container.get("image") if isinstance(container, dict) else None
        if not isinstance(image, str) or "@sha256:" in image:
            continue
        last = image.rsplit("/", 1)[-1]
        if ":" not in last:
            yield (("containers", name, "image"), f"image {image!r} has no tag",
                   "pin an explicit tag such as :1.0.0; REANA refuses an implicit latest")
        elif last.endswith(":latest"):
            yield (("containers", name, "image"), f"image {image!r} uses the tag 'latest'",
                   "pin an explicit version tag; REANA refuses latest")


def _check_parameters(data: dict) -> Iterator[Finding]:
    for name, value in _table(data, "parameters").items():
        try:
            if isinstance(parse_parameter(value), ParameterRef):
                yield (("parameters", name), "a global parameter cannot reference another", None)
        except RefError:
            pass


def _check_step(data: dict, name: str, step: dict) -> Iterator[Finding]:
    base: Loc = ("steps", name)
    has_program, has_command = step.get("program") is not None, step.get("command") is not None
    if has_program == has_command:
        yield (base, "a step needs exactly one of 'program' or 'command'",
               "program: a Python module; command: an argv list")
    program = step.get("program")
    problem = program_problem(program) if isinstance(program, str) else None
    if problem:
        yield (base + ("program",), problem, "give a module runnable with python -m")
    containers = _table(data, "containers")
    container = step.get("container")
    if isinstance(container, str) and container not in containers:
        yield (base + ("container",), f"container {container!r} is not declared",
               did_you_mean(container, list(containers)) or "declare it under containers")
    for input_name, value in _table(step, "inputs").items():
        for ref in _refs(value):
            yield from _check_reference(data, name, base + ("inputs", input_name), ref)
    parameters = _table(data, "parameters")
    for pname, value in _table(step, "parameters").items():
        try:
            parsed = parse_parameter(value)
        except RefError:
            yield (base + ("parameters", pname), f"malformed parameter reference {value!r}",
                   "write ${parameters.NAME}")
            continue
        if isinstance(parsed, ParameterRef) and parsed.name not in parameters:
            yield (base + ("parameters", pname),
                   f"parameter {parsed.name!r} is not declared under parameters",
                   did_you_mean(parsed.name, list(parameters)))
    for oname, path in _table(step, "outputs").items():
        if isinstance(path, str):
            problem = _output_path_problem(path)
            if problem:
                yield (base + ("outputs", oname), problem[0], problem[1])
    command = step.get("command")
    if isinstance(command, list):
        tables = {k: _table(step, k) for k in ("inputs", "outputs", "parameters")}
        for index, arg in enumerate(command):
            for kind, key in placeholders(str(arg)):
                if kind not in tables:
                    yield (base + ("command", index), f"unknown placeholder {{{kind}.{key}}}",
                           "use {inputs.X}, {outputs.Y} or {parameters.Z}")
                elif key not in tables[kind]:
                    yield (base + ("command", index),
                           f"placeholder {{{kind}.{key}}} names no {kind[:-1]} of this step",
                           did_you_mean(key, list(tables[kind])))
    yield from check_step_interface(data, name, step)


def _check_reference(data: dict, step_name: str, loc: Loc, ref) -> Iterator[Finding]:
    if isinstance(ref, DatasetRef):
        datasets = _table(data, "datasets")
        if ref.name not in datasets:
            yield (loc, f"dataset {ref.name!r} is not declared",
                   did_you_mean(ref.name, list(datasets)) or "declare it under datasets")
    elif isinstance(ref, StepOutputRef):
        if ref.step == step_name:
            yield (loc, f"step {step_name!r} reads its own output", None)
            return
        yield from _check_output_ref(data, loc, ref)


def _check_output_ref(data: dict, loc: Loc, ref: StepOutputRef) -> Iterator[Finding]:
    steps = _steps(data)
    if ref.step not in steps:
        yield (loc, f"step {ref.step!r} does not exist", did_you_mean(ref.step, list(steps)))
    elif ref.output not in _table(steps[ref.step], "outputs"):
        outputs = list(_table(steps[ref.step], "outputs"))
        yield (loc, f"step {ref.step!r} has no output {ref.output!r}",
               did_you_mean(ref.output, outputs) or f"its outputs: {', '.join(outputs) or 'none'}")


#: The local engine's own file in each cache entry (engines/cache.py META).
RESERVED_OUTPUT = ".reanimate-meta.json"
#: The longest file name most filesystems take (ext4, XFS, APFS, NTFS: 255 bytes).
MAX_NAME_BYTES = 255
#: A step name becomes a folder (WORKDIR/results/STEP) and file names (STEP.cwl, ...).
MAX_STEP_NAME_BYTES = 200


def _output_path_problem(path: str) -> tuple[str, str | None] | None:
    """Why an output path cannot be one, as (message, hint), or None."""
    if not path:
        return "output path is empty", "name a file, or a directory with a trailing '/'"
    if "\0" in path:
        return f"output path {path!r} contains a NUL byte", None
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts:
        return f"output path {path!r} must be relative, inside the step's directory", None
    if not pure.parts:  # ".", "./", "./.": the step's directory itself
        return (f"output path {path!r} is the step's directory itself",
                "name a file or a subdirectory, e.g. out/")
    if RESERVED_OUTPUT in pure.parts:
        return (f"output path {path!r} uses {RESERVED_OUTPUT}, the name of reanimate's own "
                "metadata file", "choose another name")
    for part in pure.parts:
        size = len(part.encode("utf-8", "surrogatepass"))
        if size > MAX_NAME_BYTES:
            return (f"output path {path!r} has a component of {size} bytes, longer than a "
                    f"file name may be ({MAX_NAME_BYTES} bytes)", None)
    return None


def _check_step_names(data: dict) -> Iterator[Finding]:
    seen: dict[str, str] = {}
    for name in _table(data, "steps"):
        if not isinstance(name, str):
            continue
        if len(name.encode("utf-8", "surrogatepass")) > MAX_STEP_NAME_BYTES:
            yield (("steps", name), f"step name of {len(name.encode())} bytes, longer than "
                   f"{MAX_STEP_NAME_BYTES}", "a step name becomes a folder and file names")
        folded = name.casefold()
        if folded in seen:
            yield (("steps", name), f"step {name!r} differs from step {seen[folded]!r} only in "
                   "case; they collide on case-insensitive filesystems (and as CWL files)",
                   "rename one of them")
        seen.setdefault(folded, name)


def _check_outputs_unique(data: dict) -> Iterator[Finding]:
    # Engines with one shared workspace (REANA serial, CWL's outputs/) put every output in one
    # folder, so two outputs may not declare the same path, one path may not be both a file
    # and a directory, a file may not be the folder of another output, and two paths may not
    # differ only in case (they are one on a case-insensitive filesystem).
    declared: list[tuple[str, str, str, bool, tuple[str, ...]]] = []
    for name, step in _steps(data).items():
        for oname, path in _table(step, "outputs").items():
            if isinstance(path, str) and _output_path_problem(path) is None:
                parts = PurePosixPath(path).parts
                declared.append((name, oname, path, path.endswith("/"), parts))
    exact: dict[tuple[str, ...], tuple[str, str, str, bool]] = {}
    folded: dict[tuple[str, ...], tuple[str, str, str]] = {}
    for name, oname, path, is_dir, parts in declared:
        loc = ("steps", name, "outputs", oname)
        where = exact.get(parts)
        if where is not None:
            other_step, other_output, other_path, other_dir = where
            if other_dir != is_dir:
                kinds = ("a directory", "a file") if other_dir else ("a file", "a directory")
                yield (loc, f"output {path!r} is declared as {kinds[1]} here and as "
                       f"{kinds[0]} by {_owner(other_step, other_output, name)} "
                       f"({other_path!r})", "a trailing '/' marks a directory; use one form")
            elif other_step != name:
                yield (loc, f"output {path!r} is also produced by step {other_step!r}",
                       "give each output a distinct path")
            else:
                yield (loc, f"output {path!r} is also declared by output {other_output!r} of "
                       "this step", "give each output a distinct path")
            continue
        exact[parts] = (name, oname, path, is_dir)
        key = tuple(part.casefold() for part in parts)
        if key in folded:
            other_step, other_output, other_path = folded[key]
            yield (loc, f"output {path!r} differs from {other_path!r} "
                   f"({_owner(other_step, other_output, name)}) only in case; they collide "
                   "on case-insensitive filesystems", "give each output a distinct path")
            continue
        folded[key] = (name, oname, path)
    for name, oname, path, _, parts in declared:
        for depth in range(1, len(parts)):
            where = exact.get(parts[:depth])
            if where is None or where[3]:
                continue  # a folder of no output, or a directory output: a folder indeed
            other_step, other_output, other_path, _ = where
            yield (("steps", name, "outputs", oname),
                   f"output {path!r} lies inside {other_path!r}, which "
                   f"{_owner(other_step, other_output, name)} declares as a file",
                   "a file cannot be the folder of another output")
            break


def _owner(step: str, output: str, this_step: str) -> str:
    return f"output {output!r}" + ("" if step == this_step else f" of step {step!r}")


def _check_statistics(data: dict) -> Iterator[Finding]:
    statistics = _table(data, "statistics")
    for key in ("hs3", "pyhf"):
        if not isinstance(statistics.get(key), str):
            continue
        try:
            ref = parse_ref(statistics[key])
        except RefError:
            ref = None
        if not isinstance(ref, StepOutputRef):
            yield (("statistics", key), f"{statistics[key]!r} is not a step output reference",
                   "write steps.STEP.OUTPUT")
        else:
            yield from _check_output_ref(data, ("statistics", key), ref)


def _check_reinterpretation(data: dict) -> Iterator[Finding]:
    """The reinterpretation block: every step, input, output and program it names resolves,
    and every parameter it sets is a flag its program declares (docs/reinterpretation.md)."""
    block = _table(data, "reinterpretation")
    base: Loc = ("reinterpretation",)
    steps = _steps(data)
    listed = block.get("steps")
    listed = [s for s in listed if isinstance(s, str)] if isinstance(listed, list) else []
    for index, step in enumerate(listed):
        if step not in steps:
            yield (base + ("steps", index), f"step {step!r} does not exist",
                   did_you_mean(step, list(steps)))
    signal_steps = [s for s in listed if s in steps]
    for step, overrides in _table(block, "parameters").items():
        loc = base + ("parameters", step)
        if step not in signal_steps:
            yield (loc, f"{step!r} is not one of the signal steps (reinterpretation.steps)",
                   did_you_mean(str(step), signal_steps))
        elif isinstance(overrides, dict):
            for sub, message, hint in _flag_findings(steps[step].get("program"),
                                                     {"parameters": overrides}):
                if len(sub) == 2:  # an import failure: the step's own checks report it
                    yield (loc + sub[1:], message, hint)
    yield from _block_ref(data, block, "signal_input", signal_steps, "input")
    yield from _block_ref(data, block, "signal_histograms", signal_steps, "output")
    yield from _block_ref(data, block, "workspace", None, "output")
    patch = block.get("patch")
    if isinstance(patch, dict):
        for name, value in _table(patch, "inputs").items():
            yield from _output_value(data, base + ("patch", "inputs", name), value)
        yield from _program_findings(base + ("patch",), patch, ("parameters", "inputs"),
                                     needs="signal_histograms")
    for name, recipe in _table(block, "recipes").items():
        if isinstance(recipe, dict):
            yield from _program_findings(base + ("recipes", name), recipe, ("parameters",))


def _block_ref(data: dict, block: dict, key: str, within: list[str] | None,
               kind: str) -> Iterator[Finding]:
    """`steps.STEP.NAME` under reinterpretation.KEY: an input or output of an existing step (one
    of `within` when given)."""
    value = block.get(key)
    if not isinstance(value, str):
        return
    loc: Loc = ("reinterpretation", key)
    if kind == "output" and within is None:
        yield from _output_value(data, loc, value)
        return
    try:
        ref = parse_ref(value)
    except RefError:
        ref = None
    if not isinstance(ref, StepOutputRef):
        yield (loc, f"{value!r} is not a reference to a step's {kind}",
               f"write steps.STEP.{kind.upper()}")
    elif within is not None and ref.step not in within:
        yield (loc, f"step {ref.step!r} is not one of the signal steps (reinterpretation.steps)",
               did_you_mean(ref.step, within))
    elif kind == "output":
        yield from _check_output_ref(data, loc, ref)
    elif ref.output not in _table(_steps(data)[ref.step], "inputs"):
        names = list(_table(_steps(data)[ref.step], "inputs"))
        yield (loc, f"step {ref.step!r} has no input {ref.output!r}",
               did_you_mean(ref.output, names) or f"its inputs: {', '.join(names) or 'none'}")


def _output_value(data: dict, loc: Loc, value: Any) -> Iterator[Finding]:
    try:
        ref = parse_ref(value)
    except RefError:
        ref = None
    if not isinstance(ref, StepOutputRef):
        yield (loc, f"{value!r} is not a step output reference", "write steps.STEP.OUTPUT")
    else:
        yield from _check_output_ref(data, loc, ref)


def _program_findings(loc: Loc, block: dict, tables: tuple[str, ...],
                      needs: str | None = None) -> Iterator[Finding]:
    """A recipe's or the patch's program: locatable, and its keys flags it declares."""
    program = block.get("program")
    if not isinstance(program, str):
        return
    problem = program_problem(program)
    if problem:
        yield (loc + ("program",), problem, "give a module runnable with python -m")
        return
    given = {k: _table(block, k) for k in tables}
    for sub, message, hint in _flag_findings(program, given, needs):
        yield (loc + sub, message, hint)


def _flag_findings(program: Any, given: dict, needs: str | None = None) -> Iterator[Finding]:
    """Findings of the tables in `given` against the interface of `program` (a reanimate
    program declaring one; others are not imported), located relative to the block."""
    if not (isinstance(program, str) and trusted(program) and locate(program) is not None):
        return
    try:
        interface = load_interface(program)
    except ReanimateError as exc:
        yield (("program",), str(exc), "fix the module so that python -m can run it")
        return
    if interface is None:
        return
    check = _StepCheck({}, (), given, program, interface)
    yield from check.parameters()
    if "inputs" in given:
        yield from check.inputs()
    if needs and (interface.flag(needs) is None or interface.flag(needs).role != "input"):
        yield (("program",), f"{program} has no input {needs!r}, which reanimate reinterpret "
               "gives it", None)
