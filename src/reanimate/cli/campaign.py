"""`reanimate campaign ...`: run a grid of signal points through a preserved analysis."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from reanimate.cli.app import err

app = typer.Typer(help="Reinterpretation campaigns: many signal points, one preserved analysis, "
                       "results in a resumable store; or submitted to a registry (submit, "
                       "status and results with --registry).", no_args_is_help=True,
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


TARGET = typer.Argument(..., metavar="DIR|ID",
                        help="The campaign's output folder (holds campaign.sqlite); with "
                             "--registry, the campaign's id.")


def _remote(registry: str | None, target: str) -> str | None:
    from reanimate.cli.registry_client import remote

    return remote(registry, target, Path(target).is_dir())


@app.command("status")
def status(
    target: str = TARGET,
    registry: str = typer.Option(None, "--registry", help="The registry the campaign was "
                                 "submitted to (default: $REANIMATE_REGISTRY when DIR|ID is no "
                                 "folder)."),
    token: str = typer.Option(None, "--token", help="API token (default: $REANIMATE_TOKEN)."),
) -> None:
    """Points done, failed, pending; each failure's message."""
    registry = _remote(registry, target)
    if registry:
        return _remote_status(registry, token, target)
    from reanimate.reinterpret.store import open_store

    folder = Path(target)
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


def _remote_status(registry: str, token: str | None, campaign_id: str) -> None:
    from reanimate.cli.registry_client import client

    with client(registry, token) as reg:
        info = reg.campaign(campaign_id)
        points = reg.points(campaign_id)
    print(f"{info.get('name', '?')} (campaign {info['id']}, {info.get('analysis')}@"
          f"{info.get('version')}): {info.get('status')}, {info.get('total', len(points))} "
          f"points, {_counts(info.get('counts') or {})}")
    for point in points:
        if point.get("status") == "failed":
            print(f"  failed {point['name']}: {point.get('error')}")
    retried = [p for p in points if (p.get("attempts") or 0) > 1]
    if retried:
        print(f"  {len(retried)} point(s) started more than once (a lease expired)")


@app.command("results")
def results(
    target: str = TARGET,
    csv: bool = typer.Option(False, "--csv", help="CSV table (the default)."),
    json_: bool = typer.Option(False, "--json", help="Every point's full record (JSON)."),
    output: Path = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    plot_file: Path = typer.Option(None, "--plot", help="Also write the campaign's plot "
                                   "(Brazil band or contour, PNG) here."),
    registry: str = typer.Option(None, "--registry", help="The registry the campaign was "
                                 "submitted to (default: $REANIMATE_REGISTRY when DIR|ID is no "
                                 "folder)."),
    token: str = typer.Option(None, "--token", help="API token (default: $REANIMATE_TOKEN)."),
) -> None:
    """The results table of the points done, in the campaign's order."""
    from reanimate.errors import ReanimateError

    if csv and json_:
        raise ReanimateError("give --csv or --json, not both")
    registry = _remote(registry, target)
    if registry:
        from reanimate.cli.registry_client import client

        with client(registry, token) as reg:
            text = reg.results(target, "json" if json_ else "csv")
            if plot_file is not None:
                reg.plot(target, plot_file)
    else:
        from reanimate.reinterpret.campaign_plots import plot_campaign, results_csv, results_json

        folder = Path(target)
        text = results_json(folder) if json_ else results_csv(folder)
        if plot_file is not None:
            plot_campaign(folder, plot_file)
    if output is None:
        sys.stdout.write(text)
    else:
        from reanimate.atomic import write_text

        write_text(output, text)
        err.print(f"wrote {output}")
    if plot_file is not None:
        err.print(f"wrote {plot_file}")


@app.command("submit")
def submit(
    file: Path = typer.Argument(..., help="Campaign file (YAML); the files its signal names "
                                "are uploaded with it, by their paths relative to it."),
    analysis: str = typer.Option(..., "--analysis", metavar="NAME@VERSION",
                                 help="The published version to run it against (the file's "
                                      "analysis: is ignored)."),
    registry: str = typer.Option(None, "--registry", envvar="REANIMATE_REGISTRY",
                                 show_envvar=False,
                                 help="The registry's URL (default: $REANIMATE_REGISTRY)."),
    token: str = typer.Option(None, "--token", envvar="REANIMATE_TOKEN", show_envvar=False,
                              help="API token with the campaign scope "
                                   "(default: $REANIMATE_TOKEN)."),
    wait: bool = typer.Option(False, "--wait", help="Follow its progress until it is done "
                              "or failed (exit 1 if a point failed)."),
    poll: float = typer.Option(2.0, "--poll", min=0.1, help="Seconds between polls (--wait)."),
) -> None:
    """Submit a campaign to a registry; its workers run it. Prints the id and its page."""
    from reanimate.cli.registry_client import client
    from reanimate.registry.client import parse_ref

    name, version = parse_ref(analysis)
    with client(registry, token) as reg:
        info = reg.submit_campaign(name, version, file)
        page = reg.page_url(f"/campaigns/{info['id']}")
        err.print(f"submitted {info.get('name')} against {name}@{version}: "
                  f"{info.get('total')} point(s) {info.get('status', 'queued')}")
        print(f"{info['id']} {page}")
        if wait:
            info = _follow(reg, info, poll)
            err.print(f"{info.get('name')}: {info.get('status')}, "
                      f"{_counts(info.get('counts') or {})}")
            if info.get("status") == "failed" or (info.get("counts") or {}).get("failed"):
                raise typer.Exit(1)


def _follow(reg, info: dict, poll: float) -> dict:
    """Poll the campaign with a progress bar until it is done or failed; its last JSON."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(), console=err)
    with bar:
        task = bar.add_task(str(info.get("name")), total=info.get("total"))
        while True:
            counts = info.get("counts") or {}
            bar.update(task, total=info.get("total"),
                       completed=counts.get("done", 0) + counts.get("failed", 0),
                       description=f"{info.get('name')} ({counts.get('running', 0)} running)")
            if info.get("status") in ("done", "failed"):
                return info
            time.sleep(poll)
            info = reg.campaign(info["id"])


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
