"""The AGC's own catalogue (``nanoaod_inputs.json``) and cross sections, imported into ours.

Also the one list of the sample variations the histogram stage knows (:data:`VARIATIONS`,
:func:`variation_problem`), so the importer refuses exactly what the stage would refuse.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from pydantic import ValidationError

from reanimate.datasets.catalogue import (
    Catalogue,
    FileEntry,
    SampleEntry,
    loads_strict,
    write_catalogue,
)
from reanimate.errors import ReanimateError
from reanimate.hashing import sha256_file
from reanimate.urls import is_remote

#: AGC cross sections (docs/agc-analysis.md §5), used when importing the AGC's own catalogue.
AGC_XSEC_PB = {
    "ttbar": 729.84,
    "single_top_s_chan": 3.2944,
    "single_top_t_chan": 234.7937,
    "single_top_tW": 75.842,
    "wjets": 15487.164,
}

#: The catalogue variations the histogram stage knows: nominal for every process, the four
#: modelling samples for ttbar only (docs/agc-analysis.md §4).
VARIATIONS: tuple[str, ...] = ("nominal", "scaledown", "scaleup", "ME_var", "PS_var")


def variation_problem(process: str, variation: str) -> str | None:
    """Why the histogram stage refuses ``process.variation``; None when it accepts it."""
    if variation not in VARIATIONS or (variation != "nominal" and process != "ttbar"):
        return (
            f"unknown variation (expected nominal, or for ttbar one of "
            f"{', '.join(VARIATIONS[1:])})"
        )
    return None


def stage_branches() -> tuple[str, ...]:
    """The Events branches the AGC histogram stage reads (selection, and the ML inference)."""
    from reanimate.analyses.agc.ml.selection import INFERENCE_BRANCHES
    from reanimate.analyses.agc.objects import BRANCHES

    return tuple(dict.fromkeys((*BRANCHES, *INFERENCE_BRANCHES)))


def _check_remote_support(path: str) -> None:
    if path.startswith("root://") and importlib.util.find_spec("fsspec_xrootd") is None:
        raise ReanimateError(
            f"{path}: root:// inputs need the fsspec-xrootd package (pip install fsspec-xrootd)"
        )


def import_agc(
    agc_json: str | Path, out: str | Path, max_files_per_sample: int | None = None
) -> Catalogue:
    """Turn the AGC's ``nanoaod_inputs.json`` into our catalogue written at ``out``.

    Local files (relative paths are taken from the AGC file's directory) are opened with the
    validated reader (:mod:`reanimate.datasets.reading`): a file that is not ROOT, is truncated,
    has no ``Events`` tree or lacks (or mistypes) a branch the histogram stage reads
    (:func:`stage_branches`) is refused; their entries and sha256 are computed. Remote files
    keep their URL and the AGC's ``nevts`` with ``sha256`` null. With ``max_files_per_sample``
    only the first N files of each sample are kept and ``nevts_total`` is the sum over the kept
    files. Refused too, each with one line: a variation the stage does not know, a file listed
    twice (same path, or same bytes), ``--out`` equal to the input or a directory. Nothing is
    written unless every file passes.
    """
    from reanimate.datasets.reading import check_branches, open_events_tree

    agc_json, out = Path(agc_json), Path(out)
    if max_files_per_sample is not None and max_files_per_sample < 1:
        raise ReanimateError(f"--max-files-per-sample must be >= 1, got {max_files_per_sample}")
    _check_out(agc_json, out)
    try:
        data = loads_strict(agc_json.read_text(), agc_json)
    except FileNotFoundError:
        raise ReanimateError(f"{agc_json}: not found") from None
    except IsADirectoryError:
        raise ReanimateError(f"{agc_json}: is a directory, not the AGC's JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReanimateError(f"{agc_json}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ReanimateError(f"{agc_json}: expected {{process: {{variation: {{files: [...]}}}}}}")
    if not data:
        raise ReanimateError(f"{agc_json}: no samples")
    branches = stage_branches()
    out_dir = out.resolve().parent
    seen: dict[str, str] = {}  # resolved path or URL -> where it was listed
    seen_sha: dict[str, str] = {}  # sha256 -> where that content was listed
    result: dict[str, dict[str, SampleEntry]] = {}
    for process, variations in data.items():
        if process not in AGC_XSEC_PB:
            known = ", ".join(AGC_XSEC_PB)
            raise ReanimateError(f"{agc_json}: unknown process {process!r} (known: {known})")
        if not isinstance(variations, dict):
            raise ReanimateError(
                f"{agc_json}: {process}: expected an object {{variation: {{files: [...]}}}}, "
                f"got {_kind(variations)}"
            )
        if not variations:
            raise ReanimateError(f"{agc_json}: {process}: no variations")
        for variation, sample in variations.items():
            where = f"{agc_json}: {process}.{variation}"
            problem = variation_problem(process, variation)
            if problem:
                raise ReanimateError(f"{where}: {problem}")
            files = sample.get("files") if isinstance(sample, dict) else None
            if not isinstance(files, list):
                raise ReanimateError(f"{where}: missing 'files' list")
            if not files:
                raise ReanimateError(f"{where}: no files")
            if max_files_per_sample is not None:
                files = files[:max_files_per_sample]
            entries = []
            for i, item in enumerate(files):
                at = f"{process}.{variation}.files[{i}]"
                if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                    raise ReanimateError(f"{agc_json}: {at}: every file needs a 'path'")
                path = item["path"]
                nevts = item.get("nevts")
                if nevts is not None and (
                    not isinstance(nevts, int) or isinstance(nevts, bool) or nevts < 0
                ):
                    raise ReanimateError(
                        f"{agc_json}: {at}: 'nevts' must be a non-negative integer, got "
                        f"{json.dumps(nevts)}"
                    )
                if is_remote(path):
                    _check_remote_support(path)
                    _once(seen, path, at, agc_json)
                    if nevts is None:
                        raise ReanimateError(f"{agc_json}: {at}: remote file {path} needs 'nevts'")
                    entries.append(_entry(agc_json, at, path=path, nevts=nevts))
                    continue
                local = (agc_json.resolve().parent / path).resolve()
                if not local.exists():
                    raise ReanimateError(f"{agc_json}: {at}: file {local} not found")
                if not local.is_file():
                    raise ReanimateError(f"{agc_json}: {at}: {local} is not a file")
                _once(seen, str(local), at, agc_json)
                try:
                    tree = open_events_tree(local)
                    try:
                        check_branches(tree, branches, local)
                        entries_in_file = int(tree.num_entries)
                    finally:
                        tree.file.close()
                except ReanimateError as exc:
                    raise ReanimateError(f"{agc_json}: {at}: {exc}") from None
                if nevts not in (None, entries_in_file):
                    raise ReanimateError(
                        f"{agc_json}: {at}: {local} has {entries_in_file} entries, the AGC file "
                        f"says {nevts}"
                    )
                digest = sha256_file(local)
                if digest in seen_sha:
                    raise ReanimateError(
                        f"{agc_json}: {at}: {local} has the same content (sha256) as the file "
                        f"listed at {seen_sha[digest]}: a file listed twice"
                    )
                seen_sha[digest] = f"{at} ({local})"
                entries.append(_entry(
                    agc_json, at, path=os.path.relpath(local, out_dir), nevts=entries_in_file,
                    sha256=digest,
                ))
            result.setdefault(process, {})[variation] = SampleEntry(
                nevts_total=sum(e.nevts for e in entries),
                xsec_pb=AGC_XSEC_PB[process],
                files=entries,
            )
    catalogue = Catalogue(result)
    try:
        write_catalogue(catalogue, out)
    except OSError as exc:
        raise ReanimateError(f"{out}: cannot write the catalogue ({exc.strerror or exc})") from None
    return catalogue


def _kind(value) -> str:
    return {list: "a list", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _once(seen: dict[str, str], key: str, at: str, agc_json: Path) -> None:
    """Refuse a file listed twice (its events would count twice), naming both places."""
    if key in seen:
        raise ReanimateError(f"{agc_json}: {at}: {key} is also listed at {seen[key]}")
    seen[key] = at


def _entry(agc_json: Path, at: str, **fields) -> FileEntry:
    try:
        return FileEntry(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ReanimateError(f"{agc_json}: {at}: {field}: {first['msg']}") from None


def _check_out(agc_json: Path, out: Path) -> None:
    """``--out`` must be a new or existing file, and not the input."""
    if out.is_dir():
        raise ReanimateError(f"{out}: --out is a directory; name the catalogue JSON file to write")
    same = out.resolve() == agc_json.resolve()
    if not same and out.exists() and agc_json.exists():
        same = os.path.samefile(out, agc_json)
    if same:
        raise ReanimateError(
            f"{out}: --out is the input {agc_json}; importing would overwrite it (choose "
            f"another file)"
        )
