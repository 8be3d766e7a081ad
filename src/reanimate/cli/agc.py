"""`reanimate agc ...`: AGC-specific commands (registered in reanimate.cli)."""

from __future__ import annotations

from pathlib import Path

import typer

from reanimate.errors import ReanimateError

app = typer.Typer(help="AGC ttbar analysis tools.", no_args_is_help=True)


@app.callback()
def _agc() -> None:
    """AGC ttbar analysis tools."""


COMPARE_HELP = (
    "Compare histograms with a reference, with the AGC validation semantics; exit 1 on a "
    "mismatch.\n\n"
    "As the AGC's validate_histograms.py --reference: every histogram of the reference must be "
    "in the other file and agree (rtol 1e-5; pt_res_up contents skipped; runs of adjacent bins "
    "that differ by at most two events' weight and agree in sum pass). Histograms only in the "
    "other file are listed as information and not compared.\n\n"
    "Exit 0 if every reference histogram agrees, 1 listing each one that differs or is "
    "missing, 2 for an unreadable file.\n\n"
    "reanimate agc compare REFERENCE OTHER  (the first file is the reference)\n\n"
    "reanimate agc compare OTHER --reference REFERENCE"
)


@app.command(help=COMPARE_HELP)
def compare(
    first: Path = typer.Argument(
        ..., metavar="REFERENCE",
        help="The reference (ROOT or AGC reference JSON); with --reference, the file to check.",
    ),
    second: Path = typer.Argument(
        None, metavar="OTHER", help="The histograms to check against the reference.",
    ),
    reference: Path = typer.Option(
        None, "--reference", "-r",
        help="The reference histograms; then give only the file to check.",
    ),
) -> None:
    from rich.console import Console

    from reanimate.analyses.agc.compare import compare_files

    ref, other = _sides(first, second, reference)
    result = compare_files(ref, other)
    if result.compared == 0:
        raise ReanimateError(f"{ref}: the reference holds no histograms")
    out = Console(highlight=False, soft_wrap=True)
    for m in result.mismatches:
        out.print(str(m), markup=False)
    if result.extras:
        out.print(
            f"{len(result.extras)} histogram(s) only in {other}, not compared "
            f"(not in the reference): {', '.join(result.extras)}",
            markup=False,
        )
    if result.mismatches:
        out.print(
            f"{len(result.mismatches)} of {result.compared} reference histogram(s) differ "
            f"or are missing from {other}",
            markup=False,
        )
        raise typer.Exit(1)
    out.print(f"{result.compared} reference histogram(s) agree", markup=False)


def _sides(first: Path, second: Path | None, reference: Path | None) -> tuple[Path, Path]:
    """(reference, other) from REFERENCE OTHER, or OTHER --reference REFERENCE."""
    if reference is None:
        if second is None:
            raise ReanimateError(
                "agc compare: give REFERENCE OTHER, or OTHER --reference REFERENCE"
            )
        return first, second
    if second is not None:
        raise ReanimateError(
            "agc compare: with --reference give only the file to check "
            f"(got {first} and {second})"
        )
    return reference, first
