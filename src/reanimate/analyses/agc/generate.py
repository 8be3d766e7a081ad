"""Generate the AGC samples (and Z'→tt̄ signals) in the CMS NanoAOD schema.

Samples: ttbar ``nominal``, ``scaledown``, ``scaleup``, ``ME_var``, ``PS_var``;
``single_top_s_chan``, ``single_top_t_chan``, ``single_top_tW``, ``wjets`` (all ``nominal``); and
``zprime_<mass>`` / ``nominal`` for each requested Z' mass. ``events`` is the ttbar-nominal event
count; the other AGC samples follow the event proportions of the real dataset
(docs/agc-analysis.md §7) with a floor of :data:`MIN_EVENTS`; each signal gets
``max(MIN_EVENTS, events // 20)``.

Filters and cross sections: tt̄, Z' and tW keep events with at least one W → ℓν (ℓ = e, μ, τ;
efficiency 1 − 0.676² = 0.543), s- and t-channel single top keep the top's W → ℓν (0.324),
W+jets keeps W + ≥ 3 hard partons (efficiency 0.28³). The catalogue's ``xsec_pb`` is the AGC
cross section (§5) times that efficiency, so ``xsec_pb · L / N`` weights give the same expected
yields as unfiltered samples, with far more selected events per generated one.

Z' → tt̄ (leptophobic topcolour-like, Γ/M = 3 %): illustrative σ × BR(tt̄) at 13 TeV, not a
theory prediction: 500 GeV 30 pb, 750 GeV 8 pb, 1 TeV 2.5 pb, 1.5 TeV 0.40 pb, 2 TeV 0.085 pb,
3 TeV 0.0065 pb, interpolated log-linearly in log(mass) (extrapolated with the end slopes).

Determinism: file i of a sample is generated from ``Philox(SeedSequence(seed, spawn_key=(sample
id, i)))``; no global random state; identical arguments give identical files, byte for byte.
Event identity: ``run`` 1, ``luminosityBlock`` = 10000 · sample number + file index + 1,
``event`` = 1-based index within the sample (so even/odd halves are equal).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reanimate.analyses.agc import detector, processes
from reanimate.analyses.agc.catalogue import AGC_XSEC_PB
from reanimate.analyses.agc.processes import Tune
from reanimate.datasets.catalogue import Catalogue, FileEntry, SampleEntry
from reanimate.datasets.catalogue import write_catalogue as _write_catalogue
from reanimate.datasets.writing import COMPRESSIONS, write_events
from reanimate.errors import ReanimateError
from reanimate.hashing import sha256_file

DEFAULT_EVENTS = 10_000
DEFAULT_EVENTS_PER_FILE = 20_000
DEFAULT_SIGNAL_MASSES = (500, 750, 1000, 1500, 2000, 3000)
MIN_EVENTS = 300
ZPRIME_XSEC_PB = {500: 30.0, 750: 8.0, 1000: 2.5, 1500: 0.40, 2000: 0.085, 3000: 0.0065}

#: Events of the real AGC dataset (docs/agc-analysis.md §7), for the synthetic proportions.
REAL_EVENTS = {
    ("ttbar", "nominal"): 276_079_127,
    ("ttbar", "scaledown"): 39_329_663,
    ("ttbar", "scaleup"): 38_424_467,
    ("ttbar", "ME_var"): 19_098_219,
    ("ttbar", "PS_var"): 19_337_064,
    ("single_top_s_chan", "nominal"): 2_867_199,
    ("single_top_t_chan", "nominal"): 109_305_936,
    ("single_top_tW", "nominal"): 1_999_400,
    ("wjets", "nominal"): 433_719_099,
}
TUNES = {
    ("ttbar", "nominal"): Tune(),
    ("ttbar", "scaledown"): Tune(isr_mean=0.32, isr_pt=16.5),
    ("ttbar", "scaleup"): Tune(isr_mean=0.44, isr_pt=19.5),
    ("ttbar", "ME_var"): Tune(excess_scale=0.96, isr_mean=0.35),
    ("ttbar", "PS_var"): Tune(jet_response=0.985, isr_mean=0.36, qgl_shift=-0.03),
    ("single_top_s_chan", "nominal"): Tune(isr_mean=0.7),
    ("single_top_t_chan", "nominal"): Tune(isr_mean=0.6),
    ("single_top_tW", "nominal"): Tune(isr_mean=0.5),
    ("wjets", "nominal"): Tune(isr_mean=0.3),
}


@dataclass(frozen=True)
class Sample:
    process: str
    variation: str
    kind: str  # maker: ttbar, zprime, single_top_*, wjets
    xsec_pb: float  # as generated (after the filter)
    nevts: int
    number: int  # stable position in the catalogue, for luminosityBlock
    zprime_mass: float | None = None

    @property
    def tune(self) -> Tune:
        return TUNES.get((self.process, self.variation), Tune())


def zprime_xsec_pb(mass: float) -> float:
    """Illustrative σ × BR(Z'→tt̄) in pb (log-log interpolation of :data:`ZPRIME_XSEC_PB`)."""
    masses = np.log(np.array(sorted(ZPRIME_XSEC_PB), float))
    xsecs = np.log(np.array([ZPRIME_XSEC_PB[m] for m in sorted(ZPRIME_XSEC_PB)]))
    x = math.log(mass)
    i = int(np.clip(np.searchsorted(masses, x) - 1, 0, len(masses) - 2))
    slope = (xsecs[i + 1] - xsecs[i]) / (masses[i + 1] - masses[i])
    return float(math.exp(xsecs[i] + slope * (x - masses[i])))


def plan_samples(
    events: int = DEFAULT_EVENTS, signal_masses: Iterable[float] = DEFAULT_SIGNAL_MASSES
) -> list[Sample]:
    """The samples to generate, with event counts and (filtered) cross sections."""
    if events < 1:
        raise ReanimateError(f"--events must be positive, got {events}")
    nominal = REAL_EVENTS[("ttbar", "nominal")]
    samples = []
    for number, ((process, variation), real) in enumerate(REAL_EVENTS.items()):
        n = events if number == 0 else max(MIN_EVENTS, round(events * real / nominal))
        kind = process
        xsec = AGC_XSEC_PB[process] * processes.filter_efficiency(kind)
        samples.append(Sample(process, variation, kind, xsec, n, number))
    for i, mass in enumerate(dict.fromkeys(float(m) for m in signal_masses)):
        if not 400 <= mass <= 10_000:
            raise ReanimateError(f"Z' mass {mass} GeV outside the supported 400–10000 GeV")
        label = f"{mass:g}"
        xsec = zprime_xsec_pb(mass) * processes.filter_efficiency("zprime")
        samples.append(
            Sample(
                f"zprime_{label}",
                "nominal",
                "zprime",
                xsec,
                max(MIN_EVENTS, events // 20),
                len(REAL_EVENTS) + i,
                float(mass),
            )
        )
    return samples


def _rng(seed: int, sample: Sample, file_index: int) -> np.random.Generator:
    name = f"{sample.process}/{sample.variation}".encode()
    sample_id = int.from_bytes(hashlib.sha256(name).digest()[:4], "little")
    seq = np.random.SeedSequence(seed, spawn_key=(sample_id, file_index))
    return np.random.Generator(np.random.Philox(seq))


def generate_columns(sample: Sample, n: int, rng: np.random.Generator):
    """Generate ``n`` events of ``sample``: the collections for :func:`write_events`."""
    if sample.kind == "zprime":
        truth = processes.make_ttbar(n, rng, sample.tune, zprime_mass=sample.zprime_mass)
    else:
        truth = processes.MAKERS[sample.kind](n, rng, sample.tune)
    gen = truth.gen_columns()
    jets, partons = detector.jets(truth, rng, sample.tune)
    electrons, muons = detector.leptons(truth, partons, rng)
    return {"Electron": electrons, "Muon": muons, "Jet": jets, "GenPart": gen}


def split(n: int, per_file: int) -> list[int]:
    files = max(1, math.ceil(n / per_file))
    return [n // files + (1 if i < n % files else 0) for i in range(files)]


def generate(
    out_dir: str | Path,
    events: int = DEFAULT_EVENTS,
    seed: int = 1,
    compression: str = "zlib",
    signal_masses: Iterable[float] = DEFAULT_SIGNAL_MASSES,
    events_per_file: int = DEFAULT_EVENTS_PER_FILE,
    progress: Callable[[Sample, int], None] | None = None,
) -> Catalogue:
    """Generate every sample into ``out_dir`` and write ``out_dir/catalogue.json``."""
    if compression not in COMPRESSIONS:
        raise ReanimateError(f"unknown compression {compression!r} (use {', '.join(COMPRESSIONS)})")
    if events_per_file < 1:
        raise ReanimateError("--events-per-file must be positive")
    if seed < 0:
        raise ReanimateError(f"--seed must be non-negative, got {seed}")
    samples = plan_samples(events, signal_masses)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ReanimateError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReanimateError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
    result: dict[str, dict[str, SampleEntry]] = {}
    for sample in samples:
        entries, first_event = [], 0
        for index, n in enumerate(split(sample.nevts, events_per_file)):
            name = f"{sample.process}__{sample.variation}__{index:03d}.root"
            columns = generate_columns(sample, n, _rng(seed, sample, index))
            scalars = {
                "run": np.ones(n, np.uint32),
                "luminosityBlock": np.full(n, 10_000 * sample.number + index + 1, np.uint32),
                "event": np.arange(first_event + 1, first_event + n + 1, dtype=np.uint64),
            }
            write_events(
                out / name, scalars, columns, compression=compression, key=f"{seed}/{name}"
            )
            entries.append(FileEntry(path=name, nevts=n, sha256=sha256_file(out / name)))
            first_event += n
            if progress is not None:
                progress(sample, n)
        result.setdefault(sample.process, {})[sample.variation] = SampleEntry(
            nevts_total=sample.nevts, xsec_pb=round(sample.xsec_pb, 10), files=entries
        )
    catalogue = Catalogue(result)
    _write_catalogue(catalogue, out / "catalogue.json")
    return catalogue


def parse_masses(text: str) -> list[float]:
    """'500,750,1000' → [500.0, 750.0, 1000.0]; '' or 'none' → []."""
    if text.strip().lower() in ("", "none"):
        return []
    try:
        return [float(m) for m in text.split(",") if m.strip()]
    except ValueError:
        raise ReanimateError(
            f"--signal-masses {text!r}: expected comma-separated GeV values"
        ) from None
