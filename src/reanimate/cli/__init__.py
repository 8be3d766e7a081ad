"""The `reanimate` command: one module per command group; each parses, calls the library, prints.

User errors (ReanimateError) become one line on stderr (a message of several lines is joined
with "; ") and exit code 2 (1 for a failed step); usage errors are one line too, exit code 2;
tracebacks appear only with --debug. Command modules import heavy libraries only inside the
command that needs them, so `reanimate --help` starts fast.
"""

from __future__ import annotations

import sys

import typer

from reanimate.cli import (  # noqa: F401  (they register commands)
    export,
    limits,
    plan,
    publish,
    reana,
    registry_client,
    registry_worker,
    reinterpret,
    run,
    spec,
)
from reanimate.cli.agc import app as agc_app
from reanimate.cli.app import STATE, app, err
from reanimate.cli.bundle import bundle_app
from reanimate.cli.campaign import app as campaign_app
from reanimate.cli.containers import app as containers_app
from reanimate.cli.datasets import app as datasets_app
from reanimate.cli.hs3 import app as hs3_app
from reanimate.cli.model import app as model_app
from reanimate.cli.registry import app as registry_app
from reanimate.cli.statmodel import app as statmodel_app
from reanimate.errors import ReanimateError, SpecError

app.add_typer(agc_app, name="agc")
app.add_typer(containers_app, name="containers")
app.add_typer(bundle_app, name="bundle")
app.add_typer(campaign_app, name="campaign")
app.add_typer(datasets_app, name="datasets")
app.add_typer(hs3_app, name="hs3")
app.add_typer(model_app, name="model")
app.add_typer(registry_app, name="registry")
app.add_typer(statmodel_app, name="statmodel")


def _one_line(text: str) -> str:
    """A message as one line: its non-empty lines joined with '; '."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


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
        err.print(_one_line(str(exc)) or type(exc).__name__, markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # usage errors come through here too
        # typer vendors its own click, so recognise a usage error by what it can do
        if callable(getattr(exc, "show", None)) and hasattr(exc, "exit_code"):
            _usage_error(exc)
        if STATE["debug"]:
            raise
        detail = _one_line(str(exc))
        print(f"internal error: {type(exc).__name__}: {detail} (rerun with --debug)",
              file=sys.stderr)
        sys.exit(3)


def _usage_error(exc: Exception) -> None:
    """A click usage error as one line, `error: COMMAND: what (see COMMAND --help)`, exit 2."""
    if type(exc).__name__ == "NoArgsIsHelpError" or not callable(
            getattr(exc, "format_message", None)):
        exc.show()  # a bare group: its help
        sys.exit(2)
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "reanimate"
    message = _one_line(exc.format_message())
    print(f"error: {path}: {message} (see {path} --help)", file=sys.stderr)
    sys.exit(2)
