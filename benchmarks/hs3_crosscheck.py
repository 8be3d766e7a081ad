"""Cross-check the AGC HS3 document with pyhs3: its NLL against pyhf's at 3 parameter points.

    python benchmarks/hs3_crosscheck.py [--histograms histograms.root]

Slow (pyhs3 0.4.2 compiles the 34-parameter model with pytensor: minutes). Prints the NLLs,
the largest relative difference, and the time spent. Same code as the slow test
tests/test_stat_hs3.py::test_pyhs3_nll_equals_pyhf_on_agc_model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--histograms", default=None)
    args = p.parse_args()
    sys.path.insert(0, str(TESTS))
    import test_stat_hs3 as t
    from stat_helpers import write_agc_histograms

    from reanimate.analyses.agc.steps import statmodel

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hists = args.histograms or str(write_agc_histograms(tmp / "histograms.root"))
        workspace, doc, _ = statmodel.build(hists)
        expected, points = t.pyhf_points(workspace, doc)
        start = time.perf_counter()
        got = t.pyhs3_nll(doc, points, tmp, timeout=3600)
        took = time.perf_counter() - start
    worst = max(abs(g - e) / abs(e) for g, e in zip(got, expected, strict=True))
    for e, g in zip(expected, got, strict=True):
        print(f"pyhf {e:.12f}   pyhs3 {g:.12f}")
    print(f"largest relative difference {worst:.2e}; pyhs3 build+compile+eval {took:.0f} s")


if __name__ == "__main__":
    main()
