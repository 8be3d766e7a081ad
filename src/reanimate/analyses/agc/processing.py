"""One chunk of one file -> partial histograms (plain numpy arrays, merged elsewhere).

A partial histogram is a float64 array of shape (2, 27): row 0 the sum of weights, row 1 the
sum of squared weights, columns underflow, the 25 bins 50–550 GeV, overflow. Keys are the AGC
histogram names (``4j1b_ttbar``, ``4j2b_wjets_scale_var_down``...).

Extra fillers (the ML inference of issue 5) plug into every region/variation: a filler has a
``branches`` attribute (extra branches to read) and is called with the process name, the
:class:`~reanimate.analyses.agc.objects.RegionSelection`, the region's events and a mapping
{variation name: per-event weights}; it returns more named partial histograms. A filler with
``needs_events = False`` gets None for the region's events (it reads through the selection).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import awkward as ak
import boost_histogram as bh
import numpy as np

from reanimate.analyses.agc import objects, systematics

NBINS, LOW, HIGH = 25, 50.0, 550.0
EDGES = np.linspace(LOW, HIGH, NBINS + 1)
MODELLING_VARIATIONS: tuple[str, ...] = ("scaledown", "scaleup", "ME_var", "PS_var")


class RegionFiller(Protocol):
    branches: tuple[str, ...]

    def __call__(
        self,
        process: str,
        selection: objects.RegionSelection,
        events: ak.Array,
        weights: Mapping[str, np.ndarray],
    ) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class ChunkTask:
    """Everything a worker needs to process one (file, entry range)."""

    process: str
    variation: str  # the catalogue variation: nominal or a ttbar modelling sample
    path: str
    entry_start: int
    entry_stop: int
    weight: float  # xsec * L / N
    seed: int
    sha256: str | None = None  # the catalogue's digest: a remote file is read from its checked copy


def histogram_name(region: str, process: str, variation: str) -> str:
    return f"{region}_{process}" if variation == "nominal" else f"{region}_{process}_{variation}"


def fill(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A (2, 27) partial histogram of ``values`` with ``weights`` (filled in array order)."""
    h = bh.Histogram(bh.axis.Regular(NBINS, LOW, HIGH), storage=bh.storage.Weight())
    h.fill(np.asarray(values, dtype=np.float64), weight=np.asarray(weights, dtype=np.float64))
    view = h.view(flow=True)
    return np.stack([np.array(view.value), np.array(view.variance)])


# The reading seam: every file access of the stage goes through these functions, which use
# the shared reading layer (branch-type validation, one error family for unreadable files).


def _read_events(
    path: str, branches: Sequence[str], entry_start: int, entry_stop: int,
    sha256: str | None = None,
):
    """Read ``branches`` of entries [start, stop) of the Events tree as an awkward array
    (a remote ``path`` with its ``sha256`` is read from the verified cached copy)."""
    from reanimate.datasets.reading import read_events

    return read_events(path, list(branches), entry_start, entry_stop, sha256=sha256)


def num_entries(path: str, sha256: str | None = None) -> int:
    """Entries of the Events tree of ``path`` (a remote one with a sha256: fetched, checked)."""
    from reanimate.datasets.reading import num_entries

    return num_entries(path, sha256)


def basket_starts(path: str, sha256: str | None = None) -> list[int]:
    """Entries where all the stage's branches start a basket (0 and the entry count included)."""
    from reanimate.datasets.reading import basket_starts

    return basket_starts(path, objects.BRANCHES, sha256)


def process_events(
    events: ak.Array,
    process: str,
    variation: str,
    weight: float,
    seed: int,
    fillers: Sequence[RegionFiller] = (),
) -> dict[str, np.ndarray]:
    """Fill every histogram of one sample from ``events`` (an awkward record array)."""
    out: dict[str, np.ndarray] = {}
    ev = objects.Events(events)
    lepton = objects.one_lepton(ev)
    quality = objects.jet_quality(ev)
    # the variations run on the candidate events alone (a fifth of ttbar's, fewer elsewhere)
    chosen = np.flatnonzero(objects.candidates(ev, lepton, quality))
    sub, jet_index = ev.take(chosen)
    sub_quality = quality[jet_index]
    sub_lepton = np.ones(sub.n, dtype=bool)
    pt_variations = systematics.PT_VARIATIONS if variation == "nominal" else ("nominal",)
    for pt_var in pt_variations:
        regions = objects.in_chunk(objects.select_regions(
            sub, systematics.jet_pt(sub, pt_var, seed, sub_quality), sub_lepton, sub_quality,
            pt_var), ev, chosen, jet_index)
        for region, sel in regions.items():
            w = np.full(len(sel.observable), weight, dtype=np.float64)
            name = variation if pt_var == "nominal" else pt_var
            weights = {name: w}
            if variation == "nominal" and pt_var == "nominal":  # weight-based variations
                weights.update(systematics.btag_weights(w, sel))
                if process == "wjets":
                    for var, factor in systematics.WJETS_SCALE.items():
                        weights[var] = w * factor
            for var, ws in weights.items():
                out[histogram_name(region, process, var)] = fill(sel.observable, ws)
            if fillers:  # the region's events, unless no filler reads them (a copy per region)
                region_events = events[sel.event_mask] if any(
                    getattr(f, "needs_events", True) for f in fillers) else None
                for filler in fillers:
                    out.update(filler(process, sel, region_events, weights))
    return out


def process_chunk(
    task: ChunkTask, fillers: Sequence[RegionFiller] = ()
) -> tuple[dict[str, np.ndarray], int]:
    """Read one chunk and fill its partial histograms; returns them and the events read."""
    branches = list(objects.BRANCHES)
    for filler in fillers:
        branches += [b for b in filler.branches if b not in branches]
    events = _read_events(task.path, branches, task.entry_start, task.entry_stop, task.sha256)
    hists = process_events(events, task.process, task.variation, task.weight, task.seed, fillers)
    return hists, len(events)


def read_only(task: ChunkTask) -> tuple[dict[str, np.ndarray], int]:
    """Read the chunk's branches and nothing else (the benchmark's reading baseline)."""
    events = _read_events(
        task.path, objects.BRANCHES, task.entry_start, task.entry_stop, task.sha256
    )
    return {}, len(events)
