"""The sample catalogue as the histogramming stage sees it, and the per-sample normalisation.

Catalogue (DIR/catalogue.json, paths relative to DIR, absolute paths and URLs allowed):
``{process: {variation: {"nevts_total": int, "xsec_pb": float?, "files": [{"path", "nevts",
"sha256"}]}}}``. A user with the real AGC files can pass ``nanoaod_inputs.json`` directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from reanimate.analyses.agc.catalogue import AGC_XSEC_PB
from reanimate.errors import ReanimateError
from reanimate.urls import is_remote

LUMINOSITY_PB = 3378.0
XSEC_PB: dict[str, float] = AGC_XSEC_PB  # docs/agc-analysis.md §5
BACKGROUNDS: tuple[str, ...] = tuple(XSEC_PB)
SIGNAL_PREFIX = "zprime_"
VARIATIONS: tuple[str, ...] = ("nominal", "scaledown", "scaleup", "ME_var", "PS_var")


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
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ReanimateError(f"{path}: cannot read the sample catalogue: {exc}") from None
    if not isinstance(doc, dict):
        raise ReanimateError(f"{path}: expected an object {{process: {{variation: ...}}}}")
    if processes is None:
        wanted = [p for p in doc if not p.startswith(SIGNAL_PREFIX)]
    else:
        missing = [p for p in processes if p not in doc]
        if missing:
            raise ReanimateError(
                f"{path}: process(es) not in the catalogue: {', '.join(missing)} "
                f"(available: {', '.join(doc)})"
            )
        wanted = list(processes)
    order = {p: i for i, p in enumerate(BACKGROUNDS)}
    wanted.sort(key=lambda p: (order.get(p, len(order)), p))
    out = []
    for process in wanted:
        variations = doc[process]
        if not isinstance(variations, dict):
            raise ReanimateError(f"{path}: {process}: expected an object {{variation: ...}}")
        for variation in sorted(variations, key=_variation_key):
            out.append(_sample(path, process, variation, variations[variation]))
    return out


def _variation_key(variation: str) -> tuple[int, str]:
    known = variation in VARIATIONS
    return (VARIATIONS.index(variation) if known else len(VARIATIONS), variation)


def _sample(path: Path, process: str, variation: str, entry) -> Sample:
    where = f"{path}: {process}.{variation}"
    if variation not in VARIATIONS or (variation != "nominal" and process != "ttbar"):
        raise ReanimateError(
            f"{where}: unknown variation (expected nominal, or for ttbar one of "
            f"{', '.join(VARIATIONS[1:])})"
        )
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), list):
        raise ReanimateError(f"{where}: expected an object with a 'files' list")
    xsec = entry.get("xsec_pb", XSEC_PB.get(process))
    if not isinstance(xsec, int | float) or isinstance(xsec, bool) or xsec <= 0:
        raise ReanimateError(f"{where}: no valid cross section (set 'xsec_pb')")
    files = []
    for i, f in enumerate(entry["files"]):
        if not isinstance(f, dict) or not isinstance(f.get("path"), str):
            raise ReanimateError(f"{where}.files[{i}]: expected an object with a 'path'")
        nevts = f.get("nevts")
        if nevts is not None and (not isinstance(nevts, int) or nevts < 0):
            raise ReanimateError(f"{where}.files[{i}]: 'nevts' must be a non-negative integer")
        files.append(SampleFile(_resolve(path.parent, f["path"]), nevts, f.get("sha256")))
    if not files:
        raise ReanimateError(f"{where}: no files")
    return Sample(process, variation, float(xsec), tuple(files))


def event_weight(sample: Sample, nevts_processed: int) -> float:
    """xsec · L / N with N the total entries of the files actually processed."""
    if nevts_processed <= 0:
        raise ReanimateError(f"{sample.process}.{sample.variation}: no events in its files")
    return sample.xsec_pb * LUMINOSITY_PB / nevts_processed
