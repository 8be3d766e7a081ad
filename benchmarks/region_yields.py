"""Print the 4j1b / 4j2b yields of generated samples beside the real-data reference.

    python benchmarks/region_yields.py [CATALOGUE | --events N [--seed S]]
    (default: generate the default samples, seed 1, in a temporary directory)

Uses the plain reference selection of tests/datasets_helpers.py; sum of weights xsec·L/N in the
25 in-range bins (50–550 GeV), L = 3378 /pb. Prints a Markdown table (docs/samples.md has one).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from datasets_helpers import REFERENCE, sample_yields  # noqa: E402

from reanimate.analyses.agc.generate import DEFAULT_EVENTS, REAL_EVENTS, generate  # noqa: E402
from reanimate.datasets.catalogue import load_catalogue, resolve  # noqa: E402


def table(catalogue_path: Path) -> str:
    catalogue = load_catalogue(catalogue_path)
    rows = [
        "| process | variation | events | 4j1b events (frac) | 4j1b yield | ref | "
        "4j2b events (frac) | 4j2b yield | ref |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for process, variation, entry in sorted(catalogue.samples(), key=_order):
        paths = [resolve(catalogue_path, f.path) for f in entry.files]
        y = sample_yields(paths, entry.xsec_pb, entry.nevts_total)
        ref = REFERENCE.get(process, ("–", "–")) if variation == "nominal" else ("–", "–")
        cells = []
        for i, region in enumerate(("4j1b", "4j2b")):
            r = y[region]
            cells += [
                f"{r['events']} ({100 * r['fraction']:.2f} %)",
                f"{r['yield']:.4g}",
                f"{ref[i]}",
            ]
        rows.append(
            f"| {process} | {variation} | {entry.nevts_total} | " + " | ".join(cells) + " |"
        )
    return "\n".join(rows)


def _order(item):
    process, variation, _ = item
    agc = list(REAL_EVENTS)
    if (process, variation) in agc:
        return (0, agc.index((process, variation)), 0.0)
    return (1, 0, float(process.removeprefix("zprime_")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("catalogue", nargs="?", type=Path)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.catalogue is not None:
        print(table(args.catalogue))
        return
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, events=args.events, seed=args.seed)
        print(table(Path(tmp) / "catalogue.json"))


if __name__ == "__main__":
    main()
