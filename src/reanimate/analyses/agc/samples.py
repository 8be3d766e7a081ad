"""The sample catalogue as the histogramming stage sees it, and the per-sample normalisation.

Catalogue (DIR/catalogue.json, paths relative to DIR, absolute paths and URLs allowed):
``{process: {variation: {"nevts_total": int, "xsec_pb": float?, "files": [{"path", "nevts",
"sha256"}]}}}``. A user with the real AGC files can pass ``nanoaod_inputs.json`` directly.

Refused, each with one line naming the catalogue and the ``process.variation`` (and file): a
non-finite number anywhere (``NaN``, ``Infinity``, ``1e999``), a catalogue or process without
samples, a sample without files, a variation the stage does not know, and — before any event is
read (:func:`verify_files`) — a local file whose sha256 differs from the catalogue's.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reanimate.analyses.agc.catalogue import AGC_XSEC_PB, VARIATIONS, variation_problem
from reanimate.datasets.catalogue import loads_strict
from reanimate.errors import DigestMismatch, ReanimateError
from reanimate.hashing import sha256_files
from reanimate.urls import is_remote

LUMINOSITY_PB = 3378.0
XSEC_PB: dict[str, float] = AGC_XSEC_PB  # docs/agc-analysis.md §5
BACKGROUNDS: tuple[str, ...] = tuple(XSEC_PB)
SIGNAL_PREFIX = "zprime_"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class SampleFile:
    path: str
    nevts: int | None
    sha256: str | None


@dataclass(frozen=True)
class Sample:
    process: str
    variation: str
    xsec_pb: float
    files: tuple[SampleFile, ...]
    catalogue: str = ""  # the catalogue it was read from (for error messages)


def catalogue_path(samples: str | Path) -> Path:
    path = Path(samples)
    if path.is_dir():
        path = path / "catalogue.json"
    if not path.is_file():
        raise ReanimateError(f"{path}: sample catalogue not found")
    return path


def _resolve(base: Path, path: str) -> str:
    if is_remote(path) or Path(path).is_absolute():
        return path
    return str(base / path)


def load_samples(samples: str | Path, processes: list[str] | None = None) -> list[Sample]:
    """The samples to histogram, in a canonical order (AGC processes first, then the others).

    Default processes: every process of the catalogue except the ``zprime_*`` signals.
    """
    path = catalogue_path(samples)
    try:
        doc = loads_strict(path.read_text(), path)
    except (OSError, ValueError) as exc:
        raise ReanimateError(f"{path}: cannot read the sample catalogue: {exc}") from None
    if not isinstance(doc, dict):
        raise ReanimateError(f"{path}: expected an object {{process: {{variation: ...}}}}")
    if not doc:
        raise ReanimateError(f"{path}: no samples (the catalogue is empty)")
    if processes is None:
        wanted = [p for p in doc if not p.startswith(SIGNAL_PREFIX)]
        if not wanted:
            raise ReanimateError(
                f"{path}: no samples to histogram: only signals ({', '.join(doc)}), which are "
                f"histogrammed only when named with --processes"
            )
    else:
        missing = [p for p in processes if p not in doc]
        if missing:
            raise ReanimateError(
                f"{path}: process(es) not in the catalogue: {', '.join(missing)} "
                f"(available: {', '.join(doc)})"
            )
        if not processes:
            raise ReanimateError(f"{path}: no processes selected")
        wanted = list(dict.fromkeys(processes))
    order = {p: i for i, p in enumerate(BACKGROUNDS)}
    wanted.sort(key=lambda p: (order.get(p, len(order)), p))
    out = []
    for process in wanted:
        variations = doc[process]
        if not isinstance(variations, dict):
            raise ReanimateError(f"{path}: {process}: expected an object {{variation: ...}}")
        if not variations:
            raise ReanimateError(f"{path}: {process}: no samples (no variations)")
        for variation in sorted(variations, key=_variation_key):
            out.append(_sample(path, process, variation, variations[variation]))
    return out


def _variation_key(variation: str) -> tuple[int, str]:
    known = variation in VARIATIONS
    return (VARIATIONS.index(variation) if known else len(VARIATIONS), variation)


def _sample(path: Path, process: str, variation: str, entry) -> Sample:
    where = f"{path}: {process}.{variation}"
    problem = variation_problem(process, variation)
    if problem:
        raise ReanimateError(f"{where}: {problem}")
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), list):
        raise ReanimateError(f"{where}: expected an object with a 'files' list")
    xsec = entry.get("xsec_pb", XSEC_PB.get(process))
    if not isinstance(xsec, int | float) or isinstance(xsec, bool) or not xsec > 0:
        raise ReanimateError(f"{where}: no valid cross section (set 'xsec_pb')")
    if xsec > sys.float_info.max:  # an integer too large for a float (1e999 is refused earlier)
        raise ReanimateError(f"{where}.xsec_pb: not a finite number (too large for a float)")
    files = []
    for i, f in enumerate(entry["files"]):
        if not isinstance(f, dict) or not isinstance(f.get("path"), str):
            raise ReanimateError(f"{where}.files[{i}]: expected an object with a 'path'")
        nevts = f.get("nevts")
        if nevts is not None and (not isinstance(nevts, int) or isinstance(nevts, bool)
                                  or nevts < 0):
            raise ReanimateError(f"{where}.files[{i}]: 'nevts' must be a non-negative integer")
        sha256 = f.get("sha256")
        if sha256 is not None and not (isinstance(sha256, str) and _SHA256.match(sha256)):
            raise ReanimateError(
                f"{where}.files[{i}]: 'sha256' must be 64 lowercase hex digits or null"
            )
        files.append(SampleFile(_resolve(path.parent, f["path"]), nevts, sha256))
    if not files:
        raise ReanimateError(f"{where}: no files")
    return Sample(process, variation, float(xsec), tuple(files), str(path))


def verify_files(samples: Sequence[Sample], max_files: int | None = None) -> int:
    """Check the sha256 of every local file the stage will read against its catalogue entry.

    Only the files that will be processed (the first ``max_files`` of each sample) are checked;
    each distinct file is hashed once, even when several samples list it, and files are hashed
    in parallel threads (hashlib releases the GIL): about 1.5 GB/s per core, some 150 ns of CPU
    per generated event against the stage's 1.7 µs (docs/histograms.md). Files without a
    sha256 (remote files, the AGC's own ``nanoaod_inputs.json``) are not checked. The first bad
    file in catalogue order is reported: :class:`~reanimate.errors.DigestMismatch` naming the
    catalogue, the sample and the file.
    Returns the number of files hashed.
    """
    checks: list[tuple[str, Sample, SampleFile]] = []
    for sample in samples:
        for f in sample.files[:max_files] if max_files else sample.files:
            if f.sha256 is not None and not is_remote(f.path):
                checks.append((os.path.realpath(f.path), sample, f))
    digests = sha256_files([key for key, _, _ in checks])
    for key, sample, f in checks:
        where = f"{sample.catalogue}: {sample.process}.{sample.variation}: {f.path}"
        actual = digests[key]
        if isinstance(actual, OSError):
            if isinstance(actual, FileNotFoundError):
                raise ReanimateError(f"{where}: file not found")
            raise ReanimateError(f"{where}: cannot read ({actual.strerror or actual})")
        if actual != f.sha256:
            raise DigestMismatch(
                f"{where}: sha256 {actual} differs from the catalogue's {f.sha256} "
                f"(a changed or swapped file)"
            )
    return len(digests)


def event_weight(sample: Sample, nevts_processed: int) -> float:
    """xsec · L / N with N the total entries of the files actually processed."""
    if nevts_processed <= 0:
        raise ReanimateError(f"{sample.process}.{sample.variation}: no events in its files")
    return sample.xsec_pb * LUMINOSITY_PB / nevts_processed
