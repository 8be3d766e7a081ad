"""The root `reanimate` Typer app, the stderr console and the --debug/--version options."""

from __future__ import annotations

import typer
from rich.console import Console

from reanimate import __version__

app = typer.Typer(
    help="Preserve HEP analyses, rerun them anywhere, reinterpret them with new signals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)
STATE = {"debug": False}


def _print_version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print the version and exit."),
) -> None:
    STATE["debug"] = debug
