"""Read the AGC histogram files (histograms.root, histograms_ml.root) into numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reanimate.errors import ReanimateError

Hist = tuple[np.ndarray, np.ndarray, np.ndarray]  # values, variances, edges (no flow)


def read_histograms(path: str | Path) -> dict[str, Hist]:
    """Every TH1 of a ROOT file: {name: (values, variances, edges)}, flow bins dropped."""
    import uproot

    path = Path(path)
    if not path.is_file():
        raise ReanimateError(f"histogram file not found: {path}")
    try:
        with uproot.open(path) as f:
            out = {}
            for key, cls in f.classnames(recursive=False).items():
                if not cls.startswith("TH1"):
                    continue
                h = f[key]
                values = np.asarray(h.values(flow=False), dtype=float)
                variances = h.variances(flow=False)
                variances = values.copy() if variances is None else np.asarray(variances, float)
                out[key.split(";")[0]] = (values, variances, np.asarray(h.axis().edges(), float))
    except (OSError, ValueError) as exc:
        raise ReanimateError(f"{path}: not a readable ROOT file ({exc})") from None
    if not out:
        raise ReanimateError(f"{path}: no TH1 histograms in the file")
    return out


def lookup(hists: dict[str, Hist]):
    """The `lookup(region, process, variation)` that histfactory.build_model wants."""

    def find(region: str, process: str, variation: str | None) -> Hist | None:
        name = f"{region}_{process}" + (f"_{variation}" if variation else "")
        return hists.get(name)

    return find
