"""``reanimate datasets ...``: generate AGC-like samples, import the AGC's own catalogue.

Thin: parses options, calls the library, prints a summary on stderr. Errors are
:class:`~reanimate.errors.ReanimateError` (one line, exit code 2, via ``reanimate.cli``).
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from reanimate.cli.app import err

app = typer.Typer(
    help="Sample catalogues: generate AGC-like NanoAOD samples or import real ones.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def summary(catalogue, title: str):
    """A rich Table of the catalogue's samples."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("process", "variation", "files", "events", "xsec (pb)"):
        table.add_column(column, justify="left" if column in ("process", "variation") else "right")
    for process, variation, entry in catalogue.samples():
        table.add_row(
            process,
            variation,
            str(len(entry.files)),
            f"{entry.nevts_total:,}",
            f"{entry.xsec_pb:.6g}",
        )
    return table


@app.command()
def generate(
    out: Path = typer.Option(..., "--out", help="Directory for the ROOT files and catalogue.json."),
    events: int = typer.Option(20_000, "--events", help="ttbar-nominal events; others scale (§7)."),
    seed: int = typer.Option(42, "--seed", help="Random seed; same seed, same bytes."),
    compression: str = typer.Option("zlib", "--compression", help="zlib or lzma."),
    signal_masses: str = typer.Option(
        "500,750,1000,1500,2000,3000",
        "--signal-masses",
        help="Z'→tt̄ masses in GeV, comma-separated ('none': no signal).",
    ),
    events_per_file: int = typer.Option(20_000, "--events-per-file", help="Split larger samples."),
) -> None:
    """Generate the nine AGC samples and Z' signals in the CMS NanoAOD schema."""
    from rich.progress import Progress

    from reanimate.analyses.agc.generate import generate as run_generate
    from reanimate.analyses.agc.generate import parse_masses, plan_samples

    masses = parse_masses(signal_masses)
    total_planned = sum(s.nevts for s in plan_samples(events, masses))
    start = time.perf_counter()
    with Progress(*Progress.get_default_columns(), console=err, transient=True) as bar:
        task = bar.add_task("generating", total=total_planned)

        def advance(sample, n: int) -> None:
            bar.update(task, advance=n, description=f"{sample.process} {sample.variation}")

        catalogue = run_generate(
            out,
            events=events,
            seed=seed,
            compression=compression,
            signal_masses=masses,
            events_per_file=events_per_file,
            progress=advance,
        )
    total = sum(e.nevts_total for _, _, e in catalogue.samples())
    err.print(summary(catalogue, f"{out}/catalogue.json"))
    err.print(f"{total:,} events in {time.perf_counter() - start:.1f} s")


IMPORT_HELP = (
    "Import the AGC's nanoaod_inputs.json: sha256 and entries of local files.\n\n"
    "Each local file is opened and checked (ROOT, not truncated, every branch the histogram "
    "stage reads, with the CMS types); a file listed twice, a variation the histogram stage "
    "refuses, or --out naming the input or a directory is refused in one line "
    "(docs/samples.md)."
)


@app.command("import-agc", help=IMPORT_HELP)
def import_agc(
    agc_json: Path = typer.Argument(..., help="The AGC's nanoaod_inputs.json."),
    out: Path = typer.Option(
        ..., "--out", help="Our catalogue JSON to write (a file, not the input)."
    ),
    max_files_per_sample: int = typer.Option(
        None, "--max-files-per-sample", min=1, help="Keep only the first N files of each sample."
    ),
) -> None:
    """Import the AGC's nanoaod_inputs.json: sha256 and entries of local files."""
    from reanimate.analyses.agc.catalogue import import_agc as run_import

    catalogue = run_import(agc_json, out, max_files_per_sample)
    err.print(summary(catalogue, str(out)))
