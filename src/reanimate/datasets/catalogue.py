"""The sample catalogue: the AGC ``nanoaod_inputs.json`` format, extended with sha256 and xsec.

Format (JSON, keys sorted, 2-space indent, trailing newline)::

    {process: {variation: {"nevts_total": int, "xsec_pb": float,
                           "files": [{"path": str, "nevts": int, "sha256": str | null}]}}}

``path`` is relative to the directory holding the catalogue (or a remote URL,
:data:`reanimate.urls.REMOTE_PREFIXES`); ``sha256`` is null only for remote files. A remote file
with a sha256 is fetched into the input cache and checked before it is read; one without is read
in place (docs/samples.md, "Remote inputs").
``nevts_total`` is the sum of the files' ``nevts``: the N of the AGC weight
``xsec_pb · L / N``. ``xsec_pb`` is the cross section of the sample *as generated* (for filtered
synthetic samples: AGC cross section × filter efficiency, see docs/samples.md), so every
consumer weights with the catalogue value, never a table of its own.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from reanimate.atomic import write_text
from reanimate.errors import DigestMismatch, ReanimateError
from reanimate.hashing import sha256_files
from reanimate.urls import is_remote


class _NonFinite:
    """What :func:`loads_strict` puts where the JSON text has NaN, Infinity or 1e999."""

    def __init__(self, token: str) -> None:
        self.token = token


def _parse_float(text: str):
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def _find_non_finite(value, where: str = "") -> tuple[str, str] | None:
    if isinstance(value, _NonFinite):
        return where, value.token
    if isinstance(value, dict):
        items = ((f"{where}.{k}" if where else str(k), v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for loc, item in items:
        found = _find_non_finite(item, loc)
        if found:
            return found
    return None


def loads_strict(text: str, source: str | Path) -> Any:
    """``json.loads`` that refuses non-finite numbers.

    Python's json accepts ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON) and reads ``1e999``
    as infinity; a cross section or event count like that would give NaN or infinite weights, so
    each is refused with one line naming ``source`` and where it is (``wjets.nominal.xsec_pb``).
    Malformed JSON raises :class:`json.JSONDecodeError` for the caller to word.
    """
    data = json.loads(text, parse_constant=_NonFinite, parse_float=_parse_float)
    found = _find_non_finite(data)
    if found:
        where, token = found
        raise ReanimateError(f"{source}: {where or 'top level'}: {token} is not a finite number")
    return data


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    path: str
    nevts: int = Field(ge=0)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class SampleEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    nevts_total: int = Field(ge=0)
    xsec_pb: float = Field(gt=0)
    files: list[FileEntry]


class Catalogue(RootModel[dict[str, dict[str, SampleEntry]]]):
    def samples(self):
        """(process, variation, entry) in catalogue order."""
        for process, variations in self.root.items():
            for variation, entry in variations.items():
                yield process, variation, entry


def resolve(catalogue_path: str | Path, file_path: str) -> str:
    """The path to open for a catalogue entry: URLs as they are, local paths from the catalogue."""
    if is_remote(file_path):
        return file_path
    return os.path.normpath(Path(catalogue_path).resolve().parent / file_path)


def load_catalogue(path: str | Path) -> Catalogue:
    try:
        data = loads_strict(Path(path).read_text(), path)
    except FileNotFoundError:
        raise ReanimateError(f"{path}: catalogue not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReanimateError(f"{path}: not a JSON catalogue ({exc})") from None
    try:
        catalogue = Catalogue.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ReanimateError(f"{path}: {where}: {first['msg']}") from None
    for process, variation, entry in catalogue.samples():
        total = sum(f.nevts for f in entry.files)
        if total != entry.nevts_total:
            raise ReanimateError(
                f"{path}: {process}.{variation}: nevts_total {entry.nevts_total} differs from "
                f"the sum of the files' nevts {total}"
            )
    return catalogue


def dumps(catalogue: Catalogue) -> str:
    return json.dumps(catalogue.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def write_catalogue(catalogue: Catalogue, path: str | Path) -> None:
    """Write atomically (a reader never sees half a catalogue); creates the folder."""
    write_text(path, dumps(catalogue))


def verify_catalogue(path: str | Path) -> Catalogue:
    """Load a catalogue and check the sha256 of every local file; raise DigestMismatch."""
    catalogue = load_catalogue(path)
    local_files = [(process, variation, f, resolve(path, f.path))
                   for process, variation, entry in catalogue.samples() for f in entry.files
                   if f.sha256 is not None and not is_remote(f.path)]
    digests = sha256_files([local for *_, local in local_files])
    for process, variation, f, local in local_files:
        actual = digests[local]
        if isinstance(actual, OSError):
            if isinstance(actual, FileNotFoundError):
                raise ReanimateError(
                    f"{local}: listed in {path} ({process}.{variation}) but missing"
                )
            raise ReanimateError(f"{local}: cannot read ({actual.strerror or actual})")
        if actual != f.sha256:
            raise DigestMismatch(
                f"{local}: sha256 {actual} differs from {f.sha256} pinned in {path}"
            )
    return catalogue
