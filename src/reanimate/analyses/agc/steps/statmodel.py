"""Step program: the AGC HistFactory model as a pyhf workspace and an HS3 document.

    python -m reanimate.analyses.agc.steps.statmodel --histograms histograms.root
        --workspace workspace.json --hs3 model.hs3.json [--report statmodel_report.json]
        [--max_mc_rel_error 0.2] [--prune_norm 0.005] [--prune_shape 0.005]
        [--shape_significance 0] [--staterror_threshold 0.05] [--smoothing true]
        [--empty_variation drop|floor] [--signal PROCESS [--signal_sample signal]]

Rebins the AGC histograms to the fit binning (11 x 40 GeV from 110 GeV), builds the model of
docs/agc-analysis.md §10 (reanimate.analyses.agc.statmodel_config) with the template
treatments of docs/statistics.md (bins merged where the MC is thin, empty variations, smoothing,
pruning, staterror threshold; the defaults are the flags' defaults, 0 turns merging or the
significance test off), checks that pyhf accepts it, and writes it twice: pyhf JSON and HS3
JSON (converted by reanimate.statistics.hs3, with the real bin edges), plus the report of every
treatment decision (`reanimate statmodel report`). With `--signal PROCESS` the histograms
`{region}_PROCESS` enter as the sample `--signal_sample` with POI `mu_signal` (ttbar_norm a free
normfactor; the backgrounds' part exactly the model without signal, which
`reanimate.analyses.agc.steps.signal_patch` patches into the same workspace). Same histograms,
same bytes. User errors: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys

from reanimate.errors import ReanimateError
from reanimate.statistics.treatments import EMPTY_RULES
from reanimate.statistics.treatments import Treatments as _Treatments
from reanimate.steps.interface import Flag, Interface, program_main

_T = _Treatments()

INTERFACE = Interface(
    prog="python -m reanimate.analyses.agc.steps.statmodel",
    description=__doc__.split("\n")[0],
    flags=(
        Flag("histograms", "file", "input", help="histograms.root of the AGC stage"),
        Flag("workspace", "file", "output", help="pyhf workspace (JSON)"),
        Flag("hs3", "file", "output", help="HS3 document (JSON)"),
        Flag("report", "file", "output", default=None,
             help="the treatment decisions (JSON; shown by `reanimate statmodel report`)"),
        Flag("max_mc_rel_error", "float", "parameter", default=_T.max_mc_rel_error,
             help="merge bins until each has at most this relative MC uncertainty (0: off)"),
        Flag("prune_norm", "float", "parameter", default=_T.prune_norm,
             help="drop a normsys whose effect is below this"),
        Flag("prune_shape", "float", "parameter", default=_T.prune_shape,
             help="drop a histosys whose largest bin change is below this"),
        Flag("shape_significance", "float", "parameter", default=_T.shape_significance or 0.0,
             help="drop a histosys whose chi2 p-value against the MC noise is above this "
                  "(0: off)"),
        Flag("staterror_threshold", "float", "parameter", default=_T.staterror_threshold,
             help="staterror only for bins with at least this relative MC uncertainty"),
        Flag("smoothing", "bool", "parameter", default=_T.smoothing,
             help="smooth the systematics that ask for it (353H, twice)"),
        Flag("empty_variation", "str", "parameter", default=_T.empty_variation,
             choices=EMPTY_RULES, help="a variation without events: drop it, or floor its "
                                       "normalisation"),
        Flag("signal", "str", "parameter", default=None,
             help="add the process PROCESS of the histograms as a signal (POI mu_signal)"),
        Flag("signal_sample", "str", "parameter", default="signal",
             help="the signal's sample name in the model (with --signal)"),
    ),
)


def parser() -> argparse.ArgumentParser:
    return INTERFACE.parser()


def treatments_of(args: argparse.Namespace) -> _Treatments:
    """The treatments the flags ask for (0 turns bin merging or the significance test off)."""
    return _Treatments(
        max_mc_rel_error=args.max_mc_rel_error or None, prune_norm=args.prune_norm,
        prune_shape=args.prune_shape, shape_significance=args.shape_significance or None,
        staterror_threshold=args.staterror_threshold, smoothing=args.smoothing,
        empty_variation=args.empty_variation,
    )


def build(histograms: str, treatments: _Treatments = _T, signal: str | None = None,
          signal_sample: str = "signal") -> tuple[dict, dict, dict]:
    """(pyhf workspace, HS3 document, treatment report) of the AGC model from histograms.root
    (with the process `signal` as the signal sample `signal_sample`)."""
    from reanimate.analyses.agc import histfile, statmodel_config
    from reanimate.statistics import histfactory, hs3

    sig = None if signal is None else statmodel_config.signal(signal, signal_sample)
    config = statmodel_config.config(treatments, sig)
    workspace, report = histfactory.build_model(
        config, histfile.lookup(histfile.read_histograms(histograms))
    )
    histfactory.validate(workspace)
    edges = {ch["name"]: ch["edges"] for ch in report["channels"]}
    return workspace, hs3.pyhf_to_hs3(workspace, axes=edges), report


def run(args: argparse.Namespace) -> None:
    from reanimate.statistics import jsonio

    if args.signal is not None and not (args.signal and args.signal_sample):
        raise ReanimateError("--signal and --signal_sample must not be empty")
    workspace, doc, report = build(args.histograms, treatments_of(args), args.signal,
                                   args.signal_sample)
    jsonio.write(args.workspace, workspace)
    jsonio.write(args.hs3, doc)
    if args.report:
        jsonio.write(args.report, report)


def main(argv: list[str] | None = None) -> int:
    return program_main(INTERFACE, run, argv)


if __name__ == "__main__":
    sys.exit(program_main(INTERFACE, run))
