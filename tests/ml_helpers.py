"""Helpers of the ML tests: a generated ttbar catalogue, plain-Python reference features."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np


def generate_ttbar(out_dir: Path, events: int, seed: int = 1) -> Path:
    """Write ``out_dir/catalogue.json`` with one generated ttbar nominal file of ``events``."""
    from reanimate.analyses.agc import generate
    from reanimate.datasets.catalogue import Catalogue, FileEntry, SampleEntry, write_catalogue
    from reanimate.datasets.writing import write_events
    from reanimate.hashing import sha256_file

    out_dir.mkdir(parents=True, exist_ok=True)
    sample = next(
        s
        for s in generate.plan_samples(events, [])
        if (s.process, s.variation) == ("ttbar", "nominal")
    )
    columns = generate.generate_columns(sample, events, generate._rng(seed, sample, 0))
    name = "ttbar__nominal__000.root"
    scalars = {
        "run": np.ones(events, np.uint32),
        "luminosityBlock": np.ones(events, np.uint32),
        "event": np.arange(1, events + 1, dtype=np.uint64),
    }
    write_events(out_dir / name, scalars, columns, key=f"{seed}/{name}")
    entry = SampleEntry(
        nevts_total=events,
        xsec_pb=sample.xsec_pb,
        files=[FileEntry(path=name, nevts=events, sha256=sha256_file(out_dir / name))],
    )
    write_catalogue(Catalogue({"ttbar": {"nominal": entry}}), out_dir / "catalogue.json")
    return out_dir


def p4(pt, eta, phi, m):
    px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
    return px, py, pz, math.sqrt(px * px + py * py + pz * pz + m * m)


def mass(*vectors):
    px, py, pz, e = (sum(v[i] for v in vectors) for i in range(4))
    return math.sqrt(max(e * e - px * px - py * py - pz * pz, 0.0))


def dr(a, b):  # no phi wrapping, as the AGC reference
    return math.sqrt((a["eta"] - b["eta"]) ** 2 + (a["phi"] - b["phi"]) ** 2)


def reference_features(jets: list[dict], lep: dict) -> list[list[float]]:
    """Per event, per permutation (itertools order, W1 > W2), the 20 features in plain Python."""
    n = min(len(jets), 6)
    rows = []
    for w1, w2, bh, bl in itertools.product(range(n), repeat=4):
        if len({w1, w2, bh, bl}) < 4 or w1 < w2:
            continue
        j = [jets[w1], jets[w2], jets[bh], jets[bl]]
        v = [p4(x["pt"], x["eta"], x["phi"], x["mass"]) for x in j]
        vl = p4(lep["pt"], lep["eta"], lep["phi"], lep["mass"])
        sx, sy = v[0][0] + v[1][0] + v[2][0], v[0][1] + v[1][1] + v[2][1]
        rows.append(
            [
                dr(lep, j[3]),
                dr(j[0], j[1]),
                dr(j[0], j[2]),
                dr(j[1], j[2]),
                mass(vl, v[3]),
                mass(v[0], v[1]),
                mass(v[0], v[1], v[2]),
                math.hypot(sx, sy),
            ]
            + [x["pt"] for x in j]
            + [x["btag"] for x in j]
            + [x["qgl"] for x in j]
        )
    return rows
