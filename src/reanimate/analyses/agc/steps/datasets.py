"""Step program ``datasets``: generate the AGC-like sample catalogue.

    python -m reanimate.steps.datasets --events N --seed S --compression zlib --samples OUTDIR
        [--signal_masses 500,750,...] [--events_per_file N]

Writes OUTDIR/catalogue.json and the ROOT files inside OUTDIR; deterministic (same arguments,
same bytes). Exit 0 on success; a user error prints one line on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import sys

from reanimate.errors import ReanimateError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reanimate.steps.datasets")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--compression", default="zlib")
    parser.add_argument("--samples", required=True, help="output directory")
    parser.add_argument("--signal_masses", default="500,750,1000,1500,2000,3000")
    parser.add_argument("--events_per_file", type=int, default=20_000)
    args = parser.parse_args(argv)
    try:
        from reanimate.datasets.commands import parse_masses
        from reanimate.steps.agc.generate import generate

        generate(
            args.samples,
            events=args.events,
            seed=args.seed,
            compression=args.compression,
            signal_masses=parse_masses(args.signal_masses),
            events_per_file=args.events_per_file,
        )
    except ReanimateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
