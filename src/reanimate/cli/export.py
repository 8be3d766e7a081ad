"""`reanimate export cwl|reana`: compile a spec for another engine."""

from __future__ import annotations

from pathlib import Path

import typer

from reanimate.cli.app import app, err

export_app = typer.Typer(help="Compile a spec for another engine.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("cwl")
def export_cwl_command(
    spec: Path = typer.Argument(..., help="The analysis spec (YAML)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write into."),
) -> None:
    """Write a CWL v1.2 workflow (workflow/main.cwl, workflow/steps/*.cwl) and job.yml."""
    from reanimate.engines.cwl import export_cwl
    from reanimate.spec import load_spec

    written = export_cwl(load_spec(spec), output)
    err.print(f"wrote {len(written)} files under {output}; run them with "
              f"`cwltool {output}/workflow/main.cwl {output}/job.yml`")


@export_app.command("reana")
def export_reana_command(
    spec: Path = typer.Argument(..., help="The analysis spec (YAML)."),
    output: Path = typer.Option(Path("reana.yaml"), "--output", "-o", help="reana.yaml path."),
    workflow_type: str = typer.Option("cwl", "--type", help="cwl (default) or serial."),
    reana_version: str = typer.Option("0.9", "--reana-version",
                                      help="0.9, or 0.95 to add workflow.resources.dask."),
    bless: Path = typer.Option(None, "--bless", help="Work dir of a finished local run: "
                               "add the sha256 of its outputs to the REANA tests."),
) -> None:
    """Write reana.yaml (and the CWL and Gherkin files it names) beside it."""
    from reanimate.engines.reana import export_reana
    from reanimate.spec import load_spec

    written = export_reana(load_spec(spec), output, workflow_type, reana_version, bless)
    err.print(f"wrote {written['reana']} ({workflow_type}, REANA {reana_version}) and "
              f"{len(written) - 1} more file(s)")
