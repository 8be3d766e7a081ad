"""Step program: the figures physicists expect of the AGC analysis (CMS style, PNG and PDF).

    python -m reanimate.steps.plots --histograms histograms.root --workspace workspace.json
        --fit fit.json --plots plots/ [--histograms_ml histograms_ml.root]

Writes into the directory --plots (created): stacked_4j1b (HT) and stacked_4j2b (m_bjj) with
the pseudo-data; ttbar_btag_variations_4j1b; ttbar_jet_energy_variations_4j2b; ml_features
(the 20 BDT features, with --histograms_ml); pulls; prefit_4j1b, prefit_4j2b, postfit_4j1b,
postfit_4j2b (stacked model, data, uncertainty band, data/model panel). Each as .png and .pdf,
byte-reproducible. User errors: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reanimate.steps._program import Parser, main


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m reanimate.steps.plots", description=__doc__.split("\n")[0])
    p.add_argument("--histograms", required=True, help="histograms.root of the AGC stage")
    p.add_argument("--workspace", required=True, help="pyhf workspace (JSON)")
    p.add_argument("--fit", required=True, help="fit results (JSON) of the fit step")
    p.add_argument("--plots", required=True, help="output directory (created)")
    p.add_argument("--histograms_ml", default=None, help="histograms_ml.root (ML features)")
    return p


def run(args: argparse.Namespace) -> list[str]:
    import numpy as np

    from reanimate.errors import ReanimateError
    from reanimate.statistics import fitting, jsonio, yields
    from reanimate.steps.agc import histfile, plotting
    from reanimate.steps.agc.statmodel_config import FIT_EDGES

    hists = histfile.read_histograms(args.histograms)
    ml = histfile.read_histograms(args.histograms_ml) if args.histograms_ml else None
    workspace = jsonio.read(args.workspace, "workspace")
    fit = jsonio.read(args.fit, "fit results")
    if not isinstance(fit, dict) or "parameters" not in fit or "correlation" not in fit:
        raise ReanimateError(f"{args.fit}: not fit results of the fit step")
    model, data = fitting.load_model(workspace)
    outdir = Path(args.plots)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for region in ("4j1b", "4j2b"):
        if f"{region}_ttbar" not in hists:
            raise ReanimateError(f"{args.histograms}: histogram {region}_ttbar not found")
        written += plotting.stacked(hists, region, outdir)
    written += plotting.btag_variations(hists, outdir)
    written += plotting.jet_energy_variations(hists, outdir)
    if ml is not None:
        written += plotting.ml_features(ml, outdir)
    written += plotting.pulls(fit, outdir)
    for stage, per_channel in (("pre", yields.prefit(model, data)),
                               ("post", yields.postfit(model, data, fit))):
        for ch in per_channel:
            n = len(ch.total)
            edges = np.asarray(FIT_EDGES) if n == len(FIT_EDGES) - 1 else np.arange(n + 1.0)
            written += plotting.data_model(ch, edges, stage, outdir)
    return written


if __name__ == "__main__":
    main(parser(), run)
