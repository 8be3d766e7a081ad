"""Compare two sets of AGC histograms (ROOT or JSON) with the AGC validation semantics (§8).

The generic rules live in `reanimate.histcompare` (the reference's names are compared, rtol
1e-5 on every bin with under/overflow, a run of mismatching bins passes when it is at most two
events migrating across an edge). What is the AGC's own: ``*pt_res_up*`` contents are skipped
(the reference draws that smearing at random), their edges are still compared.
"""

from __future__ import annotations

from pathlib import Path

from reanimate import histcompare
from reanimate.histcompare import (  # noqa: F401  (the AGC's names for the generic pieces)
    ATOL,
    RTOL,
    Comparison,
    Histogram,
    Mismatch,
    extras,
    load,
)


def agc_skips_contents(name: str) -> bool:
    """The AGC reference draws the pt_res_up smearing at random: its contents never agree."""
    return "pt_res_up" in name


def compare_histogram(name: str, a: Histogram, b: Histogram) -> Mismatch | None:
    return histcompare.compare_histogram(name, a, b, skip_contents=agc_skips_contents)


def compare(reference: dict[str, Histogram], other: dict[str, Histogram]) -> list[Mismatch]:
    """Every mismatch of ``other`` against ``reference``, over the reference's names only.

    As the AGC validator does, each histogram of the reference must be in ``other`` and agree;
    histograms only in ``other`` are not compared (:func:`extras` lists them).
    """
    return histcompare.compare(reference, other, skip_contents=agc_skips_contents)


def compare_files(reference: str | Path, other: str | Path) -> Comparison:
    """Compare ``other`` against ``reference`` (ROOT or JSON each)."""
    return histcompare.compare_files(reference, other, skip_contents=agc_skips_contents)
