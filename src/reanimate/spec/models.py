"""Pydantic v2 models of the analysis spec (docs/spec.md; the picture: docs/architecture.md).

Field-level rules live here (types, name patterns, Kubernetes memory strings); rules that need
the whole spec (references, cycles, duplicate outputs) live in spec/checks.py.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

from reanimate.spec.refs import Ref, StepOutputRef, parse_input, parse_parameter, parse_ref

# REANA refuses dots in workflow names; names also become command-line flags and CWL ids.
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]

# Kubernetes quantities as REANA accepts them: 512Mi, 2Gi, 1.5Gi, 4000000000.
MEMORY_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei)?$")


def _memory(value: str) -> str:
    if not MEMORY_PATTERN.match(value):
        raise ValueError(
            f"memory {value!r} is not a Kubernetes quantity REANA accepts "
            "(use binary units such as 512Mi or 2Gi, not 2GB or 2G)"
        )
    return value


Memory = Annotated[str, AfterValidator(_memory)]


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"a parameter must be a string, number or boolean, not {type(value).__name__}")


Scalar = Annotated[Any, AfterValidator(_scalar)]


def _not_bool(value: Any) -> Any:
    # a bool is an int to Python (and to pydantic's lax mode): `workers: true` is no number
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r} (YAML reads true/false/yes/no/on/off "
                         "as a boolean)")
    return value


def _numbers(*fields: str):
    """A before-validator refusing a boolean for these numeric fields (schema unchanged)."""
    return field_validator(*fields, mode="before")(lambda cls, value: _not_bool(value))


def _spec_version(value: Any) -> Any:
    if isinstance(value, bool | float):
        raise ValueError(f"spec_version is the integer 1, got {value!r} (write spec_version: 1)")
    return value


def _reference(value: Any) -> Any:
    parse_input(value)  # raises RefError (a ValueError) with what to write instead
    return value


Reference = Annotated[Any, AfterValidator(_reference)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Author(Strict):
    name: str
    affiliation: str | None = None
    orcid: str | None = None


def _version_text(value: Any) -> Any:
    # `version: 2` is an int to YAML and reads back as written; `version: 1.10` is a float,
    # which YAML reads as 1.1: refuse it rather than store a version nobody wrote.
    if isinstance(value, float):
        raise ValueError(f"version {value!r} is a number to YAML, which drops trailing zeros "
                         "(1.10 reads as 1.1) (quote it: version: \"1.10\")")
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Metadata(Strict):
    name: Name = Field(description="Analysis name; no dots (REANA refuses them).")
    version: Annotated[str, BeforeValidator(_version_text)]
    title: str | None = None
    description: str | None = None
    authors: list[Author] = Field(default_factory=list)
    licence: str | None = None
    references: list[str] = Field(default_factory=list)


class Container(Strict):
    image: str = Field(description="Image reference with an explicit tag, e.g. reanimate/agc:0.1.0")
    build: str | None = Field(None, description="Build context, relative to the spec file.")
    digest: str | None = Field(None, pattern=r"^sha256:[0-9a-f]{64}$")


class DatasetFile(Strict):
    path: str = Field(description="Local path (relative to the spec), https:// or root:// URL.")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    entries: int | None = Field(None, ge=0)
    _entries = _numbers("entries")


class Dataset(Strict):
    description: str | None = None
    process: str | None = None
    variation: str | None = None
    xsec_pb: float | None = Field(None, gt=0, description="Cross section in pb.")
    files: list[DatasetFile] = Field(min_length=1)
    _numbers_ = _numbers("xsec_pb")


class Resources(Strict):
    memory: Memory | None = None
    cpus: float | None = Field(None, gt=0)
    timeout_seconds: int | None = Field(None, gt=0)
    _numbers_ = _numbers("cpus", "timeout_seconds")


class DaskBlock(Strict):
    workers: int = Field(2, ge=1, le=20, description="REANA allows at most 20 workers.")
    threads_per_worker: int = Field(1, ge=1)
    _numbers_ = _numbers("workers", "threads_per_worker")
    memory_per_worker: Memory = "2Gi"
    image: str | None = Field(None, description="Worker image (REANA); default: the step's.")


class MlflowBlock(Strict):
    experiment: str
    registered_model: str | None = None


class Step(Strict):
    description: str | None = None
    program: str | None = Field(
        None, description="Python module run as `python -m MODULE --NAME VALUE ...`."
    )
    command: list[str] | None = Field(
        None,
        min_length=1,
        description="argv with {inputs.X}, {outputs.Y} and {parameters.Z} placeholders.",
    )
    container: str | None = None
    inputs: dict[Name, Reference] = Field(default_factory=dict)
    parameters: dict[Name, Scalar] = Field(default_factory=dict)
    outputs: dict[Name, str] = Field(default_factory=dict)
    resources: Resources | None = None
    dask: DaskBlock | None = None
    mlflow: MlflowBlock | None = None
    code: list[str] = Field(
        default_factory=list,
        description="Files (relative to the spec) a command step uses without naming them as "
        "inputs, e.g. modules its script imports: their content is part of its cache key.",
    )
    _input_refs: dict[str, list[Ref]] = PrivateAttr(default_factory=dict)
    _parameter_values: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _parse_references(self) -> Step:
        # parsed once here; the engines read the typed references, never the strings
        self._input_refs = {k: parse_input(v) for k, v in self.inputs.items()}
        self._parameter_values = {k: parse_parameter(v) for k, v in self.parameters.items()}
        return self

    @property
    def input_refs(self) -> dict[str, list[Ref]]:
        """Input name -> its references (datasets, step outputs, files), in spec order."""
        return self._input_refs

    @property
    def parameter_values(self) -> dict[str, Any]:
        """Parameter name -> a literal value or a ParameterRef to a global parameter."""
        return self._parameter_values

    def upstream(self) -> list[str]:
        """Names of the steps whose outputs this step reads (in order, unique)."""
        found: list[str] = []
        for refs in self._input_refs.values():
            for ref in refs:
                if isinstance(ref, StepOutputRef) and ref.step not in found:
                    found.append(ref.step)
        return found


class Statistics(Strict):
    hs3: str = Field(description="Reference to the HS3 JSON output, e.g. steps.statmodel.hs3")
    pyhf: str | None = None
    poi: str
    measurement: str | None = None

    def output_ref(self, which: str = "hs3") -> StepOutputRef | None:
        """The step output holding the HS3 (or pyhf) model, parsed."""
        value = getattr(self, which)
        ref = parse_ref(value) if value else None
        return ref if isinstance(ref, StepOutputRef) else None


class ReinterpretationPatch(Strict):
    program: str = Field(description="Python module: --signal_histograms and the preserved "
                         "outputs in, the RFC 6902 JSON Patch of the workspace out.")
    inputs: dict[Name, str] = Field(
        default_factory=dict,
        description="Flag of the program -> preserved output it reads (steps.STEP.OUTPUT).")
    parameters: dict[Name, Scalar] = Field(default_factory=dict)


class Recipe(Strict):
    description: str | None = None
    program: str = Field(description="Python module writing a signal sample (its catalogue).")
    parameters: dict[Name, Scalar] = Field(
        default_factory=dict, description="Defaults; `--signal RECIPE:key=value,...` overrides.")


class Reinterpretation(Strict):
    description: str | None = None
    steps: list[Name] = Field(min_length=1,
                              description="Signal-dependent steps, rerun on the signal alone.")
    signal_sample: str = Field(description="Sample of the statistical model the signal fills.")
    mode: Literal["add", "replace"] = "add"
    signal_input: str | None = Field(
        None, description="steps.STEP.INPUT: where the signal's events enter.")
    parameters: dict[Name, dict[Name, Scalar]] = Field(
        default_factory=dict, description="Parameter overrides of the signal steps.")
    signal_histograms: str | None = Field(
        None, description="steps.STEP.OUTPUT of a signal step holding the signal histograms.")
    patch: ReinterpretationPatch | None = None
    workspace: str | None = Field(
        None, description="steps.STEP.OUTPUT: the preserved pyhf workspace the patch applies to.")
    recipes: dict[Name, Recipe] = Field(default_factory=dict)
    poi: str | None = Field(None, description="Parameter of interest of the patched model.")
    confidence_level: float = Field(0.95, gt=0, lt=1)
    _numbers_ = _numbers("confidence_level")


class Spec(Strict):
    spec_version: Annotated[Literal[1], BeforeValidator(_spec_version)] = Field(
        1, description="Version of the spec format.")
    metadata: Metadata
    containers: dict[Name, Container] = Field(default_factory=dict)
    parameters: dict[Name, Scalar] = Field(default_factory=dict)
    datasets: dict[Name, Dataset] = Field(default_factory=dict)
    steps: dict[Name, Step] = Field(min_length=1)
    statistics: Statistics | None = None
    reinterpretation: Reinterpretation | None = None
