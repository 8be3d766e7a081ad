"""Step program: maximum-likelihood fit of the statistical model (pyhf + iminuit).

    python -m reanimate.steps.fit --workspace workspace.json --results fit.json
        [--significance true|false]

Fits the workspace to its observations with MIGRAD then HESSE and writes the POI, every
parameter with its error, prior constraint and pull, the correlation matrix and the minimum
NLL as JSON (reanimate.statistics.fitting). A fit that does not converge is written with
"converged": false and the step exits 2. With --significance true (default false) it also
writes the discovery significance Z = sqrt(q0). User errors: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse

from reanimate.steps._program import Parser, boolean, main


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m reanimate.steps.fit", description=__doc__.split("\n")[0])
    p.add_argument("--workspace", required=True, help="pyhf workspace (JSON)")
    p.add_argument("--results", required=True, help="output fit results (JSON)")
    p.add_argument("--significance", type=boolean, default=False, metavar="true|false",
                   help="also compute the discovery significance (default false)")
    return p


def run(args: argparse.Namespace) -> None:
    from reanimate.errors import ReanimateError
    from reanimate.statistics import fitting, jsonio

    workspace = jsonio.read(args.workspace, "workspace")
    if not isinstance(workspace, dict) or "channels" not in workspace:
        raise ReanimateError(f"{args.workspace}: not a pyhf workspace (no 'channels')")
    results = fitting.fit_workspace(workspace, with_significance=args.significance)
    jsonio.write(args.results, results)
    if not results["converged"]:
        raise ReanimateError(
            f"the fit did not converge (EDM {results['minuit']['edm']:g}); results written to "
            f"{args.results} with converged=false"
        )


if __name__ == "__main__":
    main(parser(), run)
