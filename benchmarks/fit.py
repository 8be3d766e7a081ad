"""Wall time of the AGC fit (pyhf numpy backend + iminuit, MIGRAD + HESSE).

    python benchmarks/fit.py [--workspace workspace.json] [--repeat 100]

Without --workspace it builds the AGC model from generated histograms (tests/stat_helpers.py).
Prints the first fit (cold: includes pyhf's model setup caches) and the mean of --repeat warm
fits on the same model. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def workspace(path: str | None) -> dict:
    if path:
        return json.loads(Path(path).read_text())
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from stat_helpers import write_agc_histograms

    from reanimate.analyses.agc.steps import statmodel

    with tempfile.TemporaryDirectory() as tmp:
        return statmodel.build(str(write_agc_histograms(Path(tmp) / "histograms.root")))[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workspace", default=None)
    p.add_argument("--repeat", type=int, default=100)
    args = p.parse_args()
    from reanimate.statistics import fitting

    ws = workspace(args.workspace)
    model, data = fitting.load_model(ws)
    t = time.perf_counter()
    first = fitting.fit_model(model, data)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(args.repeat):
        res = fitting.fit_model(model, data)
    warm = time.perf_counter() - t
    poi = model.config.poi_index
    npar = len(first.bestfit)
    print(f"model: {npar} parameters, {model.config.nmaindata} bins; "
          f"POI {model.config.poi_name} = {res.bestfit[poi]:.6f} +- {res.errors[poi]:.6f}")
    print(f"one fit (first):  {cold:.3f} s")
    print(f"{args.repeat} fits (warm): {warm:.3f} s  ({warm / args.repeat:.3f} s per fit)")


if __name__ == "__main__":
    main()
