"""The derived spec of one signal: only the signal-dependent steps, on the signal alone.

Its steps: the recipe (when SIGNAL is one) writing the signal's catalogue; the block's signal
steps, their `signal_input` rewired to that catalogue and the block's parameter overrides
applied, every other input a `file:` of the preserved output (a pinned step's: its pin's
file), global parameters inlined as the preserved run resolved them; and the patch step (the
block's patch program on the signal histograms and the preserved outputs it names). With
signal histograms, only the patch step. Engine settings: one Dask worker of one thread (a
signal is small; a larger cluster costs more to start than it saves).
"""

from __future__ import annotations

import os
from pathlib import Path

from reanimate.errors import ReanimateError
from reanimate.reinterpret.analysis import PreparedAnalysis
from reanimate.reinterpret.signals import Signal

RECIPE_STEP = "signal_events"
PATCH_STEP = "signal_patch"
PATCH_OUTPUT = "patch/patch_ops.json"


def _interface(program: str):
    from reanimate.steps.interface import load_interface

    return load_interface(program)


def _single_output(interface, fallback: str):
    """(flag name, kind) of the program's one output flag; `fallback` without an interface."""
    if interface is None:
        return fallback, "file"
    outputs = interface.by_role("output")
    required = [f for f in outputs if f.required] or outputs
    if len(required) != 1:
        raise ReanimateError(f"{interface.prog}: expected one output flag, it declares "
                             f"{', '.join(f.name for f in outputs) or 'none'}")
    return required[0].name, required[0].kind


def _unique(name: str, taken: set[str]) -> str:
    out, n = name, 1
    while out in taken:
        n += 1
        out = f"{name}_{n}"
    return out


def recipe_step(prepared: PreparedAnalysis, signal: Signal) -> dict:
    """The recipe's step: its program with the block's defaults and SIGNAL's values."""
    from reanimate.spec.problems import did_you_mean

    recipe = prepared.block["recipes"][signal.recipe]
    interface = _interface(recipe["program"])
    parameters = dict(recipe.get("parameters") or {})
    for key, text in signal.parameters.items():
        flag = interface.flag(key) if interface else None
        if interface is not None and (flag is None or flag.role != "parameter"):
            names = [f.name for f in interface.by_role("parameter")]
            hint = did_you_mean(key, names) or f"its parameters: {', '.join(names)}"
            raise ReanimateError(f"--signal {signal.text}: recipe {signal.recipe!r} has no "
                                 f"parameter {key!r} ({hint})")
        if flag is None:
            parameters[key] = text
            continue
        try:
            value = flag.convert(text)
        except Exception:  # noqa: BLE001 - ValueError, ArgumentTypeError
            raise ReanimateError(f"--signal {signal.text}: {key}={text}: expected "
                                 f"{flag.kind}") from None
        if flag.choices is not None and value not in flag.choices:
            raise ReanimateError(f"--signal {signal.text}: {key}={text}: must be one of "
                                 f"{', '.join(map(str, flag.choices))}")
        parameters[key] = value
    output, kind = _single_output(interface, "samples")
    path = "signal/" if kind == "directory" else "signal/catalogue.json"
    return {"program": recipe["program"], "parameters": parameters, "outputs": {output: path}}


def signal_steps(prepared: PreparedAnalysis, signal_ref: str) -> tuple[dict, dict]:
    """(steps, datasets) of the block's signal steps, rewired (see the module)."""
    from reanimate.spec.loader import load_spec
    from reanimate.spec.refs import DatasetRef, FileRef, ParameterRef, StepOutputRef

    loaded = load_spec(prepared.spec_path)
    block = prepared.block
    listed = list(block["steps"])
    steps, datasets = {}, {}
    for name in [n for n in loaded.spec.steps if n in listed]:
        step = loaded.spec.steps[name]
        derived = step.model_dump(mode="json", exclude_none=True,
                                  exclude={"container", "description", "resources", "inputs",
                                           "parameters", "code"})
        parameters = {}
        for key, value in step.parameter_values.items():
            parameters[key] = prepared.parameters.get(value.name) \
                if isinstance(value, ParameterRef) else value
        parameters.update((block.get("parameters") or {}).get(name) or {})
        inputs = {}
        for key, refs in step.input_refs.items():
            if f"steps.{name}.{key}" == block["signal_input"]:
                inputs[key] = signal_ref
                continue
            items = []
            for ref in refs:
                if isinstance(ref, StepOutputRef) and ref.step in listed:
                    items.append(str(ref))
                elif isinstance(ref, StepOutputRef):
                    path = prepared.output(str(ref))
                    if path.is_dir():
                        raise ReanimateError(f"step {name!r} reads the folder {ref}; a signal "
                                             "step can read preserved files only")
                    items.append(f"file:{path}")
                elif isinstance(ref, FileRef):
                    items.append(f"file:{(loaded.base_dir / ref.path).resolve()}")
                elif isinstance(ref, DatasetRef):
                    dataset = loaded.spec.datasets[ref.name].model_dump(mode="json",
                                                                        exclude_none=True)
                    for entry in dataset["files"]:
                        entry["path"] = _absolute(loaded.base_dir, entry["path"])
                    datasets[ref.name] = dataset
                    items.append(str(ref))
            inputs[key] = items if len(items) != 1 else items[0]
        derived.update(parameters=parameters, inputs=inputs)
        if step.code:
            derived["code"] = [str((loaded.base_dir / f).resolve()) for f in step.code]
        if "dask" in derived:
            derived["dask"].update(workers=1, threads_per_worker=1)
        steps[name] = derived
    return steps, datasets


def _absolute(base: Path, path: str) -> str:
    from reanimate.urls import is_remote

    return path if is_remote(path) else str((base / path).resolve())


def patch_step(prepared: PreparedAnalysis, histograms_ref: str) -> tuple[dict, str]:
    """(the patch step, its output flag)."""
    patch = prepared.block["patch"]
    interface = _interface(patch["program"])
    inputs = {"signal_histograms": histograms_ref}
    for flag, ref in (patch.get("inputs") or {}).items():
        inputs[flag] = f"file:{prepared.output(ref)}"
    parameters = dict(patch.get("parameters") or {})
    signal_flag = interface.flag("signal") if interface else None
    if signal_flag is not None and signal_flag.role == "parameter" and "signal" not in parameters:
        parameters["signal"] = prepared.block["signal_sample"]
    output, _ = _single_output(interface, "patch")
    step = {"program": patch["program"], "inputs": inputs, "outputs": {output: PATCH_OUTPUT}}
    if parameters:
        step["parameters"] = parameters
    return step, output


def derived_spec(prepared: PreparedAnalysis, signal: Signal, catalogue: str | None
                 ) -> tuple[dict, str, str]:
    """(the derived spec as data, the patch step's name, its output name).

    `catalogue`: the signal's catalogue JSON when SIGNAL gives events as files (None for a
    recipe or histograms)."""
    steps: dict[str, dict] = {}
    datasets: dict[str, dict] = {}
    taken = set(prepared.block["steps"])
    if signal.kind == "histograms":
        histograms_ref = f"file:{signal.paths[0]}"
    else:
        if signal.kind == "recipe":
            recipe_name = _unique(RECIPE_STEP, taken)
            step = recipe_step(prepared, signal)
            steps[recipe_name] = step
            signal_ref = f"steps.{recipe_name}.{next(iter(step['outputs']))}"
        else:
            signal_ref = f"file:{catalogue}"
        found, datasets = signal_steps(prepared, signal_ref)
        steps.update(found)
        histograms_ref = prepared.block["signal_histograms"]
    patch_name = _unique(PATCH_STEP, taken | set(steps))
    steps[patch_name], output = patch_step(prepared, histograms_ref)
    doc = {
        "spec_version": 1,
        "metadata": {"name": f"{prepared.name}-reinterpret", "version": prepared.version,
                     "description": f"Signal {signal.text} through {prepared.source} "
                                    "(made by reanimate reinterpret)"},
        "steps": steps,
    }
    if datasets:
        doc["datasets"] = datasets
    return doc, patch_name, output


def relative(path: str | Path, start: Path) -> str:
    return os.path.relpath(Path(path).resolve(), start.resolve())
