"""`reanimate limits`: CLs and upper limits of a pyhf workspace or of every patch of a patchset."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import typer

from reanimate.cli.app import app, err
from reanimate.errors import ReanimateError


def _point(item, settings):
    """One patched workspace -> its record (runs on a Dask worker)."""
    from reanimate.statistics.limits import limit_record

    name, labels, workspace = item
    return limit_record(workspace, name=name, labels=labels, settings=settings, validate=False)


def _failed(name, labels, settings, message) -> dict:
    from reanimate.statistics.limits import software

    return {"name": name, "labels": labels, "mu": settings.mu, "cls_observed": None,
            "cls_expected": None, "limit_observed": None, "limit_expected": None,
            "cl": settings.cl, "status": "failed", "reason": message, "seconds": 0.0,
            "poi": settings.poi, "software": software()}


@app.command("limits")
def limits(
    workspace: Path = typer.Argument(..., help="pyhf workspace (JSON), e.g. BkgOnly.json."),
    patchset: Path = typer.Option(None, "--patchset", help="pyhf PatchSet (JSON) of points."),
    patch: list[str] = typer.Option(None, "--patch", help="Only this patch (repeatable)."),
    poi: str = typer.Option(None, "--poi", help="The POI (default: the measurement's)."),
    cl: float = typer.Option(0.95, "--cl", help="Confidence level of the upper limits."),
    mu: float = typer.Option(1.0, "--mu", help="POI value where CLs is evaluated."),
    toys: int = typer.Option(None, "--toys", help="Pseudo-experiments per hypothesis "
                             "(default: asymptotic formulae)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the toys."),
    workers: int = typer.Option(None, "--workers", help="Local Dask workers (default: cores)."),
    scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler address."),
    output: Path = typer.Option(None, "--output", "-o", help="Write the records (JSON list)."),
) -> None:
    """Observed and expected CLs and upper limits (qmu~, asymptotic or toys), one record a point."""
    from reanimate.statistics import jsonio
    from reanimate.statistics.limits import LimitSettings, build, load_patchset

    settings = LimitSettings(poi=poi, cl=cl, mu=mu, toys=toys, seed=seed)
    base = jsonio.read(workspace, "pyhf workspace")
    if not isinstance(base, dict) or "channels" not in base:
        raise ReanimateError(f"{workspace}: not a pyhf workspace (no 'channels')")
    if patchset is None:
        if patch:
            raise ReanimateError("--patch needs --patchset")
        build(base, poi)  # bad input: one line before any work
        points = [(workspace.stem, {}, base)]
    else:
        _validate(base, workspace)
        points = load_patchset(base, jsonio.read(patchset, "patchset"), patch or None,
                               where=str(patchset))
        if not points:
            raise ReanimateError(f"{patchset}: no patches")
        build(points[0][2], poi, validate=False)  # the POI is there once a signal is patched
    records = _run(points, settings, parallel=patchset is not None and not patch,
                   workers=workers, scheduler=scheduler)
    _table(records)
    if output is not None:
        jsonio.write(output, records)
        err.print(f"wrote {output}")
    failed = sum(r["status"] != "ok" for r in records)
    if failed:
        err.print(f"[red]{failed} of {len(records)} point(s) failed[/red]")
        raise typer.Exit(1)


def _validate(base: dict, path: Path) -> None:
    import pyhf

    try:
        pyhf.Workspace(base)
    except pyhf.exceptions.InvalidSpecification as exc:
        line = str(exc).strip().splitlines()[0]
        raise ReanimateError(f"{path}: not a valid pyhf workspace: {line}") from None


def _run(points, settings, *, parallel: bool, workers, scheduler) -> list[dict]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    records: list[dict | None] = [None] * len(points)
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("limits", total=len(points))
        if parallel and len(points) > 1:
            from reanimate.reinterpret.pool import PointFailure, dask_client, map_unordered

            with dask_client(scheduler, workers) as client:
                for i, result in map_unordered(client, partial(_point, settings=settings),
                                               points, prefix="limits"):
                    if isinstance(result, PointFailure):
                        result = _failed(points[i][0], points[i][1], settings, result.message)
                    records[i] = result
                    progress.advance(task)
        else:
            for i, item in enumerate(points):
                try:
                    records[i] = _point(item, settings)
                except ReanimateError as exc:
                    if len(points) == 1:
                        raise
                    records[i] = _failed(item[0], item[1], settings, str(exc))
                progress.advance(task)
    return records


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _table(records: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"CLs at mu = {records[0]['mu']:g}, upper limits at "
                        f"{100 * records[0]['cl']:g}% CL")
    for column in ("point", "labels", "CLs obs", "CLs exp", "limit obs", "limit exp (-1s, "
                   "med, +1s)", "status", "s"):
        table.add_column(column)
    for r in records:
        exp = r["limit_expected"] or [None] * 5
        labels = ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                           for k, v in r["labels"].items())
        status = "ok" if r["status"] == "ok" else f"[red]failed[/red]: {r['reason']}"
        if r["status"] == "ok" and r.get("treated"):
            status = f"ok [yellow](treated: {len(r['treated'])})[/yellow]"
        table.add_row(r["name"], labels, _fmt(r["cls_observed"]),
                      _fmt((r["cls_expected"] or [None] * 5)[2]), _fmt(r["limit_observed"]),
                      f"{_fmt(exp[1])}, {_fmt(exp[2])}, {_fmt(exp[3])}", status,
                      f"{r['seconds']:.2f}")
    Console(highlight=False, width=160).print(table)
