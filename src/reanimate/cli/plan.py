"""`reanimate plan`: the resolved plan of a run, before running it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from reanimate.cli.app import app, err

COLOURS = {"run": "yellow", "cached": "cyan", "pinned": "magenta", "missing": "red",
           "not-selected": "dim"}


@app.command()
def plan(
    spec: Path = typer.Argument(..., help="The analysis spec (YAML)."),
    workdir: Path = typer.Option(Path("work"), "--workdir", "-w", help="The cache to compare "
                                 "with (as for run)."),
    only: list[str] = typer.Option(None, "--only", help="Only this step (repeatable)."),
    from_step: str = typer.Option(None, "--from", help="This step and everything after it."),
    force: bool = typer.Option(False, "--force", help="As run --force: selected steps rerun."),
    set_: list[str] = typer.Option(None, "--set", help="Override a parameter: NAME=VALUE."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable plan on stdout "
                                 "(fields: docs/plan.md)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show each step's "
                                 "command line, inputs and outputs."),
) -> None:
    """Show what `reanimate run` would do: each step cached or run (and why), its command line,
    inputs and outputs. Runs nothing and writes nothing."""
    from reanimate.cli.run import parse_overrides
    from reanimate.engines.plan import make_plan
    from reanimate.engines.preview import preview
    from reanimate.spec import load_spec

    resolved = make_plan(load_spec(spec), parse_overrides(set_ or []))
    result = preview(resolved, workdir, only or None, from_step, force)
    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return
    for step in result["steps"]:
        status = step["status"]
        why = "; ".join(step["reasons"])
        err.print(f"  [{COLOURS[status]}]{status:>12}[/{COLOURS[status]}]  {step['name']}"
                  + (f"  ({why})" if why else ""), soft_wrap=True)
        if verbose and "command" in step:
            err.print("      $ " + " ".join(step["command"]), markup=False, soft_wrap=True)
            for name, items in step["inputs"].items():
                for item in items:
                    err.print(f"      < {name}: {item['ref']} {item['path']}", markup=False,
                              soft_wrap=True)
            for name, path in step["outputs"].items():
                err.print(f"      > {name}: {path}", markup=False, soft_wrap=True)
    counts = ", ".join(f"{len(v)} {k}" for k, v in result["summary"].items() if v)
    err.print(f"{counts} (workdir {workdir})")
