"""Load a spec file: YAML with positions -> pydantic -> whole-spec checks, every problem at once."""

from __future__ import annotations

import stat
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from reanimate.errors import SpecError
from reanimate.spec.checks import check_spec
from reanimate.spec.models import NAME_PATTERN, Spec
from reanimate.spec.problems import Problem, did_you_mean
from reanimate.spec.yaml_source import Loc, YamlSource, YamlSyntaxError, parse_yaml

TYPE_WORDS = {
    "int_parsing": "an integer", "int_type": "an integer", "float_parsing": "a number",
    "float_type": "a number", "bool_parsing": "a boolean", "bool_type": "a boolean",
    "string_type": "a string", "dict_type": "a mapping", "model_type": "a mapping",
    "model_attributes_type": "a mapping", "list_type": "a list",
}


@dataclass
class LoadedSpec:
    spec: Spec
    source: YamlSource
    path: Path

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def validate_text(text: str, path: str = "<string>") -> tuple[Spec | None, list[Problem]]:
    """Validate spec text; return the model (None if invalid) and every problem found."""
    spec, problems, _ = _validate(text, path)
    return spec, problems


def _validate(text: str, path: str) -> tuple[Spec | None, list[Problem], YamlSource | None]:
    """validate_text, also returning the parsed source (the text is parsed once)."""
    try:
        source = parse_yaml(text, path)
    except YamlSyntaxError as exc:
        return None, [Problem(path, exc.position.line, exc.position.column, (), exc.message)], None
    if not isinstance(source.data, dict):
        kind = "empty" if source.data is None else type(source.data).__name__
        return None, [Problem(path, 1, 1, (), f"a spec must be a mapping, this document is {kind}",
                              "start with metadata:, steps:, ...")], source
    problems = [_problem(source, loc, msg, hint) for loc, msg, hint in check_spec(source.data)]
    try:
        spec = Spec.model_validate(source.data)
    except ValidationError as exc:
        spec = None
        problems += _translate(exc, source)
    return (None if problems else spec), _sorted(problems), source


#: Larger than any real spec (the flagship is 5 KiB); refused before it is read.
MAX_SPEC_BYTES = 8 * 1024 * 1024


def read_spec_text(path: Path) -> str:
    """The text of a spec file; SpecError (one line, FILE:LINE:COL) when it cannot be read.

    Only a regular file is read (a FIFO would block, /dev/zero never end), at most
    MAX_SPEC_BYTES; a byte that is not UTF-8 is reported at its line and column.
    """
    def refuse(message: str, line: int = 0, column: int = 0) -> SpecError:
        return SpecError([Problem(str(path), line, column, (), message)])

    try:
        info = path.stat()
    except FileNotFoundError:
        raise refuse("file not found") from None
    except OSError as exc:  # a symlink loop, a name too long, a component that is a file
        raise refuse(f"cannot read the spec: {_os_reason(exc)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise refuse("cannot read the spec: it is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise refuse("cannot read the spec: not a regular file")
    if info.st_size > MAX_SPEC_BYTES:
        raise refuse(f"cannot read the spec: {info.st_size} bytes, more than a spec may have "
                     f"({MAX_SPEC_BYTES})")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise refuse(f"cannot read the spec: {_os_reason(exc)}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise refuse(f"cannot read the spec: more than {MAX_SPEC_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise refuse(f"byte 0x{data[exc.start]:02x} is not UTF-8 (a spec is UTF-8 text)",
                     line, column) from None


def _os_reason(exc: OSError) -> str:
    return exc.strerror or " ".join(str(exc).split()) or type(exc).__name__


def load_spec(path: str | Path) -> LoadedSpec:
    """Load and validate a spec file; raise SpecError listing every problem."""
    path = Path(path)
    text = read_spec_text(path)
    spec, problems, source = _validate(text, str(path))
    if problems:
        raise SpecError(problems)
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:  # unreachable once read, but never a traceback
        raise SpecError([Problem(str(path), 0, 0, (), f"cannot resolve the spec path: {exc}")]) \
            from None
    return LoadedSpec(spec=spec, source=source, path=resolved)


def _problem(source: YamlSource, loc: Loc, message: str, hint: str | None) -> Problem:
    pos = source.position(loc)
    return Problem(source.path, pos.line, pos.column, tuple(loc), message, hint)


def _sorted(problems: list[Problem]) -> list[Problem]:
    unique = {(p.line, p.column, p.key_path, p.message): p for p in problems}
    return [unique[k] for k in sorted(unique)]


def _translate(exc: ValidationError, source: YamlSource) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = _data_loc(error["loc"], source.data)
        kind = error["type"]
        if kind == "extra_forbidden":
            key = loc[-1]
            allowed = _allowed_keys(loc[:-1])
            problems.append(_problem(source, loc, f"unknown key {key!r}",
                                     did_you_mean(str(key), allowed) if allowed else None))
        elif kind == "missing":
            parent = loc[:-1]
            pos = source.position(parent, prefer_key=True)
            problems.append(Problem(source.path, pos.line, pos.column, tuple(loc),
                                    f"missing required key {loc[-1]!r}", None))
        else:
            message = _message(error)
            problems.append(_problem(source, loc, message, None))
    return problems


def _message(error: dict[str, Any]) -> str:
    kind, given = error["type"], error.get("input")
    shown = repr(given) if not isinstance(given, dict | list) else type(given).__name__
    if kind in TYPE_WORDS:
        return f"expected {TYPE_WORDS[kind]}, got {shown}"
    if kind == "literal_error":
        return f"{error['msg'][0].lower()}{error['msg'][1:]}, got {shown}"
    if kind == "string_pattern_mismatch":
        if error.get("ctx", {}).get("pattern") == NAME_PATTERN:
            return f"{given!r} is not a valid name: letters, digits, '_' and '-' only, " \
                   "starting with a letter (no dots: REANA refuses them)"
        if "{64}" in error.get("ctx", {}).get("pattern", ""):
            return f"{given!r} is not a sha256 digest (64 lowercase hex digits)"
        return f"{given!r} does not match the pattern {error['ctx']['pattern']}"
    if kind == "value_error":
        return str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
    msg = error["msg"]
    return f"{msg[0].lower()}{msg[1:]}" + (f", got {shown}" if kind != "too_short" else "")


def _data_loc(loc: tuple, data: Any) -> Loc:
    """Drop the pydantic-internal parts of a loc (union member tags) that are not data keys."""
    out: list = []
    node = data
    for part in loc:
        if part == "[key]":  # the error is about a mapping key itself: point at the key
            break
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict | list):
            out.append(part)  # a missing key: keep it, it names what is missing
            node = None
        # else: an internal tag such as 'function-after[...]': skip it
    return tuple(out)


def _allowed_keys(loc: Loc) -> list[str]:
    """Field names of the model that sits at `loc` in the spec, for "did you mean"."""
    annotation: Any = Spec
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        else:
            origin = typing.get_origin(annotation)
            args = typing.get_args(annotation)
            if origin in (dict, list) and args:
                annotation = args[-1]
            else:
                return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation
        else:
            return annotation
