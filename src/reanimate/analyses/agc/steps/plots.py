"""Step program: the figures physicists expect of the AGC analysis (CMS style, PNG and PDF).

    python -m reanimate.analyses.agc.steps.plots --histograms histograms.root
        --workspace workspace.json --fit fit.json --plots plots/
        [--histograms_ml histograms_ml.root] [--report statmodel_report.json]

Writes into the directory --plots (created): stacked_4j1b (HT) and stacked_4j2b (m_bjj) with
the pseudo-data; ttbar_btag_variations_4j1b; ttbar_jet_energy_variations_4j2b; ml_features
(the 20 BDT features, with --histograms_ml); pulls; prefit_4j1b, prefit_4j2b, postfit_4j1b,
postfit_4j2b (stacked model, data, uncertainty band, data/model panel). Each as .png and .pdf,
byte-reproducible. With more than one CPU, the figures are drawn in forked processes (the ML
figure, half the work, in its own), each figure wholly in one, so the bytes are those drawn in
sequence. User errors: one line on stderr, exit 2.
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


MAX_PROCESSES = 4  # 10 figures, one of them half the work: more processes gain little


def run(args: argparse.Namespace) -> list[str]:
    from reanimate.analyses.agc import histfile, plotting

    outdir = Path(args.plots)
    outdir.mkdir(parents=True, exist_ok=True)
    processes = _processes()
    if processes == 1:  # in sequence: inputs read first, figures in order
        hists = histfile.read_histograms(args.histograms)
        ml = histfile.read_histograms(args.histograms_ml) if args.histograms_ml else None
        jobs = _jobs(args, outdir, hists)
        if ml is not None:
            jobs.insert(4, (plotting.ml_features, (ml, outdir)))
        return [name for fn, a in jobs for name in fn(*a)]
    import multiprocessing

    import uproot  # noqa: F401 - imported once, before the fork, as matplotlib and mplhep

    plotting._plt()
    pool = multiprocessing.get_context("fork").Pool(processes - 1)
    try:
        # the ML figure (about half the work) in a process of its own, started first
        ml = pool.apply_async(_ml_figure, (args.histograms_ml, outdir)) if args.histograms_ml \
            else None
        jobs = _jobs(args, outdir, histfile.read_histograms(args.histograms))
        spare = processes - 1 - (ml is not None)  # workers sharing the rest with this one
        results = []
        for i, (fn, a) in enumerate(jobs):
            if ml is not None and ml.ready() and not ml.successful():
                break  # its error is raised below, without drawing on
            results.append(pool.apply_async(fn, a) if spare and i % (spare + 1) else fn(*a))
        if ml is not None:
            results.insert(4, ml)
        written = [name for r in results for name in (r if isinstance(r, list) else r.get())]
        pool.close()
        return written
    finally:
        pool.terminate()  # at once on an error; after close(), the workers are done already
        pool.join()


def _processes() -> int:
    """Processes to draw in: one per CPU of ours (at most MAX_PROCESSES), 1 without fork.

    Each figure is drawn entirely in one process, from the same inputs and the same
    matplotlib state as when drawn in sequence, so the bytes do not depend on the split.
    """
    import multiprocessing
    import os

    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cpus = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1)
    return max(1, min(cpus, MAX_PROCESSES))


def _ml_figure(path: str, outdir: Path) -> list[str]:
    from reanimate.analyses.agc import histfile, plotting

    return plotting.ml_features(histfile.read_histograms(path), outdir)


def _jobs(args: argparse.Namespace, outdir: Path, hists: dict) -> list[tuple]:
    """Every figure but the ML one as (function, arguments), in the order they are written."""
    import numpy as np

    from reanimate.analyses.agc import plotting
    from reanimate.analyses.agc.statmodel_config import FIT_EDGES
    from reanimate.errors import ReanimateError
    from reanimate.statistics import fitting, jsonio, yields

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
    for region in ("4j1b", "4j2b"):
        if f"{region}_ttbar" not in hists:
            raise ReanimateError(f"{args.histograms}: histogram {region}_ttbar not found")
    jobs = [(plotting.stacked, (hists, region, outdir, args.origin)) for region in ("4j1b", "4j2b")]
    jobs += [(plotting.btag_variations, (hists, outdir, args.origin)),
             (plotting.jet_energy_variations, (hists, outdir, args.origin)),
             (plotting.pulls, (fit, outdir))]
    for stage, per_channel in (("pre", yields.prefit(model, data)),
                               ("post", yields.postfit(model, data, fit))):
        for ch in per_channel:
            n = len(ch.total)
            edges = channel_edges.get(ch.channel)
            if edges is None or len(edges) != n + 1:
                edges = np.asarray(FIT_EDGES) if n == len(FIT_EDGES) - 1 else np.arange(n + 1.0)
            jobs.append((plotting.data_model, (ch, edges, stage, outdir, args.origin)))
    return jobs


def main(argv: list[str] | None = None) -> int:
    return program_main(INTERFACE, run, argv)


if __name__ == "__main__":
    sys.exit(program_main(INTERFACE, run))
