"""The command line of a step, shared by every engine.

A program step runs as `python -m MODULE --INPUT PATH... --PARAM VALUE --OUTPUT PATH`, flag names
being exactly the spec's names. A step with a `dask:` block also gets --dask_workers,
--dask_threads_per_worker and --dask_memory_per_worker; one with an `mlflow:` block gets
--mlflow_experiment and --mlflow_registered_model. A command step substitutes
{inputs.X}, {outputs.Y} and {parameters.Z} in its argv.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from reanimate.errors import ReanimateError
from reanimate.spec.checks import PARAMETER_REF, PLACEHOLDER
from reanimate.spec.models import Spec, Step


def render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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
            return float(text)
    except ValueError:
        raise ReanimateError(
            f"--set {name}={text}: expected {type(declared).__name__}"
        ) from None
    return text


def step_parameters(step: Step, globals_: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in step.parameters.items():
        match = PARAMETER_REF.match(value) if isinstance(value, str) else None
        out[name] = globals_[match.group(1)] if match else value
    return out


def block_flags(step: Step) -> list[tuple[str, str]]:
    """Flags every engine adds to a program step from its dask: and mlflow: blocks."""
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


def step_argv(
    step: Step,
    inputs: dict[str, list[str]],
    outputs: dict[str, str],
    parameters: dict[str, Any],
    python: str = sys.executable,
) -> list[str]:
    if step.program:
        argv = [python, "-m", step.program]
        for name, paths in inputs.items():
            argv += [f"--{name}", *paths]
        for name, value in parameters.items():
            if value is not None:
                argv += [f"--{name}", render(value)]
        for name, path in outputs.items():
            argv += [f"--{name}", path]
        for flag, value in block_flags(step):
            argv += [flag, value]
        return argv
    tables = {
        "inputs": {k: v for k, v in inputs.items()},
        "outputs": {k: [v] for k, v in outputs.items()},
        "parameters": {k: [render(v)] for k, v in parameters.items()},
    }
    argv = []
    for index, arg in enumerate(step.command or []):
        whole = re.fullmatch(PLACEHOLDER, arg)
        if whole:
            argv += tables[whole.group(1)][whole.group(2)]
        else:
            argv.append(PLACEHOLDER.sub(lambda m: " ".join(tables[m.group(1)][m.group(2)]), arg))
        if index == 0 and argv and argv[0] in ("python", "python3"):
            argv[0] = python
    return argv
