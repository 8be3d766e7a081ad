"""The reference syntax of a spec, parsed in one place into typed objects.

* an input is `datasets.NAME`, `steps.STEP.OUTPUT` or `file:PATH` (or a list of them);
* a step parameter may be `${parameters.NAME}`, a global parameter;
* a `command:` argument may hold `{inputs.X}`, `{outputs.Y}` and `{parameters.Z}` placeholders.

Both the whole-spec checks (on raw YAML data) and the engines use these parsers, so no other
module looks at a reference string's prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\.([A-Za-z0-9_-]+)\}")
PARAMETER_REF = re.compile(r"^\$\{parameters\.([A-Za-z0-9_-]+)\}$")
PLACEHOLDER_KINDS = ("inputs", "outputs", "parameters")


@dataclass(frozen=True)
class DatasetRef:
    name: str

    def __str__(self) -> str:
        return f"datasets.{self.name}"


@dataclass(frozen=True)
class StepOutputRef:
    step: str
    output: str

    def __str__(self) -> str:
        return f"steps.{self.step}.{self.output}"


@dataclass(frozen=True)
class FileRef:
    path: str

    def __str__(self) -> str:
        return f"file:{self.path}"


Ref = DatasetRef | StepOutputRef | FileRef


class RefError(ValueError):
    """A string that is not a well-formed reference; str() says what to write instead."""


def parse_ref(text: Any) -> Ref:
    if not isinstance(text, str):
        raise RefError(f"an input must be a reference string, not {type(text).__name__}")
    if text.startswith("datasets."):
        name = text.removeprefix("datasets.")
        if not name or "." in name:
            raise RefError(f"{text!r} is not a dataset reference; write datasets.NAME")
        return DatasetRef(name)
    if text.startswith("steps."):
        parts = text.split(".")
        if len(parts) != 3 or not all(parts[1:]):
            raise RefError(f"{text!r} is not a step output reference; write steps.STEP.OUTPUT")
        return StepOutputRef(parts[1], parts[2])
    if text.startswith("file:"):
        path = text.removeprefix("file:")
        if not path:
            raise RefError("empty file reference; write file:PATH relative to the spec")
        return FileRef(path)
    raise RefError(
        f"{text!r} is not a reference; use datasets.NAME, steps.STEP.OUTPUT or file:PATH"
    )


def as_list(value: Any) -> list:
    """An input's value as a list of its items (one reference or a list of them)."""
    return value if isinstance(value, list) else [value]


def parse_input(value: Any) -> list[Ref]:
    """An input value (a reference or a non-empty list of them) -> its references."""
    items = as_list(value)
    if not items:
        raise RefError("an empty list references nothing")
    return [parse_ref(item) for item in items]


@dataclass(frozen=True)
class ParameterRef:
    """`${parameters.NAME}`: the value of a global parameter."""

    name: str

    def __str__(self) -> str:
        return "${parameters." + self.name + "}"


def parse_parameter(value: Any) -> Any:
    """A step parameter's value: a ParameterRef, or the literal itself.

    A string that starts with `${` but is not a well-formed reference raises RefError.
    """
    if not isinstance(value, str) or not value.startswith("${"):
        return value
    match = PARAMETER_REF.match(value)
    if not match:
        raise RefError(f"malformed parameter reference {value!r}; write ${{parameters.NAME}}")
    return ParameterRef(match.group(1))


def placeholders(arg: str) -> list[tuple[str, str]]:
    """The (kind, name) placeholders of one command argument, in order."""
    return PLACEHOLDER.findall(str(arg))


def whole_placeholder(arg: str) -> tuple[str, str] | None:
    """(kind, name) when the argument is exactly one placeholder, else None."""
    match = PLACEHOLDER.fullmatch(arg)
    return (match.group(1), match.group(2)) if match else None


def substitute(arg: str, value: Any) -> str:
    """`arg` with each placeholder replaced by value(kind, name) (a string)."""
    return PLACEHOLDER.sub(lambda m: value(m.group(1), m.group(2)), arg)
