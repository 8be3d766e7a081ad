"""The sample catalogue: the AGC ``nanoaod_inputs.json`` format, extended with sha256 and xsec.

Format (JSON, keys sorted, 2-space indent, trailing newline)::

    {process: {variation: {"nevts_total": int, "xsec_pb": float,
                           "files": [{"path": str, "nevts": int, "sha256": str | null}]}}}

``path`` is relative to the directory holding the catalogue (or an ``https://`` / ``root://``
URL); ``sha256`` is null only for remote files. ``nevts_total`` is the sum of the files'
``nevts``: the N of the AGC weight ``xsec_pb · L / N``. ``xsec_pb`` is the cross section of the
sample *as generated* (for filtered synthetic samples: AGC cross section × filter efficiency,
see docs/samples.md), so every consumer weights with the catalogue value, never a table of its
own.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from reanimate.errors import DigestMismatch, ReanimateError

#: AGC cross sections (agc-analysis.md §5), used when importing the AGC's own catalogue.
AGC_XSEC_PB = {
    "ttbar": 729.84,
    "single_top_s_chan": 3.2944,
    "single_top_t_chan": 234.7937,
    "single_top_tW": 75.842,
    "wjets": 15487.164,
}
REMOTE_PREFIXES = ("https://", "http://", "root://")


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    nevts: int = Field(ge=0)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class SampleEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nevts_total: int = Field(ge=0)
    xsec_pb: float = Field(gt=0)
    files: list[FileEntry]


class Catalogue(RootModel[dict[str, dict[str, SampleEntry]]]):
    def samples(self):
        """(process, variation, entry) in catalogue order."""
        for process, variations in self.root.items():
            for variation, entry in variations.items():
                yield process, variation, entry


def is_remote(path: str) -> bool:
    return path.startswith(REMOTE_PREFIXES)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve(catalogue_path: str | Path, file_path: str) -> str:
    """The path to open for a catalogue entry: URLs as they are, local paths from the catalogue."""
    if is_remote(file_path):
        return file_path
    return os.path.normpath(Path(catalogue_path).resolve().parent / file_path)


def load_catalogue(path: str | Path) -> Catalogue:
    try:
        data = json.loads(Path(path).read_text())
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
    Path(path).write_text(dumps(catalogue))


def verify_catalogue(path: str | Path) -> Catalogue:
    """Load a catalogue and check the sha256 of every local file; raise DigestMismatch."""
    catalogue = load_catalogue(path)
    for process, variation, entry in catalogue.samples():
        for f in entry.files:
            if f.sha256 is None or is_remote(f.path):
                continue
            local = resolve(path, f.path)
            if not os.path.exists(local):
                raise ReanimateError(
                    f"{local}: listed in {path} ({process}.{variation}) but missing"
                )
            actual = sha256_file(local)
            if actual != f.sha256:
                raise DigestMismatch(
                    f"{local}: sha256 {actual} differs from {f.sha256} pinned in {path}"
                )
    return catalogue


def _check_remote_support(path: str) -> None:
    if path.startswith("root://") and importlib.util.find_spec("fsspec_xrootd") is None:
        raise ReanimateError(
            f"{path}: root:// inputs need the fsspec-xrootd package (pip install fsspec-xrootd)"
        )


def import_agc(
    agc_json: str | Path, out: str | Path, max_files_per_sample: int | None = None
) -> Catalogue:
    """Turn the AGC's ``nanoaod_inputs.json`` into our catalogue written at ``out``.

    Local files (relative paths are taken from the AGC file's directory) are opened through
    :func:`reanimate.datasets.reading.open_events_tree`, so a file that is not a NanoAOD
    ``Events`` tree is refused here; their entries and sha256 are computed. Remote files keep
    their URL and the AGC's ``nevts`` with ``sha256`` null. With ``max_files_per_sample`` only the
    first N files of each sample are kept and ``nevts_total`` is the sum over the kept files.
    """
    from reanimate.datasets.reading import num_entries

    agc_json, out = Path(agc_json), Path(out)
    try:
        data = json.loads(agc_json.read_text())
    except FileNotFoundError:
        raise ReanimateError(f"{agc_json}: not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReanimateError(f"{agc_json}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ReanimateError(f"{agc_json}: expected {{process: {{variation: {{files: [...]}}}}}}")
    out_dir = out.resolve().parent
    result: dict[str, dict[str, SampleEntry]] = {}
    for process, variations in data.items():
        if process not in AGC_XSEC_PB:
            known = ", ".join(AGC_XSEC_PB)
            raise ReanimateError(f"{agc_json}: unknown process {process!r} (known: {known})")
        for variation, sample in variations.items():
            where = f"{agc_json}: {process}.{variation}"
            files = sample.get("files") if isinstance(sample, dict) else None
            if not isinstance(files, list):
                raise ReanimateError(f"{where}: missing 'files' list")
            if max_files_per_sample is not None:
                files = files[:max_files_per_sample]
            entries = []
            for item in files:
                if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                    raise ReanimateError(f"{where}: every file needs a 'path'")
                path = item["path"]
                if is_remote(path):
                    _check_remote_support(path)
                    if not isinstance(item.get("nevts"), int):
                        raise ReanimateError(f"{where}: remote file {path} needs 'nevts'")
                    entries.append(FileEntry(path=path, nevts=item["nevts"]))
                    continue
                local = (agc_json.resolve().parent / path).resolve()
                if not local.exists():
                    raise ReanimateError(f"{where}: file {local} not found")
                nevts = num_entries(local)
                if item.get("nevts") not in (None, nevts):
                    raise ReanimateError(
                        f"{where}: {local} has {nevts} entries, the AGC file says {item['nevts']}"
                    )
                entries.append(
                    FileEntry(
                        path=os.path.relpath(local, out_dir), nevts=nevts, sha256=sha256_file(local)
                    )
                )
            result.setdefault(process, {})[variation] = SampleEntry(
                nevts_total=sum(e.nevts for e in entries),
                xsec_pb=AGC_XSEC_PB[process],
                files=entries,
            )
    catalogue = Catalogue(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_catalogue(catalogue, out)
    return catalogue
