"""Step program: maximum-likelihood fit of the statistical model (pyhf + iminuit).

    python -m reanimate.steps.fit --workspace workspace.json --results fit.json
        [--significance true|false] [--minos true|false]

Fits the workspace to its observations with MIGRAD (strategy escalation and bounded retries
from other starting points), HESSE and optionally MINOS for the POI, and writes the POI, every
parameter with its error, prior constraint and pull, the correlation matrix, the minimum NLL
and the fit's status as JSON (reanimate.statistics.fitting). A fit that does not converge (no
valid minimum, a failed covariance, a nuisance parameter at a bound) is written with
"converged": false and the reason, and the step exits 2 naming it. With --significance true
(the default, as in the flagship spec) it also writes the discovery significance Z = sqrt(q0).
User errors: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys

from reanimate.steps.interface import Flag, Interface, program_main

INTERFACE = Interface(
    prog="python -m reanimate.steps.fit",
    description=__doc__.split("\n")[0],
    flags=(
        Flag("workspace", "file", "input", help="pyhf workspace (JSON)"),
        Flag("significance", "bool", "parameter", default=True,
             help="also compute the discovery significance Z = sqrt(q0)"),
        Flag("minos", "bool", "parameter", default=False,
             help="also run MINOS for asymmetric errors of the POI"),
        Flag("results", "file", "output", help="fit results (JSON)"),
    ),
)


def run(args: argparse.Namespace) -> None:
    from reanimate.errors import ReanimateError
    from reanimate.statistics import fitting, jsonio

    workspace = jsonio.read(args.workspace, "workspace")
    if not isinstance(workspace, dict) or "channels" not in workspace:
        raise ReanimateError(f"{args.workspace}: not a pyhf workspace (no 'channels')")
    results = fitting.fit_workspace(workspace, with_significance=args.significance,
                                    minos=args.minos)
    jsonio.write(args.results, results)
    if not results["converged"]:
        raise ReanimateError(
            f"the fit did not converge: {results['status']['reason']}; results written to "
            f"{args.results} with converged=false"
        )


def main(argv: list[str] | None = None) -> int:
    return program_main(INTERFACE, run, argv)


if __name__ == "__main__":
    sys.exit(program_main(INTERFACE, run))
