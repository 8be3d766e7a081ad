"""`reanimate hs3 ...`: convert statistical models between pyhf JSON and HS3 JSON."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Convert statistical models between pyhf JSON and HS3 JSON.",
                  no_args_is_help=True, add_completion=False)


@app.command("from-pyhf")
def from_pyhf(
    source: Path = typer.Argument(..., help="pyhf workspace (JSON)."),
    output: Path = typer.Option(..., "--output", "-o", help="HS3 document to write."),
) -> None:
    """Convert a pyhf workspace (e.g. from HEPData) to an HS3 document."""
    from reanimate.statistics import hs3, jsonio

    jsonio.write(output, hs3.pyhf_to_hs3(jsonio.read(source, "pyhf workspace")))
    typer.echo(f"wrote {output}", err=True)


@app.command("to-pyhf")
def to_pyhf(
    source: Path = typer.Argument(..., help="HS3 document (JSON)."),
    output: Path = typer.Option(..., "--output", "-o", help="pyhf workspace to write."),
) -> None:
    """Convert an HS3 document of HistFactory distributions to a pyhf workspace."""
    from reanimate.statistics import histfactory, hs3, jsonio

    workspace = hs3.hs3_to_pyhf(jsonio.read(source, "HS3 document"))
    histfactory.validate(workspace)
    jsonio.write(output, workspace)
    typer.echo(f"wrote {output}", err=True)
