"""`reanimate agc ...`: AGC-specific commands (registered in reanimate.cli)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="AGC ttbar analysis tools.", no_args_is_help=True)


@app.callback()
def _agc() -> None:
    """AGC ttbar analysis tools."""


@app.command()
def compare(
    first: Path = typer.Argument(..., help="Histograms: ROOT file or AGC reference JSON."),
    second: Path = typer.Argument(..., help="Histograms to compare with (ROOT or JSON)."),
) -> None:
    """Compare two histogram sets with the AGC validation semantics; exit 1 on mismatch."""
    from rich.console import Console

    from reanimate.analyses.agc.compare import compare_files

    mismatches, count = compare_files(first, second)
    out = Console(highlight=False, soft_wrap=True)
    for m in mismatches:
        out.print(str(m), markup=False)
    if mismatches:
        out.print(f"{len(mismatches)} of {count} histogram(s) differ")
        raise typer.Exit(1)
    out.print(f"{count} histogram(s) agree")
