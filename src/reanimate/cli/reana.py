"""`reanimate submit`, `status`, `download`: a REANA server through reana-client."""

from __future__ import annotations

from pathlib import Path

import typer

from reanimate.cli.app import app, err


@app.command()
def submit(
    spec: Path = typer.Argument(..., help="The analysis spec (YAML)."),
    name: str = typer.Option(None, "--name", "-n", help="Workflow name (default: spec name)."),
    workdir: Path = typer.Option(Path("work"), "--workdir", "-w", help="Where to stage files."),
    workflow_type: str = typer.Option("cwl", "--type", help="cwl (default) or serial."),
    reana_version: str = typer.Option("0.9", "--reana-version"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the reana-client commands."),
) -> None:
    """Create, upload and start the analysis on REANA (REANA_SERVER_URL, REANA_ACCESS_TOKEN)."""
    import shlex

    from reanimate.engines.reana import (
        call_client,
        client_commands,
        export_reana,
        require_server,
        stage,
    )
    from reanimate.spec import load_spec

    loaded = load_spec(spec)
    name = name or loaded.spec.metadata.name
    staged = stage(loaded, workdir / "reana" / name)
    written = export_reana(staged, staged.base_dir / "reana.yaml", workflow_type, reana_version)
    commands = client_commands(name, written["reana"])
    if dry_run:
        err.print(f"staged in {staged.base_dir}; would run there:")
        for argv in commands:
            print(" ".join(shlex.quote(a) for a in argv))
        return
    require_server()
    for argv in commands:
        err.print(f"$ {' '.join(argv[1:])}")
        call_client(argv, cwd=staged.base_dir)
    err.print(f"submitted {name}; follow it with `reanimate status {name}`")


@app.command()
def status(name: str = typer.Argument(..., help="REANA workflow name.")) -> None:
    """Show the status of a REANA workflow."""
    from reanimate.engines.reana import call_client, reana_client, require_server

    require_server()
    print(call_client([reana_client(), "status", "-w", name]).stdout, end="")


@app.command()
def download(
    name: str = typer.Argument(..., help="REANA workflow name."),
    output: Path = typer.Option(Path("."), "--output", "-o", help="Download folder."),
) -> None:
    """Download the declared outputs of a finished REANA workflow."""
    from reanimate.engines.reana import call_client, reana_client, require_server

    require_server()
    print(call_client([reana_client(), "download", "-w", name, "-o", str(output)]).stdout, end="")
