"""`reanimate run`: the local engine (default) or cwltool."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from reanimate.cli.app import app, err
from reanimate.errors import ReanimateError

SYMBOLS = {"running": "[yellow]>[/yellow]", "executed": "[green]+[/green]",
           "cached": "[cyan]=[/cyan]", "pinned": "[magenta]#[/magenta]",
           "failed": "[red]x[/red]", "skipped": "[dim]-[/dim]"}


def console_reporter():
    """The engine's events drawn on stderr with rich: one line a step, a live running line."""
    import contextlib

    from reanimate.engines.report import Reporter

    class ConsoleReporter(Reporter):
        def step(self, event, name, text, tail=None):
            err.print(f"  {SYMBOLS.get(event, ' ')} {name}: {text}")
            for line in tail or []:
                err.print(f"      {line}", markup=False)

        @contextlib.contextmanager
        def waiting(self, text):
            with err.status(text, spinner="dots") as status:
                yield status.update

        def summary(self, text, failed):
            colour = "red" if failed else "green"
            err.print(f"[{colour}]{text}[/{colour}]", soft_wrap=True)

    return ConsoleReporter()


@app.command()
def run(
    spec: Path = typer.Argument(..., help="The analysis spec (YAML)."),
    workdir: Path = typer.Option(Path("work"), "--workdir", "-w", help="Cache, results, runs."),
    only: list[str] = typer.Option(None, "--only", help="Run only this step (repeatable)."),
    from_step: str = typer.Option(None, "--from", help="Run this step and everything after it."),
    jobs: int = typer.Option(2, "--jobs", "-j", min=1, help="Steps run at the same time."),
    force: bool = typer.Option(False, "--force", help="Ignore the cache for selected steps."),
    set_: list[str] = typer.Option(None, "--set", help="Override a parameter: NAME=VALUE."),
    engine: str = typer.Option("local", "--engine", help="local (default) or cwl (cwltool)."),
    provenance: bool = typer.Option(False, "--provenance", help="cwl: write a CWLProv bag."),
    containers: str = typer.Option(
        "none", "--containers",
        help="none (default: steps run with this Python) or docker (each step inside its image "
             "from the lock, by id; see `reanimate containers build`)."),
    scheduler: str = typer.Option(
        None, "--scheduler",
        help="Dask scheduler address for the steps with a dask: block [default: "
             "$DASK_SCHEDULER_URI, else one LocalCluster for the whole run, started when first "
             "needed; a step asking for one worker of one thread runs in its own process]."),
) -> None:
    """Run the analysis: steps in dependency order, unchanged steps served from the cache."""
    from reanimate.engines.container import check_mode
    from reanimate.engines.local import run_spec
    from reanimate.spec import load_spec

    if engine not in ("local", "cwl"):
        raise ReanimateError(f"unknown engine {engine!r} (available: local, cwl)")
    check_mode(containers)
    loaded = load_spec(spec)
    if engine == "cwl":
        from reanimate.engines.cwl import run_cwl

        if only or from_step or set_ or scheduler:
            raise ReanimateError("--only, --from, --set and --scheduler apply to the local "
                                 "engine only")
        err.print(f"running {spec} with cwltool in {workdir}/cwl ...")
        outputs = run_cwl(loaded, workdir, provenance=provenance,
                          container=containers == "docker")
        print(json.dumps({k: v.get("path") for k, v in outputs.items()}, indent=2))
        return
    report = run_spec(
        loaded, workdir, only=only or None, from_step=from_step, jobs=jobs, force=force,
        overrides=parse_overrides(set_ or []), reporter=console_reporter(),
        containers=containers, scheduler=scheduler,
    )
    print(json.dumps(report.summary(), indent=2))
    if report.failed:
        raise typer.Exit(1)


def parse_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ReanimateError(f"--set {item!r}: expected NAME=VALUE")
        out[name] = value
    return out
