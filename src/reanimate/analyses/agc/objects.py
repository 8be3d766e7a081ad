"""AGC object selection, event selection and observables (docs/agc-analysis.md §2–§3).

Columnar, on the flat content of the jagged NanoAOD branches (numpy arrays plus per-event
counts) — the same arrays awkward holds, without awkward's per-call overhead in the hot loop.
Cuts compare in the precision of the branch they cut on (float32 for the NanoAOD kinematics, as
the reference does), except the jet pT cut, which compares the varied pT in float64.
Observables are float64, from the varied jet pT and the unvaried float32 eta, phi and mass.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache, cached_property

import awkward as ak
import numpy as np

#: Branches the histogramming stage reads (event identity for the deterministic smearing).
#: The NanoAOD branches the selection reads (docs/agc-analysis.md §1).
SELECTION_BRANCHES = (
    "Electron_pt",
    "Electron_eta",
    "Electron_cutBased",
    "Electron_sip3d",
    "Muon_pt",
    "Muon_eta",
    "Muon_tightId",
    "Muon_sip3d",
    "Muon_pfRelIso04_all",
    "Jet_pt",
    "Jet_eta",
    "Jet_phi",
    "Jet_mass",
    "Jet_btagCSVV2",
    "Jet_jetId",
)
BRANCHES: tuple[str, ...] = ("run", "luminosityBlock", "event", *SELECTION_BRANCHES)

REGIONS: tuple[str, ...] = ("4j1b", "4j2b")
BTAG_THRESHOLD = 0.5


class Collection:
    """The flat fields of one jagged collection, its per-event counts and offsets."""

    def __init__(self, counts: np.ndarray, fields: dict[str, np.ndarray]) -> None:
        self.counts = counts
        self.offsets = np.zeros(len(self.counts) + 1, dtype=np.int64)
        np.cumsum(self.counts, out=self.offsets[1:])
        self.fields = fields

    @cached_property
    def event(self) -> np.ndarray:
        """Per object: the index of its event."""
        return np.repeat(np.arange(len(self.counts)), self.counts)

    @classmethod
    def read(cls, events: ak.Array, name: str, fields: tuple[str, ...]) -> Collection:
        counts, flat = None, {}
        for f in fields:
            counts, flat[f] = flat_jagged(events[f"{name}_{f}"])
        return cls(counts, flat)

    def take(self, events: np.ndarray) -> tuple[Collection, np.ndarray]:
        """The objects of the ``events`` (sorted indices) and their flat indices in this one."""
        counts = self.counts[events]
        index = np.repeat(self.offsets[events] - (np.cumsum(counts) - counts), counts)
        index += np.arange(len(index), dtype=np.int64)
        return Collection(counts, {f: v[index] for f, v in self.fields.items()}), index

    def __getattr__(self, field: str) -> np.ndarray:
        try:
            return self.__dict__["fields"][field]
        except KeyError:
            raise AttributeError(field) from None

    def per_event(self, mask: np.ndarray) -> np.ndarray:
        """Number of objects passing ``mask`` in each event."""
        passed = np.zeros(len(mask) + 1, dtype=np.int64)
        np.cumsum(mask, out=passed[1:])
        return passed[self.offsets[1:]] - passed[self.offsets[:-1]]


def flat_jagged(jagged: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """(counts as int64, flat content) of a jagged array of numbers, without copies where
    uproot's list-offset layout allows."""
    layout = jagged.layout
    if isinstance(layout, ak.contents.ListOffsetArray) and isinstance(
            layout.content, ak.contents.NumpyArray):
        offsets = np.asarray(layout.offsets.data)
        content = np.asarray(layout.content.data)[offsets[0]:offsets[-1]]
        return np.diff(offsets).astype(np.int64), content
    return (ak.to_numpy(ak.num(jagged, axis=1)).astype(np.int64),
            ak.to_numpy(ak.flatten(jagged, axis=1)))


class Events:
    """The branches of one chunk in flat form."""

    def __init__(self, events: ak.Array | None) -> None:
        if events is None:  # filled by :meth:`take`
            return
        self.array = events
        self.n = len(events)
        self.run = ak.to_numpy(events.run)
        self.luminosityBlock = ak.to_numpy(events.luminosityBlock)
        self.event = ak.to_numpy(events.event)
        self.electrons = Collection.read(events, "Electron", ("pt", "eta", "cutBased", "sip3d"))
        self.muons = Collection.read(
            events, "Muon", ("pt", "eta", "tightId", "sip3d", "pfRelIso04_all")
        )
        self.jets = Collection.read(events, "Jet",
                                    ("pt", "eta", "phi", "mass", "btagCSVV2", "jetId"))

    def take(self, events: np.ndarray) -> tuple[Events, np.ndarray]:
        """The ``events`` (sorted indices) with their jets (no leptons: the selection has used
        them), and the jets' flat indices in this chunk."""
        sub = Events(None)
        sub.array, sub.n = None, len(events)
        sub.run, sub.luminosityBlock, sub.event = (
            x[events] for x in (self.run, self.luminosityBlock, self.event))
        sub.jets, index = self.jets.take(events)
        return sub, index

    @cached_property
    def jet_pt64(self) -> np.ndarray:
        """Nominal jet pT in float64 (flat)."""
        return self.jets.pt.astype(np.float64)

    @cached_property
    def btagged(self) -> np.ndarray:
        """Per jet: btagCSVV2 > 0.5."""
        return self.jets.btagCSVV2 > BTAG_THRESHOLD


def one_lepton(ev: Events) -> np.ndarray:
    """Per-event mask: exactly one selected electron or muon (§2)."""
    e, m = ev.electrons, ev.muons
    e_ok = (e.pt > 30) & (np.abs(e.eta) < 2.1) & (e.cutBased == 4) & (e.sip3d < 4)
    m_ok = (
        (m.pt > 30) & (np.abs(m.eta) < 2.1) & m.tightId & (m.sip3d < 4) & (m.pfRelIso04_all < 0.15)
    )
    return (e.per_event(e_ok) + m.per_event(m_ok)) == 1


def jet_quality(ev: Events) -> np.ndarray:
    """Per-jet part of the selection no pT variation changes: |eta| < 2.4, (jetId & 4) != 0."""
    j = ev.jets
    return (np.abs(j.eta) < 2.4) & ((j.jetId & 4) != 0)


def candidates(ev: Events, lepton: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Per event: can enter a region under some jet-pT variation — one lepton, at least four
    jets passing the pT-independent cuts, one of them b-tagged. A variation only moves jets across
    the pT cut, so every region's events are among these; the variations run on them alone."""
    jets = ev.jets
    return lepton & (jets.per_event(quality) >= 4) & (jets.per_event(quality & ev.btagged) >= 1)


@dataclass
class RegionSelection:
    """The events of one region under one jet-pT variation (also the hook for extra fillers).

    ``event_mask`` selects the chunk's events in the region, ``observable`` is aligned with
    them. ``jet_index`` indexes the chunk's flat jet arrays with the selected jets of those
    events (event order, then the original jet order), ``jet_counts`` how many per event and
    ``jet_pt`` their (varied) pT in float64. :attr:`jets` gives them as an awkward array.
    """

    region: str
    pt_variation: str
    event_mask: np.ndarray
    observable: np.ndarray
    jet_index: np.ndarray
    jet_counts: np.ndarray
    jet_pt: np.ndarray
    events: Events

    @property
    def jet_starts(self) -> np.ndarray:
        return np.cumsum(self.jet_counts) - self.jet_counts

    def jet_field(self, field: str) -> np.ndarray:
        """A flat field of the selected jets (``pt`` is the varied pT)."""
        if field == "pt":
            return self.jet_pt
        return self.events.jets.fields[field][self.jet_index]

    @property
    def jets(self) -> ak.Array:
        """Selected jets per event: pt (varied), pt_nominal, eta, phi, mass, btagCSVV2, index."""
        j = self.events.jets
        fields = {
            "pt": self.jet_pt,
            "pt_nominal": j.pt[self.jet_index].astype(np.float64),
            **{f: j.fields[f][self.jet_index] for f in ("eta", "phi", "mass", "btagCSVV2")},
            "index": self.jet_index - j.offsets[j.event[self.jet_index]],
        }
        return ak.unflatten(ak.zip(fields), self.jet_counts)


def select_regions(
    ev: Events,
    jet_pt: np.ndarray,
    lepton: np.ndarray,
    quality: np.ndarray,
    pt_variation: str = "nominal",
) -> dict[str, RegionSelection]:
    """Jet selection with ``jet_pt`` (flat float64, possibly varied), then the two regions (§3).

    ``lepton`` is :func:`one_lepton` and ``quality`` :func:`jet_quality` of the same events
    (independent of the jet-pT variation, so callers compute them once).
    """
    jets = ev.jets
    jet_sel = (jet_pt > 30) & quality
    btag = ev.btagged
    n_jets = jets.per_event(jet_sel)
    n_b = jets.per_event(jet_sel & btag)
    base = lepton & (n_jets >= 4)
    out = {}
    for region, mask in (("4j1b", base & (n_b == 1)), ("4j2b", base & (n_b >= 2))):
        index = np.flatnonzero(jet_sel & mask[jets.event])
        counts = n_jets[mask]
        pt = jet_pt[index]
        if region == "4j1b":
            observable = ht(pt, counts)
        else:
            observable = m_bjj(
                pt, jets.eta[index], jets.phi[index], jets.mass[index], btag[index], counts
            )
        out[region] = RegionSelection(
            region, pt_variation, mask, observable, index, counts, pt, ev
        )
    return out


def in_chunk(regions: dict[str, RegionSelection], ev: Events, events: np.ndarray,
             jet_index: np.ndarray) -> dict[str, RegionSelection]:
    """Selections made on ``ev.take(events)`` (giving ``jet_index``), in terms of the chunk."""
    out = {}
    for region, sel in regions.items():
        mask = np.zeros(ev.n, dtype=bool)
        mask[events[sel.event_mask]] = True
        out[region] = RegionSelection(region, sel.pt_variation, mask, sel.observable,
                                      jet_index[sel.jet_index], sel.jet_counts, sel.jet_pt, ev)
    return out


def ht(pt: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-event scalar sum of the (varied) jet pT; ``pt`` flat, grouped by ``counts`` (> 0)."""
    if len(counts) == 0:
        return np.zeros(0)
    starts = np.cumsum(counts) - counts
    return np.add.reduceat(np.asarray(pt, dtype=np.float64), starts)


@cache
def _combinations(n: int) -> np.ndarray:
    """All 3-combinations of range(n) in ak.combinations / itertools order, shape (C, 3)."""
    return np.array(list(itertools.combinations(range(n), 3)), dtype=np.int64).reshape(-1, 3)


def m_bjj(pt, eta, phi, mass, btagged, counts) -> np.ndarray:
    """Per event: mass of the 3-jet combination of largest vector-sum pT with >= 1 b-tag.

    Combinations in ``ak.combinations`` order, the first maximum wins ties; four-vectors from
    the varied pT and the unvaried mass; m = sqrt(max(E² − |p|², 0)). Needs >= 3 jets and one
    b-tag per event (4j2b events have more).
    """
    pt = np.asarray(pt, dtype=np.float64)
    eta, phi, mass = (np.asarray(x, dtype=np.float64) for x in (eta, phi, mass))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = np.sqrt(px * px + py * py + pz * pz + mass * mass)
    starts = np.cumsum(counts) - counts
    out = np.zeros(len(counts))
    for n in np.unique(counts):
        events = np.flatnonzero(counts == n)
        idx = starts[events, None, None] + _combinations(int(n))[None]  # (E, C, 3)
        a, b, c = idx[..., 0], idx[..., 1], idx[..., 2]
        sx, sy = px[a] + px[b] + px[c], py[a] + py[b] + py[c]
        sz, se = pz[a] + pz[b] + pz[c], energy[a] + energy[b] + energy[c]
        sum_pt = np.where(btagged[a] | btagged[b] | btagged[c], np.sqrt(sx * sx + sy * sy), -1.0)
        best = np.argmax(sum_pt, axis=1)[:, None]
        m2 = np.take_along_axis(se * se - sx * sx - sy * sy - sz * sz, best, axis=1)[:, 0]
        out[events] = np.sqrt(np.maximum(m2, 0.0))
    return out
