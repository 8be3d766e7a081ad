"""`reanimate registry worker`: takes queued campaign points from the registry and runs them."""

from __future__ import annotations

import sys

import typer

from reanimate.cli.registry import DATABASE_HELP, STORE_HELP, app


@app.command("worker")
def worker(
    store: str = typer.Option(None, "--store", help=STORE_HELP),
    database: str = typer.Option(None, "--database", help=DATABASE_HELP),
    scheduler: str = typer.Option(None, "--scheduler",
                                  help="Dask scheduler address (default: $DASK_SCHEDULER_URI, "
                                       "else a local cluster); its workers must see the "
                                       "store's work/ folder."),
    workers: int = typer.Option(None, "--workers", min=1,
                                help="Local cluster workers (default: one per core)."),
    lease: float = typer.Option(None, "--lease", min=0.1,
                                help="Seconds a point's lease lasts without a heartbeat "
                                     "(default: 60)."),
    poll: float = typer.Option(1.0, "--poll", min=0.05,
                               help="Seconds between looks for new points when idle."),
    exit_when_idle: bool = typer.Option(False, "--exit-when-idle",
                                        help="Exit once no point is queued or running."),
    name: str = typer.Option(None, "--name", help="This worker's name (default: HOST-PID)."),
) -> None:
    """Lease queued campaign points, compute them on Dask and store their results; SIGTERM
    gives the points in flight back and exits."""
    from reanimate.registry.config import settings_from
    from reanimate.registry.worker import run_worker

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    counts = run_worker(settings_from(store, database), scheduler=scheduler, workers=workers,
                        lease_seconds=lease, poll_seconds=poll, exit_when_idle=exit_when_idle,
                        name=name, say=say)
    say(", ".join(f"{n} {k}" for k, n in counts.items() if k != "name" and n) or "no points")
