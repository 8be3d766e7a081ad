"""The campaign file (`specs/campaigns/*.yaml`): a preserved analysis, a grid, signals, limits.

Validated like the spec: strict pydantic models, every problem at once, each located
``FILE:LINE:COL: key.path: message``. Expansion turns a campaign into its points, each keyed by
a content digest (analysis digest + signal + limit settings), which is what the store and
resume key on. ``python -m reanimate.reinterpret.campaign [ROOT]`` writes
``specs/campaign.schema.json`` from these models.
"""

from __future__ import annotations

import hashlib
import json
import string
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from reanimate.errors import SpecError
from reanimate.spec.problems import Problem
from reanimate.spec.yaml_source import YamlSource, YamlSyntaxError, parse_yaml

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
SCHEMA_COPY = Path("specs") / "campaign.schema.json"
MAX_BYTES = 4 * 1024 * 1024


def _label(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"a label value is a number or a string, not {type(value).__name__}")
    return value


Label = Annotated[Any, AfterValidator(_label)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Grid(_Strict):
    """The points: the cartesian product of `axes`, or the explicit labelled `points`."""

    axes: dict[Name, Annotated[list[Label], Field(min_length=1)]] | None = Field(
        None, description="axis -> values; the grid is their cartesian product, in order")
    points: Annotated[list[dict[Name, Label]], Field(min_length=1)] | None = Field(
        None, description="explicit points, each a mapping label -> value")

    @model_validator(mode="after")
    def _one(self) -> Grid:
        if (self.axes is None) == (self.points is None):
            raise ValueError("give exactly one of grid.axes or grid.points")
        if self.points is not None:
            keys = set(self.points[0])
            for point in self.points:
                if set(point) != keys or not point:
                    raise ValueError("every grid point must name the same labels "
                                     f"({', '.join(sorted(keys)) or 'none'})")
        return self

    def labels(self) -> list[dict[str, Any]]:
        if self.points is not None:
            return [dict(p) for p in self.points]
        out: list[dict[str, Any]] = [{}]
        for axis, values in (self.axes or {}).items():
            out = [{**p, axis: v} for p in out for v in values]
        return out

    def names(self) -> list[str]:
        return list(self.axes) if self.axes is not None else list(self.points[0])


class Signal(_Strict):
    """How each point's signal is obtained: exactly one of the four routes."""

    recipe: str | None = Field(None, description='generator recipe, e.g. "zprime:mass={mass}"')
    files: str | None = Field(None, description="file pattern (catalogue or .root files), "
                                                "relative to the campaign file")
    histograms: str | None = Field(None, description="signal histograms pattern (.json/.root)")
    patchset: str | None = Field(None, description="pyhf PatchSet (HEPData), relative to the "
                                                   "campaign file; its patches are the points")
    patches: list[str] | None = Field(None, description="patchset only: these patches alone")

    @model_validator(mode="after")
    def _one(self) -> Signal:
        given = [k for k in ("recipe", "files", "histograms", "patchset") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of signal.recipe, signal.files, "
                             "signal.histograms or signal.patchset")
        if self.patches is not None and not self.patchset:
            raise ValueError("signal.patches selects patches of a signal.patchset")
        return self

    @property
    def route(self) -> str:
        return next(k for k in ("recipe", "files", "histograms", "patchset") if getattr(self, k))

    @property
    def pattern(self) -> str:
        return getattr(self, self.route)


class Limits(_Strict):
    cl: float = Field(0.95, gt=0.0, lt=1.0, description="confidence level")
    mu: float = Field(1.0, gt=0.0, description="signal strength where CLs is evaluated")
    toys: int | None = Field(None, ge=1, description="None: asymptotic formulae")
    seed: int = Field(0, ge=0, description="toys only")
    poi: str | None = Field(None, description="default: the measurement's POI")

    @field_validator("cl", "mu", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value) if isinstance(value, int) else value


class Theory(_Strict):
    cross_section_pb: dict[str, Annotated[float, Field(gt=0.0)]] = Field(
        description="x-axis value -> theory cross section (pb), drawn on the Brazil plot")

    @field_validator("cross_section_pb", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        if isinstance(value, dict):  # YAML reads `500: 30.0` with an int key
            return {_key(k): (float(v) if isinstance(v, int) and not isinstance(v, bool) else v)
                    for k, v in value.items()}
        return value


class Plot(_Strict):
    x: str = Field(description="the label on the x axis")
    y: str | None = Field(None, description="a second label: an exclusion contour in (x, y)")


class Campaign(_Strict):
    """A reinterpretation campaign: one preserved analysis, many signal points."""

    campaign_version: Literal[1]
    name: Name
    description: str = ""
    analysis: str | None = Field(None, description="spec or bundle, relative to this file")
    workspace: str | None = Field(None, description="a pyhf workspace (background only), "
                                                    "relative to this file; patchsets only")
    grid: Grid | None = None
    signal: Signal
    limits: Limits = Limits()
    theory: Theory | None = None
    plot: Plot | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Campaign:
        if (self.analysis is None) == (self.workspace is None):
            raise ValueError("give exactly one of analysis or workspace")
        route = self.signal.route
        if self.workspace is not None and route != "patchset":
            raise ValueError(f"signal.{route} needs an analysis (a spec or bundle); a bare "
                             "workspace takes a signal.patchset")
        if route == "patchset" and self.grid is not None:
            raise ValueError("a patchset's patches are the points: drop grid (select patches "
                             "with signal.patches)")
        if route != "patchset":
            if self.grid is None:
                raise ValueError(f"signal.{route} needs a grid")
            fields = _placeholders(self.signal.pattern)
            names = self.grid.names()
            unknown = sorted(fields - set(names))
            if unknown:
                raise ValueError(f"signal.{route} uses {{{unknown[0]}}}, not a grid label "
                                 f"({', '.join(names)})")
            if self.grid.axes is not None:
                unused = [n for n in names if n not in fields]
                if unused:
                    raise ValueError(f"grid axis {unused[0]!r} is not used by signal.{route}: "
                                     "its points would all be the same computation")
        return self


def _key(value: Any) -> str:
    """A label value as text: 500, 500.0 and "500" all read "500"."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _placeholders(pattern: str) -> set[str]:
    try:
        return {f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None}
    except ValueError as exc:
        raise ValueError(f"bad placeholder in {pattern!r}: {exc}") from None


def expand(pattern: str, labels: dict[str, Any]) -> str:
    return pattern.format_map({k: _key(v) for k, v in labels.items()})


def signal_paths(campaign: Campaign, labels: dict[str, Any]) -> list[str]:
    """The paths, as the campaign file writes them, that a point's signal reads: its
    signal.files / signal.histograms pattern expanded (comma-separated, any `@xsec` suffix
    dropped), or signal.patchset; none for a recipe."""
    signal = campaign.signal
    if signal.route == "patchset":
        return [signal.patchset]
    if signal.route == "recipe":
        return []
    return [p for p in expand(signal.pattern, labels).partition("@")[0].split(",") if p]


def point_name(labels: dict[str, Any]) -> str:
    return ",".join(f"{k}={_key(v)}" for k, v in labels.items())


def digest(payload: Any) -> str:
    """sha256 of canonical JSON: the content key of a point."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


# -- loading, with located problems --------------------------------------------------------------


def load_campaign(path: str | Path) -> tuple[Campaign, Path]:
    """The validated campaign and its file's resolved path; SpecError listing every problem."""
    path = Path(path)
    shown = str(path)
    if not path.is_file():
        raise SpecError([Problem(shown, 0, 0, (), "campaign file not found")])
    data = path.read_bytes()
    if len(data) > MAX_BYTES:
        raise SpecError([Problem(shown, 0, 0, (), f"more than {MAX_BYTES} bytes")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError([Problem(shown, 0, 0, (), "not UTF-8 text")]) from None
    return validate_campaign(campaign_source(text, shown)), path.resolve()


def campaign_source(text: str, shown: str) -> YamlSource:
    """A campaign file's text parsed with positions; SpecError (located) unless a mapping."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecError([Problem(shown, 0, 0, (), f"more than {MAX_BYTES} bytes")])
    try:
        source = parse_yaml(text, shown)
    except YamlSyntaxError as exc:
        raise SpecError([Problem(shown, exc.position.line, exc.position.column, (),
                                 exc.message)]) from None
    if not isinstance(source.data, dict):
        raise SpecError([Problem(shown, 1, 1, (), "a campaign is a mapping (campaign_version: "
                                                  "1, name:, analysis:, grid:, signal:, ...)")])
    return source


def validate_campaign(source: YamlSource, data: dict | None = None) -> Campaign:
    """The campaign model of `data` (default: the source's own), problems located in `source`."""
    try:
        return Campaign.model_validate(source.data if data is None else data)
    except ValidationError as exc:
        raise SpecError(_problems(exc, source)) from None


def _problems(exc: ValidationError, source: YamlSource) -> list[Problem]:
    out = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if isinstance(p, int) or not str(p).startswith(
            ("function-", "[key]")))
        kind, message = error["type"], error["msg"]
        if kind == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}"
        elif kind == "missing":
            message = f"missing required key {loc[-1]!r}"
            loc_at = loc[:-1]
        elif kind == "value_error":
            message = str(error.get("ctx", {}).get("error", message))
        else:
            given = error.get("input")
            shown = type(given).__name__ if isinstance(given, dict | list) else repr(given)
            message = f"{message[0].lower()}{message[1:]}, got {shown}"
        pos = source.position(loc_at if kind == "missing" else loc)
        out.append(Problem(source.path, pos.line, pos.column, loc, message))
    return sorted(set(out), key=lambda p: (p.line, p.column, p.message))


def schema_text() -> str:
    return json.dumps(Campaign.model_json_schema(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write specs/campaign.schema.json (run from the repository root, or give it as argv[0])."""
    from reanimate.atomic import write_text

    args = sys.argv[1:] if argv is None else argv
    target = (Path(args[0]) if args else Path.cwd()) / SCHEMA_COPY
    write_text(target, schema_text())
    print(f"wrote {target}", file=sys.stderr)
    return 0



if __name__ == "__main__":
    sys.exit(main())
