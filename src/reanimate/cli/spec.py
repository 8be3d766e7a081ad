"""`reanimate validate`, `schema`, `lock`: the spec itself."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from reanimate.cli.app import app, err


@app.command()
def validate(spec: Path = typer.Argument(..., help="The analysis spec (YAML).")) -> None:
    """Check a spec; print every problem as FILE:LINE:COL: key.path: message (hint)."""
    from reanimate.spec import load_spec

    loaded = load_spec(spec)
    steps = ", ".join(loaded.spec.steps)
    err.print(f"[green]ok[/green] {spec}: {len(loaded.spec.steps)} steps ({steps})")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the spec (for editor autocompletion)."""
    from reanimate.spec.schema import packaged

    # the packaged copy, no pydantic; tests/test_cli.py keeps it equal to the models' schema
    sys.stdout.write(packaged())


@app.command()
def lock(spec: Path = typer.Argument(..., help="The analysis spec (YAML).")) -> None:
    """Write SPEC.lock.json with the sha256 of every input file of the spec."""
    from reanimate.engines.plan import write_spec_lock
    from reanimate.spec import load_spec

    loaded = load_spec(spec)
    path, count = write_spec_lock(loaded)
    err.print(f"locked {count} input file(s) in {path}")
