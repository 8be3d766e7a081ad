"""`reanimate reinterpret`: one new signal through a preserved analysis (spec or bundle)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from reanimate.cli.app import app, err


@app.command()
def reinterpret(
    source: Path = typer.Argument(..., help="The analysis: its spec (YAML) or a bundle."),
    signal: str = typer.Option(
        ..., "--signal",
        help="RECIPE:key=value,... (the spec's reinterpretation.recipes), a catalogue (folder "
             "or .json), FILE.root[,...]@xsec_pb=X, or histograms:FILE (.root or .json)."),
    name: str = typer.Option(None, "--name", help="Name of the signal point (default: from "
                             "SIGNAL)."),
    output: Path = typer.Option(None, "-o", "--output",
                                help="Output folder (default: reinterpret/NAME)."),
    workdir: Path = typer.Option(Path("work"), "--workdir", "-w",
                                 help="The analysis's work directory (cache, runs, unpacked "
                                      "bundles); the signal runs share its cache."),
    cl: float = typer.Option(None, "--cl", help="Confidence level (default: the spec's)."),
    mu: float = typer.Option(1.0, "--mu", help="Signal strength where CLs is evaluated."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Pre/post-fit plots."),
) -> None:
    """Run only the signal-dependent steps on SIGNAL, patch the preserved model, set limits."""
    from reanimate.cli.run import console_reporter
    from reanimate.errors import ReanimateError
    from reanimate.reinterpret.analysis import prepare_analysis
    from reanimate.reinterpret.signal_run import point_name, reinterpret_signal
    from reanimate.reinterpret.signals import parse_signal

    if cl is not None and not 0 < cl < 1:
        raise ReanimateError(f"--cl {cl}: expected a number between 0 and 1")
    reporter = console_reporter()
    prepared = prepare_analysis(source, workdir, reporter=reporter)
    parsed = parse_signal(signal, list(prepared.block.get("recipes") or {}))
    name = name or point_name(parsed)
    output = output or Path("reinterpret") / name
    from reanimate.statistics.limits import LimitSettings

    settings = LimitSettings(poi=prepared.block.get("poi"),
                             cl=cl if cl is not None else prepared.block["confidence_level"],
                             mu=mu)
    err.print(f"signal {parsed.text} through {prepared.name} {prepared.version} "
              f"({prepared.kind}) -> {output}")
    record = reinterpret_signal(prepared, parsed, output=output, name=name, settings=settings,
                                workdir=Path(workdir) / "reinterpret", plots=plots,
                                reporter=reporter)
    err.print(f"{record.get('name')}: status {record.get('status')}, CLs(mu={record.get('mu')})"
              f" observed {record.get('cls_observed')}, limit observed "
              f"{record.get('limit_observed')}, expected {record.get('limit_expected')}")
    print(json.dumps({"output": str(Path(output).resolve()), **{
        k: record.get(k) for k in ("name", "status", "cls_observed", "limit_observed",
                                   "limit_expected")}}, indent=2))
