"""One signal sample for reinterpretation: Z'→tt̄ events in the NanoAOD schema, with a catalogue.

:func:`generate_signal` writes ``OUT/catalogue.json`` with one process (``name``, variation
``nominal``), its ROOT files ``{name}__nominal__{i:03d}.root`` and ``OUT/signal.json`` (the
recipe: model, mass, width, events, seed, cross section). The events are the generator's Z'
(:func:`reanimate.analyses.agc.processes.make_ttbar` with a mass and a relative width, detector
simulation of :mod:`~reanimate.analyses.agc.detector`), file i drawn from
``Philox(SeedSequence(seed, spawn_key=(id of name/nominal, i)))``: the same arguments give the
same bytes. The catalogue's cross section is ``zprime_xsec_pb(mass)`` times the decay filter's
efficiency unless given (then it is taken as the filtered cross section, like the catalogue's).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from reanimate.errors import ReanimateError

MODELS = ("zprime",)
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: the luminosityBlock number of the signal (after the nine AGC samples, as the first Z')
SAMPLE_NUMBER = 9


def default_xsec_pb(model: str, mass: float) -> float:
    """The catalogue cross section of a recipe: σ × BR × the decay filter's efficiency (pb)."""
    from reanimate.analyses.agc import generate, processes

    if model != "zprime":
        raise ReanimateError(f"unknown signal model {model!r} (known: {', '.join(MODELS)})")
    return generate.zprime_xsec_pb(mass) * processes.filter_efficiency("zprime")


def _check(model, mass, width, events, seed, xsec_pb, name, events_per_file) -> None:
    from reanimate.analyses.agc.samples import BACKGROUNDS

    if model not in MODELS:
        raise ReanimateError(f"unknown signal model {model!r} (known: {', '.join(MODELS)})")
    if not (math.isfinite(mass) and 400 <= mass <= 10_000):
        raise ReanimateError(f"--mass {mass}: outside the supported 400-10000 GeV")
    if not (math.isfinite(width) and 0 < width <= 0.5):
        raise ReanimateError(f"--width {width}: the relative width must be in (0, 0.5]")
    if events < 1:
        raise ReanimateError(f"--events must be positive, got {events}")
    if events_per_file < 1:
        raise ReanimateError(f"--events_per_file must be positive, got {events_per_file}")
    if not 0 <= seed < 2**63:
        raise ReanimateError(f"--seed must be in [0, 2^63), got {seed}")
    if xsec_pb is not None and not (math.isfinite(xsec_pb) and xsec_pb > 0):
        raise ReanimateError(f"--xsec_pb {xsec_pb}: must be a positive number")
    if not NAME.match(name) or name in BACKGROUNDS or name == "pseudodata":
        raise ReanimateError(f"--name {name!r}: a process name (letters, digits, _) that is not "
                             f"a background's or 'pseudodata'")


def generate_signal(out_dir: str | Path, *, model: str = "zprime", mass: float = 1500.0,
                    width: float = 0.03, events: int = 10_000, seed: int = 42,
                    xsec_pb: float | None = None, name: str = "signal",
                    compression: str = "zlib", events_per_file: int = 20_000) -> dict:
    """Generate the signal into ``out_dir``; returns the recipe written to signal.json."""
    from reanimate.analyses.agc import detector, generate, processes
    from reanimate.datasets.catalogue import Catalogue, FileEntry, SampleEntry, write_catalogue
    from reanimate.datasets.writing import COMPRESSIONS, write_events
    from reanimate.hashing import sha256_file
    from reanimate.statistics import jsonio

    _check(model, mass, width, events, seed, xsec_pb, name, events_per_file)
    if compression not in COMPRESSIONS:
        raise ReanimateError(f"unknown compression {compression!r} "
                             f"(use {', '.join(COMPRESSIONS)})")
    xsec = default_xsec_pb(model, mass) if xsec_pb is None else float(xsec_pb)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ReanimateError(f"--samples {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReanimateError(
            f"--samples {out}: cannot create the folder ({exc.strerror})") from None
    sample = generate.Sample(name, "nominal", "zprime", xsec, events, SAMPLE_NUMBER, float(mass))
    files, first = [], 0
    for index, n in enumerate(generate.split(events, events_per_file)):
        file_name = f"{name}__nominal__{index:03d}.root"
        rng = generate._rng(seed, sample, index)
        truth = processes.make_ttbar(n, rng, sample.tune, zprime_mass=float(mass),
                                     zprime_width=float(width))
        gen = truth.gen_columns()
        jets, partons = detector.jets(truth, rng, sample.tune)
        electrons, muons = detector.leptons(truth, partons, rng)
        scalars = {
            "run": np.ones(n, np.uint32),
            "luminosityBlock": np.full(n, 10_000 * SAMPLE_NUMBER + index + 1, np.uint32),
            "event": np.arange(first + 1, first + n + 1, dtype=np.uint64),
        }
        columns = {"Electron": electrons, "Muon": muons, "Jet": jets, "GenPart": gen}
        write_events(out / file_name, scalars, columns, compression=compression,
                     key=f"{seed}/{file_name}")
        files.append(FileEntry(path=file_name, nevts=n, sha256=sha256_file(out / file_name)))
        first += n
    entry = SampleEntry(nevts_total=events, xsec_pb=round(xsec, 10), files=files)
    write_catalogue(Catalogue({name: {"nominal": entry}}), out / "catalogue.json")
    recipe = {"model": model, "mass": float(mass), "width": float(width), "events": events,
              "seed": seed, "xsec_pb": round(xsec, 10), "name": name,
              "xsec_source": "given" if xsec_pb is not None else "zprime_xsec_pb x filter"}
    jsonio.write(out / "signal.json", recipe)
    return recipe
