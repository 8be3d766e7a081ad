"""Step program: the figures physicists expect of the AGC analysis (CMS style, PNG and PDF).

    python -m reanimate.analyses.agc.steps.plots --histograms histograms.root
        --workspace workspace.json --fit fit.json --plots plots/
        [--histograms_ml histograms_ml.root] [--report statmodel_report.json]

Writes into the directory --plots (created): stacked_4j1b (HT) and stacked_4j2b (m_bjj) with
the pseudo-data; ttbar_btag_variations_4j1b; ttbar_jet_energy_variations_4j2b; ml_features
(the 20 BDT features, with --histograms_ml); pulls; prefit_4j1b, prefit_4j2b, postfit_4j1b,
postfit_4j2b (stacked model, data, uncertainty band, data/model panel). Each as .png and .pdf,
byte-reproducible. User errors: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reanimate.steps.interface import Flag, Interface, program_main

INTERFACE = Interface(
    prog="python -m reanimate.analyses.agc.steps.plots",
    description=__doc__.split("\n")[0],
    flags=(
        Flag("histograms", "file", "input", help="histograms.root of the AGC stage"),
        Flag("histograms_ml", "file", "input", default=None,
             help="histograms_ml.root of the AGC stage (the ML feature plots)"),
        Flag("workspace", "file", "input", help="pyhf workspace (JSON)"),
        Flag("fit", "file", "input", help="fit results (JSON) of the fit step"),
        Flag("report", "file", "input", default=None,
             help="statmodel_report.json: the channels' bin edges after merging (without it, "
                  "the declared 11 x 40 GeV binning when it fits, else bin numbers)"),
        Flag("origin", "str", "parameter", default="generated",
             choices=("generated", "cms-open-data"),
             help="what the inputs are, for the figures' label: generated (AGC-like samples, "
                  "labelled as such) or cms-open-data (the real CMS files: 'CMS Open Data')"),
        Flag("plots", "directory", "output", help="directory of the figures (created)"),
    ),
)


def run(args: argparse.Namespace) -> list[str]:
    import numpy as np

    from reanimate.analyses.agc import histfile, plotting
    from reanimate.analyses.agc.statmodel_config import FIT_EDGES
    from reanimate.errors import ReanimateError
    from reanimate.statistics import fitting, jsonio, yields

    hists = histfile.read_histograms(args.histograms)
    ml = histfile.read_histograms(args.histograms_ml) if args.histograms_ml else None
    workspace = jsonio.read(args.workspace, "workspace")
    fit = jsonio.read(args.fit, "fit results")
    if not isinstance(fit, dict) or "parameters" not in fit or "correlation" not in fit:
        raise ReanimateError(f"{args.fit}: not fit results of the fit step")
    model, data = fitting.load_model(workspace)
    channel_edges = {}
    if args.report:
        report = jsonio.read(args.report, "statmodel report")
        try:
            channel_edges = {c["name"]: np.asarray(c["edges"], float) for c in report["channels"]}
        except (TypeError, KeyError) as exc:
            raise ReanimateError(f"{args.report}: not a statmodel report ({exc})") from None
    outdir = Path(args.plots)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for region in ("4j1b", "4j2b"):
        if f"{region}_ttbar" not in hists:
            raise ReanimateError(f"{args.histograms}: histogram {region}_ttbar not found")
        written += plotting.stacked(hists, region, outdir, args.origin)
    written += plotting.btag_variations(hists, outdir, args.origin)
    written += plotting.jet_energy_variations(hists, outdir, args.origin)
    if ml is not None:
        written += plotting.ml_features(ml, outdir)
    written += plotting.pulls(fit, outdir)
    for stage, per_channel in (("pre", yields.prefit(model, data)),
                               ("post", yields.postfit(model, data, fit))):
        for ch in per_channel:
            n = len(ch.total)
            edges = channel_edges.get(ch.channel)
            if edges is None or len(edges) != n + 1:
                edges = np.asarray(FIT_EDGES) if n == len(FIT_EDGES) - 1 else np.arange(n + 1.0)
            written += plotting.data_model(ch, edges, stage, outdir, args.origin)
    return written


def main(argv: list[str] | None = None) -> int:
    return program_main(INTERFACE, run, argv)


if __name__ == "__main__":
    sys.exit(program_main(INTERFACE, run))
