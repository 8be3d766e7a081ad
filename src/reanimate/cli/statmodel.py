"""`reanimate statmodel report`: the template treatments the model builder applied, as a table."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Statistical models: what the model builder did to the templates.",
                  no_args_is_help=True, add_completion=False)

REPORT_NAME = "statmodel_report.json"


@app.callback()
def _statmodel() -> None:
    """Statistical models: what the model builder did to the templates."""


def find_report(path: Path) -> Path:
    """`path` itself, or the one statmodel_report.json below a directory (a work directory's
    `results/`, whose entries are links into the cache, is searched; `cache/` is not)."""
    import os

    from reanimate.errors import ReanimateError

    if path.is_file():
        return path
    if not path.is_dir():
        raise ReanimateError(f"{path}: no such file or directory")
    found = []
    for root, dirs, files in os.walk(path, followlinks=True):
        depth = len(Path(root).relative_to(path).parts)
        dirs[:] = [] if depth >= 4 else sorted(d for d in dirs
                                               if d not in ("cache", "runs", "tmp"))
        found += [Path(root) / REPORT_NAME] if REPORT_NAME in files else []
    if len(found) != 1:
        listed = ", ".join(str(p) for p in found[:4]) or "none"
        raise ReanimateError(f"{path}: expected one {REPORT_NAME} below it, found {len(found)} "
                             f"({listed}); name the file")
    return found[0]


def outcome(row: dict) -> str:
    """One cell: kept / pruned / dropped, with the treatments and why."""
    parts = {"normsys": row["normsys"], "histosys": row["histosys"]}
    if parts["normsys"] == parts["histosys"]:
        text = parts["normsys"]
    elif "kept" in parts.values():
        kept = "norm" if parts["normsys"] == "kept" else "shape"
        text = f"{kept} only"
    else:
        text = f"norm {parts['normsys']}, shape {parts['histosys']}"
    extras = [t for t in row["treatments"] if t != "symmetrised" or text == "kept"]
    if extras:
        text += f" ({', '.join(extras)})"
    if row.get("reason"):
        text += f": {row['reason']}"
    return text


@app.command()
def report(
    path: Path = typer.Argument(..., help=f"{REPORT_NAME}, or a directory holding one (a "
                                          "work directory's results)."),
    changed: bool = typer.Option(False, "--changed", help="Only templates not simply kept."),
    channel: str = typer.Option(None, "--channel", help="Only this channel."),
    sample: str = typer.Option(None, "--sample", help="Only this sample."),
    as_json: bool = typer.Option(False, "--json", help="Print the report's JSON instead."),
) -> None:
    """Show what became of every sample x systematic x channel template: kept, pruned (why),
    dropped (why), smoothed, floored, symmetrised; the bins after merging and the staterror
    bins. Treatments and their defaults: docs/statistics.md."""
    from rich.console import Console
    from rich.table import Table

    from reanimate.statistics import jsonio

    source = find_report(path)
    data = jsonio.read(source, "statmodel report")
    if as_json:
        typer.echo(jsonio.dumps(data), nl=False)
        return
    console = Console(highlight=False)
    rows = [r for r in data["systematics"]
            if (channel is None or r["channel"] == channel)
            and (sample is None or r["sample"] == sample)
            and (not changed or r["normsys"] != "kept" or r["histosys"] != "kept"
                 or set(r["treatments"]) - {"symmetrised"})]
    channels = [c["name"] for c in data["channels"] if channel is None or c["name"] == channel]
    table = Table(title=f"{source}", title_justify="left", show_lines=False)
    table.add_column("sample")
    table.add_column("systematic")
    for name in channels:
        table.add_column(name)
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for r in rows:
        if r["channel"] in channels:
            cells.setdefault((r["sample"], r["systematic"]), {})[r["channel"]] = outcome(r)
    for (s, syst), by_channel in cells.items():
        table.add_row(s, syst, *(by_channel.get(c, "-") for c in channels))
    console.print(table)
    for c in data["channels"]:
        if c["name"] not in channels:
            continue
        merged = len(c["edges"]) != len(c["declared_edges"])
        bins = f"{len(c['edges']) - 1} bins" + (
            f" (merged from {len(c['declared_edges']) - 1})" if merged else "")
        console.print(f"{c['name']}: {bins}, edges {c['edges']}")
        stat = c.get("staterror")
        if stat:
            console.print(f"  {stat['parameter']}: {stat['bins_with_parameter']} bin(s) with a "
                          "parameter" + "".join(f"; bin {b['bin']}: none, {b['reason']}"
                                                for b in stat["bins_without"]))
    for s in data["samples"]:
        if (channel is None or s["channel"] == channel) and s["reason"] and (
                sample is None or s["sample"] == sample):
            console.print(f"{s['channel']} {s['sample']}: {s['status']}, {s['reason']}")
    t = data["treatments"]
    console.print("treatments: " + ", ".join(f"{k}={v}" for k, v in t.items()))
