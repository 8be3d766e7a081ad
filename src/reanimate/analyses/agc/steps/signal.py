"""Step program (a signal recipe): generate one Z'->ttbar signal sample with its catalogue.

    python -m reanimate.analyses.agc.steps.signal --model zprime --mass 1500 [--width 0.03]
        [--events 10000] [--seed 42] [--xsec_pb X] [--name signal] [--compression zlib]
        [--events_per_file 20000] --samples OUTDIR

Writes OUTDIR/catalogue.json with one process NAME (variation nominal), its ROOT files in the
NanoAOD schema and OUTDIR/signal.json (the recipe). The cross section is the generator's
zprime_xsec_pb(mass) times the decay filter's efficiency, unless --xsec_pb gives the filtered
one. Deterministic: the same flags give the same bytes. The histograms step reads it with
`--processes NAME`. User errors: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys

from reanimate.steps.interface import Flag, Interface, program_main

MODELS = ("zprime",)  # reanimate.analyses.agc.signal.MODELS, without importing numpy
COMPRESSIONS = ("zlib", "lzma")

INTERFACE = Interface(
    prog="python -m reanimate.analyses.agc.steps.signal",
    description=__doc__.split("\n")[0],
    flags=(
        Flag("model", "str", "parameter", choices=MODELS, help="the signal model"),
        Flag("mass", "float", "parameter", help="resonance mass in GeV (400-10000)"),
        Flag("width", "float", "parameter", default=0.03, help="relative width Gamma/M"),
        Flag("events", "int", "parameter", default=10_000, help="events to generate"),
        Flag("seed", "int", "parameter", default=42, help="random seed; same seed, same bytes"),
        Flag("xsec_pb", "float", "parameter", default=None,
             help="the catalogue's (filtered) cross section in pb (default: the generator's "
                  "zprime_xsec_pb(mass) x filter efficiency)"),
        Flag("name", "str", "parameter", default="signal", help="the process name"),
        Flag("compression", "str", "parameter", default="zlib", choices=COMPRESSIONS,
             help="ROOT compression of the files"),
        Flag("events_per_file", "int", "parameter", default=20_000,
             help="split into files of at most this many events"),
        Flag("samples", "directory", "output",
             help="directory of the ROOT files, catalogue.json and signal.json"),
    ),
)


def run(args: argparse.Namespace) -> str:
    from reanimate.analyses.agc.signal import generate_signal

    recipe = generate_signal(
        args.samples, model=args.model, mass=args.mass, width=args.width, events=args.events,
        seed=args.seed, xsec_pb=args.xsec_pb, name=args.name, compression=args.compression,
        events_per_file=args.events_per_file,
    )
    return (f"{recipe['name']}: {recipe['model']} m = {recipe['mass']:g} GeV, "
            f"width {recipe['width']:g}, {recipe['events']} events, "
            f"xsec {recipe['xsec_pb']:.6g} pb")


def main(argv: list[str] | None = None) -> int:
    return program_main(INTERFACE, run, argv)


if __name__ == "__main__":
    sys.exit(program_main(INTERFACE, run))
