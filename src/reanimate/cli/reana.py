"""`reanimate submit`, `status`, `download`: a REANA server through reana-client."""

from __future__ import annotations

from pathlib import Path

import typer

from reanimate.cli.app import app, err


@app.command()
def submit(
    spec: Path = typer.Argument(..., help="The analysis spec (YAML)."),
    name: str = typer.Option(None, "--name", "-n", help="Workflow name: letters, digits, - and _ "
                             "(default: the spec's metadata.name)."),
    workdir: Path = typer.Option(Path("work"), "--workdir", "-w",
                                 help="Stage in WORKDIR/reana/NAME/."),
    workflow_type: str = typer.Option("cwl", "--type", help="cwl (default) or serial."),
    reana_version: str = typer.Option("0.9", "--reana-version"),
    allow_outside: bool = typer.Option(False, "--allow-outside",
                                       help="Also upload input files from outside the spec's "
                                       "folder (refused by default)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Stage and print the reana-client "
                                 "commands; replace nothing."),
) -> None:
    """Create, upload and start the analysis on REANA (REANA_SERVER_URL, REANA_ACCESS_TOKEN)."""
    import shlex

    from reanimate.engines.reana_submit import (
        call_client,
        check_workflow_name,
        client_commands,
        require_server,
        stage_submission,
    )
    from reanimate.spec import load_spec

    if name is not None:
        check_workflow_name(name)  # before anything is read or written
    loaded = load_spec(spec)
    name = check_workflow_name(name if name is not None else loaded.spec.metadata.name)
    if not dry_run:
        require_server()  # stage (and replace a staging folder) only for a submission
    folder = stage_submission(loaded, workdir, name, workflow_type, reana_version,
                              dry_run=dry_run, allow_outside=allow_outside)
    commands = client_commands(name, folder / "reana.yaml")
    if dry_run:
        if folder.name != name:
            err.print(f"{folder.parent / name} is already staged and a dry run replaces "
                      "nothing: staged afresh", markup=False, soft_wrap=True)
        err.print(f"staged in {folder}; would run there:", markup=False, soft_wrap=True)
        for argv in commands:
            print(" ".join(shlex.quote(a) for a in argv))
        return
    for argv in commands:
        err.print(f"$ {' '.join(argv[1:])}", markup=False)
        call_client(argv, cwd=folder)
    err.print(f"submitted {name}; follow it with `reanimate status {name}`", markup=False)


@app.command()
def status(name: str = typer.Argument(..., help="REANA workflow name.")) -> None:
    """Show the status of a REANA workflow."""
    from reanimate.engines.reana_submit import call_client, reana_client, require_server

    require_server()
    print(call_client([reana_client(), "status", "-w", name]).stdout, end="")


@app.command()
def download(
    name: str = typer.Argument(..., help="REANA workflow name."),
    output: Path = typer.Option(Path("."), "--output", "-o", help="Download folder."),
) -> None:
    """Download the declared outputs of a finished REANA workflow."""
    from reanimate.engines.reana_submit import call_client, reana_client, require_server

    require_server()
    print(call_client([reana_client(), "download", "-w", name, "-o", str(output)]).stdout, end="")
