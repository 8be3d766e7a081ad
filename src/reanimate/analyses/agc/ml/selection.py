"""From NanoAOD events to the inputs of the BDT: the 4j2b jets and the one selected lepton.

The event and jet selection is the histogram stage's own (:mod:`reanimate.analyses.agc.objects`),
so training and inference see exactly the events and jets the histograms see. The lepton cuts
repeat §2 (that module only counts leptons). Branches needed on top of the selection's:
:data:`INFERENCE_BRANCHES` (and :data:`TRAINING_BRANCHES` for truth matching).
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from reanimate.analyses.agc.ml.features import Jets, Leptons
from reanimate.analyses.agc.objects import flat_jagged

INFERENCE_BRANCHES: tuple[str, ...] = (
    "event",
    "Jet_qgl",
    "Electron_phi",
    "Electron_mass",
    "Muon_phi",
    "Muon_mass",
)
TRAINING_BRANCHES: tuple[str, ...] = (
    "GenPart_pt",
    "GenPart_eta",
    "GenPart_phi",
    "GenPart_mass",
    "GenPart_pdgId",
    "GenPart_genPartIdxMother",
    "GenPart_statusFlags",
)


def _flat(array) -> np.ndarray:
    """The flat content of a jagged array (a view where the layout allows: no copy)."""
    return flat_jagged(array)[1]


def chunk_leptons(events: ak.Array) -> tuple[Leptons, np.ndarray]:
    """The selected lepton of every event (§2 cuts) and how many each event has.

    Fields are float64 per event; where an event does not have exactly one selected lepton they
    hold the last one found (or 0), so callers index them with events that have exactly one.
    """
    n = len(events)
    out = {f: np.zeros(n, dtype=np.float64) for f in ("pt", "eta", "phi", "mass")}
    found = np.zeros(n, dtype=np.int64)
    for prefix in ("Electron", "Muon"):
        flat = {f: _flat(events[f"{prefix}_{f}"]) for f in ("pt", "eta")}
        if prefix == "Electron":
            ok = (
                (flat["pt"] > 30)
                & (np.abs(flat["eta"]) < 2.1)
                & (_flat(events.Electron_cutBased) == 4)
                & (_flat(events.Electron_sip3d) < 4)
            )
        else:
            ok = (
                (flat["pt"] > 30)
                & (np.abs(flat["eta"]) < 2.1)
                & _flat(events.Muon_tightId)
                & (_flat(events.Muon_sip3d) < 4)
                & (_flat(events.Muon_pfRelIso04_all) < 0.15)
            )
        counts = flat_jagged(events[f"{prefix}_pt"])[0]
        event = np.repeat(np.arange(n), counts)[ok]
        found += np.bincount(event, minlength=n)
        for f in out:
            values = flat[f] if f in flat else _flat(events[f"{prefix}_{f}"])
            out[f][event] = values[ok]
    return Leptons(**out), found


def flat_qgl(events: ak.Array) -> np.ndarray:
    """The chunk's flat ``Jet_qgl`` (what :func:`selection_jets` indexes)."""
    return _flat(events.Jet_qgl)


def selected_lepton(events: ak.Array) -> Leptons:
    """The one selected electron or muon of each event (§2 cuts); every event must have one."""
    leptons, found = chunk_leptons(events)
    if len(found) and (found != 1).any():
        raise ValueError("selected_lepton: every event must have exactly one selected lepton")
    return leptons


def selection_jets(selection, qgl_flat: np.ndarray) -> Jets:
    """The selected jets of a :class:`~reanimate.analyses.agc.objects.RegionSelection` (varied pT).

    ``qgl_flat`` is the chunk's flat ``Jet_qgl`` (the selection indexes the chunk's flat jets).
    """
    return Jets(
        pt=selection.jet_pt,
        eta=selection.jet_field("eta"),
        phi=selection.jet_field("phi"),
        mass=selection.jet_field("mass"),
        btag=selection.jet_field("btagCSVV2"),
        qgl=np.asarray(qgl_flat)[selection.jet_index],
        counts=selection.jet_counts,
    )


def region_4j2b(events: ak.Array, pt_variation: str = "nominal", seed: int = 0):
    """The 4j2b :class:`RegionSelection` of ``events`` (histogram-stage selection)."""
    from reanimate.analyses.agc import objects, systematics

    ev = objects.Events(events)
    regions = objects.select_regions(
        ev,
        systematics.jet_pt(ev, pt_variation, seed),
        objects.one_lepton(ev),
        objects.jet_quality(ev),
        pt_variation,
    )
    return regions["4j2b"]


def training_inputs(events: ak.Array) -> tuple[np.ndarray, Jets, Leptons]:
    """4j2b events (nominal): (event mask, their selected jets, their lepton)."""
    sel = region_4j2b(events)
    jets = selection_jets(sel, flat_qgl(events))
    return sel.event_mask, jets, selected_lepton(events[sel.event_mask])
