"""Step program: the AGC HistFactory model as a pyhf workspace and an HS3 document.

    python -m reanimate.analyses.agc.steps.statmodel --histograms histograms.root
        --workspace workspace.json --hs3 model.hs3.json

Rebins the AGC histograms to the fit binning (11 x 40 GeV from 110 GeV), builds the model of
docs/agc-analysis.md §10 (reanimate.analyses.agc.statmodel_config), checks that pyhf accepts it,
and writes it twice: pyhf JSON and HS3 JSON (converted by reanimate.statistics.hs3, with the
real bin edges). Same histograms, same bytes. User errors: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys

from reanimate.steps.interface import Flag, Interface, program_main

INTERFACE = Interface(
    prog="python -m reanimate.analyses.agc.steps.statmodel",
    description=__doc__.split("\n")[0],
    flags=(
        Flag("histograms", "file", "input", help="histograms.root of the AGC stage"),
        Flag("workspace", "file", "output", help="pyhf workspace (JSON)"),
        Flag("hs3", "file", "output", help="HS3 document (JSON)"),
    ),
)


def parser() -> argparse.ArgumentParser:
    return INTERFACE.parser()


def build(histograms: str) -> tuple[dict, dict]:
    """(pyhf workspace, HS3 document) of the AGC model from a histograms.root."""
    from reanimate.analyses.agc import histfile, statmodel_config
    from reanimate.statistics import histfactory, hs3

    config = statmodel_config.config()
    workspace = histfactory.build_workspace(
        config, histfile.lookup(histfile.read_histograms(histograms))
    )
    histfactory.validate(workspace)
    edges = {ch.name: list(ch.edges) for ch in config.channels}
    return workspace, hs3.pyhf_to_hs3(workspace, axes=edges)


def run(args: argparse.Namespace) -> None:
    from reanimate.statistics import jsonio

    workspace, doc = build(args.histograms)
    jsonio.write(args.workspace, workspace)
    jsonio.write(args.hs3, doc)


def main(argv: list[str] | None = None) -> int:
    return program_main(INTERFACE, run, argv)


if __name__ == "__main__":
    sys.exit(program_main(INTERFACE, run))
