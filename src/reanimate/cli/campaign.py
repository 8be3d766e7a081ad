"""`reanimate campaign ...`: run a grid of signal points through a preserved analysis."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from reanimate.cli.app import err

app = typer.Typer(help="Reinterpretation campaigns: many signal points, one preserved analysis, "
                       "results in a resumable store.", no_args_is_help=True,
                  add_completion=False)

DIR = typer.Argument(..., help="The campaign's output folder (holds campaign.sqlite).")


@app.command("run")
def run(
    file: Path = typer.Argument(..., help="Campaign file (YAML)."),
    output: Path = typer.Option(None, "--output", "-o",
                                help="Output folder [default: campaigns/NAME]."),
    scheduler: str = typer.Option(None, "--scheduler",
                                  help="Dask scheduler address [default: $DASK_SCHEDULER_URI, "
                                       "else a local cluster]."),
    workers: int = typer.Option(None, "--workers", help="Local cluster workers [default: one "
                                                        "per core]."),
    retry_failed: bool = typer.Option(False, "--retry-failed",
                                      help="Run again the points that failed before."),
) -> None:
    """Run every point not yet in the store; a killed run resumes where it stopped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from reanimate.cli.run import console_reporter
    from reanimate.reinterpret.campaign import load_campaign
    from reanimate.reinterpret.campaign_run import run_campaign

    campaign, path = load_campaign(file)
    output = output or Path("campaigns") / campaign.name
    bar = Progress("[progress.description]{task.description}", BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(), console=err)
    task = bar.add_task(campaign.name, total=None)

    def progress(done: int, total: int, point: dict | None) -> None:
        # started at the first point: preparing the analysis draws its own live line before
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=done, total=total,
                   description=f"{campaign.name} {point['name']}" if point else campaign.name)

    try:
        counts = run_campaign(campaign, path, output, scheduler=scheduler, workers=workers,
                              retry_failed=retry_failed, progress=progress,
                              reporter=console_reporter())
    finally:
        bar.stop()
    err.print(_counts(counts) + f" — {output}")
    if counts.get("failed"):
        raise typer.Exit(1)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "no points"


@app.command("status")
def status(folder: Path = DIR) -> None:
    """Points done, failed, pending; each failure's message."""
    from reanimate.reinterpret.store import open_store

    with open_store(folder) as store:
        meta, points = store.meta(), store.current()
        counts = store.counts()
    print(f"{meta.get('name', '?')}: {len(points)} points, {_counts(counts)}")
    for point in points:
        if point["status"] == "failed":
            print(f"  failed {point['name']}: {point['error']}")
    retried = [p for p in points if p["attempts"] > 1]
    if retried:
        print(f"  {len(retried)} point(s) started more than once (interrupted and resumed)")


@app.command("results")
def results(
    folder: Path = DIR,
    csv: bool = typer.Option(False, "--csv", help="CSV table (the default)."),
    json_: bool = typer.Option(False, "--json", help="Every point's full record (JSON)."),
    output: Path = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
) -> None:
    """The results table of the points done, in the campaign's order."""
    from reanimate.errors import ReanimateError
    from reanimate.reinterpret.campaign_plots import results_csv, results_json

    if csv and json_:
        raise ReanimateError("give --csv or --json, not both")
    text = results_json(folder) if json_ else results_csv(folder)
    if output is None:
        sys.stdout.write(text)
    else:
        from reanimate.atomic import write_text

        write_text(output, text)
        err.print(f"wrote {output}")


@app.command("plot")
def plot(
    folder: Path = DIR,
    output: Path = typer.Option(None, "--output", "-o",
                                help="Image [default: DIR/brazil.png or DIR/contour.png]."),
) -> None:
    """The Brazil band (one axis) or the expected/observed exclusion contour (two axes)."""
    from reanimate.reinterpret.campaign_plots import plot_campaign

    written = plot_campaign(folder, output)
    err.print(f"wrote {written}")


@app.command("schema")
def schema() -> None:
    """Print the campaign file's JSON Schema."""
    from reanimate.reinterpret.campaign import schema_text

    sys.stdout.write(schema_text())
