"""The `reanimate` command: one module per command group; each parses, calls the library, prints.

User errors (ReanimateError) become one line on stderr and exit code 2 (1 for a failed step);
tracebacks appear only with --debug. Command modules import heavy libraries only inside the
command that needs them, so `reanimate --help` starts fast.
"""

from __future__ import annotations

import sys

import typer

from reanimate.cli import export, plan, reana, run, spec  # noqa: F401  (they register commands)
from reanimate.cli.agc import app as agc_app
from reanimate.cli.app import STATE, app, err
from reanimate.cli.datasets import app as datasets_app
from reanimate.cli.hs3 import app as hs3_app
from reanimate.cli.model import app as model_app
from reanimate.errors import ReanimateError, SpecError

app.add_typer(agc_app, name="agc")
app.add_typer(datasets_app, name="datasets")
app.add_typer(hs3_app, name="hs3")
app.add_typer(model_app, name="model")


def main() -> None:
    try:
        # without standalone mode click returns the code of a typer.Exit instead of exiting
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except SpecError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        err.print(f"[red]{len(exc.problems)} problem(s)[/red]")
        sys.exit(exc.exit_code)
    except ReanimateError as exc:
        if STATE["debug"]:
            raise
        err.print("[red]error:[/red] ", end="")
        err.print(str(exc), markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # usage errors come through here too
        # typer vendors its own click, so recognise a usage error by what it can do
        if callable(getattr(exc, "show", None)) and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(2)
        if STATE["debug"]:
            raise
        err.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} (rerun with --debug)")
        sys.exit(3)


