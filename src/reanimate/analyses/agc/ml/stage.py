"""What the histogram stage calls to add the ML histograms (``histograms_ml.root``).

    filler = stage.filler(model_even, model_odd, pin=pin_or_metrics_json)   # once, driver side
    function = stage.chunk_function(filler)       # process_chunk with the filler attached
    hists, events = distributed.run_chunks(client, tasks, function=function, ...)
    hists, ml = stage.split(hists)                # regular histograms unchanged
    ... output.add_pseudodata(hists); output.write_root(histograms, hists) ...
    stage.write(histograms_ml, ml)                # + {feature}_pseudodata, own binning

The models are loaded only if their sha256 equals the pinned digest: given explicitly, or read
from a pin (``reanimate model pin`` output) or from the train step's metrics JSON (its ``pin``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from reanimate.analyses.agc import output
from reanimate.analyses.agc.ml import histograms
from reanimate.analyses.agc.ml.features import FEATURE_NAMES
from reanimate.analyses.agc.ml.inference import MLFiller
from reanimate.atomic import write_text
from reanimate.errors import ReanimateError


def pinned_digests(pin: str | Path | Mapping) -> dict[str, str]:
    """{model_even: sha256, model_odd: sha256} from a pin, a pin file or a train metrics JSON."""
    if not isinstance(pin, Mapping):
        try:
            pin = json.loads(Path(pin).read_text())
        except (OSError, ValueError) as exc:
            raise ReanimateError(f"{pin}: cannot read the model pin: {exc}") from None
    pin = pin.get("pin", pin)
    try:
        return {r: str(pin["files"][r]["sha256"]) for r in ("model_even", "model_odd")}
    except (KeyError, TypeError):
        raise ReanimateError("model pin without files.model_even/model_odd.sha256") from None


def filler(
    model_even: str | Path,
    model_odd: str | Path,
    pin: str | Path | Mapping | None = None,
    sha256_even: str | None = None,
    sha256_odd: str | None = None,
) -> MLFiller:
    """The ML filler from two model files, verified against the pinned digests.

    Digests: ``sha256_even``/``sha256_odd`` if given, else those of ``pin``. With neither, the
    files are used as they are (a standalone run; the engine always passes the lock's digests).
    """
    from reanimate.hashing import sha256_file

    digests = pinned_digests(pin) if pin is not None else {}
    if sha256_even:
        digests["model_even"] = sha256_even
    if sha256_odd:
        digests["model_odd"] = sha256_odd
    for role, path in (("model_even", model_even), ("model_odd", model_odd)):
        if not Path(path).is_file():
            raise ReanimateError(f"{path}: {role} model file not found")
        digests.setdefault(role, sha256_file(path))
    return MLFiller.from_files(model_even, digests["model_even"], model_odd, digests["model_odd"])


def chunk_function(ml_filler: MLFiller):
    """``process_chunk`` with the ML filler attached (picklable, for ``run_chunks(function=)``)."""
    from reanimate.analyses.agc.processing import process_chunk

    return functools.partial(process_chunk, fillers=(ml_filler,))


def split(hists: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """(regular histograms, ML histograms)."""
    return histograms.split(hists)


def add_pseudodata(ml: dict[str, np.ndarray]) -> None:
    """``{feature}_pseudodata``: the regions' formula (:func:`output.pseudodata`) per feature."""
    output.add_pseudodata(ml, FEATURE_NAMES, histograms.NBINS + 2)


def write(
    path: str | Path,
    ml: Mapping[str, np.ndarray],
    pseudodata: bool = True,
    json_path: str | Path | None = None,
) -> int:
    """Write ``histograms_ml.root`` (and optionally the AGC JSON); returns the histogram count."""
    ml = dict(ml)
    if pseudodata:
        add_pseudodata(ml)
    histograms.write_root(path, ml)
    if json_path:
        write_text(json_path, json.dumps(histograms.to_json(ml), indent=2) + "\n")
    return len(histograms.ordered(ml))
