"""Step program: the AGC HistFactory model as a pyhf workspace and an HS3 document.

    python -m reanimate.steps.statmodel --histograms histograms.root
        --workspace workspace.json --hs3 model.hs3.json

Rebins the AGC histograms to the fit binning (11 x 40 GeV from 110 GeV), builds the model of
agc-analysis.md section 10 (reanimate.steps.agc.statmodel_config), checks that pyhf accepts it,
and writes it twice: pyhf JSON and HS3 JSON (converted by reanimate.statistics.hs3, with the
real bin edges). Same histograms, same bytes. User errors: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse

from reanimate.steps._program import Parser, main


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m reanimate.steps.statmodel", description=__doc__.split("\n")[0])
    p.add_argument("--histograms", required=True, help="histograms.root of the AGC stage")
    p.add_argument("--workspace", required=True, help="output pyhf workspace (JSON)")
    p.add_argument("--hs3", required=True, help="output HS3 document (JSON)")
    return p


def build(histograms: str) -> tuple[dict, dict]:
    """(pyhf workspace, HS3 document) of the AGC model from a histograms.root."""
    from reanimate.statistics import histfactory, hs3
    from reanimate.steps.agc import histfile, statmodel_config

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


if __name__ == "__main__":
    main(parser(), run)
