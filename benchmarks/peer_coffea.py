"""The AGC ttbar histogram stage written as a coffea processor: the peer of benchmarks/peer.py.

Runs inside the throw-away coffea virtual environment that peer.py makes (coffea, hist, uproot,
awkward; nothing of reanimate is imported), not in the project's own:

    PEER_VENV/bin/python benchmarks/peer_coffea.py --files A.root [B.root ...] --out OUT.root
        [--process ttbar] [--xsec 729.84] [--lumi 3378] [--chunk_size 200000] [--seed 42]

``coffea.processor.Runner`` with the ``IterativeExecutor`` and ``NanoAODSchema`` (NanoEvents,
lazily read branches) runs :class:`AGCProcessor` over the files as one nominal sample, the
histograms are written as TH1D ``{region}_{process}[_{variation}]`` (the names our stage uses),
and one JSON line on stdout gives the figures of the run: events, and the CPU and wall seconds
of the pre-processing (coffea reads each file's metadata) and of the processing itself.

The selection, the systematics and the histograms are those of docs/agc-analysis.md §2–§6, in
coffea's idiom (jagged arrays, ``ak.combinations``, Lorentz-vector behaviours). Where the
reference AGC leaves room, it does what our stage does, so that the two can be compared bin by
bin: the varied jet pT and the observables in float64 (eta, phi, mass cast from the float32
branches), and the jet-resolution smearing derived from the event identity, not drawn — the same
counter-based splitmix64 hash of (seed, run, luminosityBlock, event, jet index), Box–Muller, and
rounding to 2^-24, re-implemented here in plain numpy.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import warnings

import awkward as ak
import hist
import numpy as np
from coffea import processor
from coffea.nanoevents import NanoAODSchema
from coffea.nanoevents.methods import vector

NBINS, LOW, HIGH = 25, 50.0, 550.0
BTAG = 0.5

# --- deterministic jet smearing (the same numbers as reanimate.analyses.agc.systematics) ---
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def _unit(bits: np.ndarray) -> np.ndarray:
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def smearing(events, seed: int, wanted: ak.Array) -> ak.Array:
    """Per jet: r ~ Normal(1, 0.05) from the event identity and the jet's index; 1 where
    ``wanted`` (a jagged jet mask) is false — those jets cannot pass the selection anyway."""
    key = _mix(np.full(len(events), seed, dtype=np.uint64))
    for part in (events.run, events.luminosityBlock, events.event):
        key = _mix(key ^ ak.to_numpy(part).astype(np.uint64))
    counts = ak.to_numpy(ak.num(wanted, axis=1))
    flat = ak.to_numpy(ak.flatten(wanted))
    index = ak.to_numpy(ak.flatten(ak.local_index(wanted, axis=1)))[flat]
    with np.errstate(over="ignore"):
        base = np.repeat(key, counts)[flat] + (2 * index).astype(np.uint64) * _GOLDEN
        u1, u2 = _unit(_mix(base)), _unit(_mix(base + _GOLDEN))
    z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    r = np.ones(len(flat))
    r[flat] = np.round((1.0 + 0.05 * z) * 2.0**24) / 2.0**24
    return ak.unflatten(r, counts)


class AGCProcessor(processor.ProcessorABC):
    """Histograms HT (4j1b) and m_bjj (4j2b) of one sample under every jet-pT variation and
    b-tag weight variation; the sample's process, cross section, luminosity and total entries
    come with the fileset's metadata."""

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed

    @staticmethod
    def _histogram() -> hist.Hist:
        return hist.Hist(
            hist.axis.Regular(NBINS, LOW, HIGH, name="observable"),
            hist.axis.StrCategory([], name="variation", growth=True),
            storage=hist.storage.Weight(),
        )

    def process(self, events):
        meta = events.metadata
        weight = meta["xsec"] * meta["lumi"] / meta["nevts"]
        out = {"4j1b": self._histogram(), "4j2b": self._histogram(), "events": len(events)}

        el, mu, jets = events.Electron, events.Muon, events.Jet
        el_ok = (el.pt > 30) & (abs(el.eta) < 2.1) & (el.cutBased == 4) & (el.sip3d < 4)
        mu_ok = ((mu.pt > 30) & (abs(mu.eta) < 2.1) & mu.tightId & (mu.sip3d < 4)
                 & (mu.pfRelIso04_all < 0.15))
        one_lepton = (ak.sum(el_ok, axis=1) + ak.sum(mu_ok, axis=1)) == 1
        quality = (abs(jets.eta) < 2.4) & ((jets.jetId & 4) != 0)
        btag = jets.btagCSVV2 > BTAG
        pt = ak.values_astype(jets.pt, np.float64)
        kinematics = {f: ak.values_astype(jets[f], np.float64) for f in ("eta", "phi", "mass")}
        variations = {
            "nominal": pt,
            "pt_scale_up": pt * 1.03,
            "pt_res_up": pt * smearing(events, self.seed, quality),
        }
        for name, varied in variations.items():
            selected = (varied > 30) & quality
            n_jets = ak.sum(selected, axis=1)
            n_b = ak.sum(selected & btag, axis=1)
            base = one_lepton & (n_jets >= 4)
            for region, mask in (("4j1b", base & (n_b == 1)), ("4j2b", base & (n_b >= 2))):
                keep = selected[mask]
                jet_pt = varied[mask][keep]
                if region == "4j1b":
                    observable = ak.sum(jet_pt, axis=1)
                else:
                    fields = {f: k[mask][keep] for f, k in kinematics.items()}
                    p4 = ak.zip({"pt": jet_pt, **fields, "btag": btag[mask][keep]},
                                with_name="PtEtaPhiMLorentzVector", behavior=vector.behavior)
                    tri = ak.combinations(p4, 3, fields=["a", "b", "c"])
                    total = tri.a + tri.b + tri.c
                    with_b = tri.a.btag | tri.b.btag | tri.c.btag
                    best = ak.argmax(ak.where(with_b, total.pt, -1.0), axis=1, keepdims=True)
                    observable = ak.flatten(total[best].mass)
                w = np.full(len(observable), weight)
                fills = {name: w}
                if name == "nominal":  # b-tag weight variations on the nominal selection
                    first4 = ak.to_numpy(jet_pt[:, :4])  # nominal pT of the first 4 jets
                    for i in range(4):
                        scale = 0.075 * first4[:, i] / 50.0
                        fills[f"btag_var_{i}_up"] = w * (1.0 + scale)
                        fills[f"btag_var_{i}_down"] = w * (1.0 - scale)
                observable = ak.to_numpy(observable)
                for variation, ws in fills.items():
                    out[region].fill(observable=observable, variation=variation, weight=ws)
        return out

    def postprocess(self, accumulator):
        return accumulator


def write(path: str, output: dict, process: str) -> int:
    """The histograms as TH1D, named as our stage names them; returns how many."""
    import uproot

    count = 0
    with uproot.recreate(path) as f:
        for region in ("4j1b", "4j2b"):
            h = output[region]
            for variation in h.axes["variation"]:
                one = h[:, variation]
                if one.values(flow=True).sum() == 0:
                    continue
                suffix = "" if variation == "nominal" else f"_{variation}"
                f[f"{region}_{process}{suffix}"] = one
                count += 1
    return count


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--files", nargs="+", required=True)
    p.add_argument("--out", required=True, help="histograms (ROOT)")
    p.add_argument("--process", default="ttbar")
    p.add_argument("--xsec", type=float, default=729.84, help="pb")
    p.add_argument("--lumi", type=float, default=3378.0, help="/pb")
    p.add_argument("--chunk_size", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    # the generated files lack the cross-reference branches NanoAODSchema looks for
    warnings.filterwarnings("ignore", message="Missing cross-reference index")

    runner = processor.Runner(
        executor=processor.IterativeExecutor(status=False),
        schema=NanoAODSchema,
        chunksize=args.chunk_size,
    )
    fileset = {args.process: {"files": {f: "Events" for f in args.files}, "metadata": {}}}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    chunks = list(runner.preprocess(fileset))
    nevts = sum(c.entrystop - c.entrystart for c in chunks)
    meta = {"process": args.process, "xsec": args.xsec, "lumi": args.lumi, "nevts": nevts}
    chunks = [dataclasses.replace(c, usermeta={**(c.usermeta or {}), **meta}) for c in chunks]
    cpu1, wall1 = time.process_time(), time.perf_counter()
    output = runner.run(chunks, AGCProcessor(args.seed))["out"]
    cpu2, wall2 = time.process_time(), time.perf_counter()
    written = write(args.out, output, args.process)
    print(json.dumps({
        "events": output["events"], "chunks": len(chunks), "histograms": written,
        "pre_cpu_s": cpu1 - cpu0, "pre_wall_s": wall1 - wall0,
        "cpu_s": cpu2 - cpu1, "wall_s": wall2 - wall1,
    }))


if __name__ == "__main__":
    sys.exit(main())
