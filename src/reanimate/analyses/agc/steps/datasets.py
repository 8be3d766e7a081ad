"""Step program ``datasets``: generate the AGC-like sample catalogue.

    python -m reanimate.analyses.agc.steps.datasets --samples OUTDIR [--events 20000] [--seed 42]
        [--compression zlib|lzma] [--signal_masses 500,750,...|none] [--events_per_file N]

Writes OUTDIR/catalogue.json and the ROOT files inside OUTDIR; deterministic (same arguments,
same bytes). The defaults are the flagship's (specs/agc-ttbar.yaml). Exit 0 on success; a user
error prints one line on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import sys

from reanimate.steps.interface import Flag, Interface, program_main

#: reanimate.datasets.writing.COMPRESSIONS, without importing uproot to declare the flags.
COMPRESSIONS = ("zlib", "lzma")

INTERFACE = Interface(
    prog="python -m reanimate.analyses.agc.steps.datasets",
    description=__doc__.split("\n")[0].replace("``", ""),
    flags=(
        Flag("events", "int", "parameter", default=20_000,
             help="ttbar nominal events; the other samples follow the real proportions"),
        Flag("seed", "int", "parameter", default=42, help="random seed; same seed, same bytes"),
        Flag("compression", "str", "parameter", default="zlib", choices=COMPRESSIONS,
             help="ROOT compression of the files"),
        Flag("signal_masses", "str", "parameter", default="500,750,1000,1500,2000,3000",
             help="Z'->ttbar masses in GeV, comma-separated ('none': no signal)"),
        Flag("events_per_file", "int", "parameter", default=20_000,
             help="split larger samples into files of at most this many events"),
        Flag("samples", "directory", "output",
             help="directory of the ROOT files and catalogue.json"),
    ),
)


def run(args: argparse.Namespace) -> None:
    from reanimate.analyses.agc.generate import generate, parse_masses

    generate(
        args.samples,
        events=args.events,
        seed=args.seed,
        compression=args.compression,
        signal_masses=parse_masses(args.signal_masses),
        events_per_file=args.events_per_file,
    )


def main(argv: list[str] | None = None) -> int:
    return program_main(INTERFACE, run, argv)


if __name__ == "__main__":
    sys.exit(program_main(INTERFACE, run))
