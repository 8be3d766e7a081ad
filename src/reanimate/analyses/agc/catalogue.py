"""The AGC's own catalogue (``nanoaod_inputs.json``) and cross sections, imported into ours."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from reanimate.datasets.catalogue import Catalogue, FileEntry, SampleEntry, write_catalogue
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
    write_catalogue(catalogue, out)
    return catalogue
