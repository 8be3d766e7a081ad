"""Build a HistFactory model (pyhf JSON workspace) from histograms and a declarative config.

The arithmetic follows cabinetry (which the AGC reference uses), so a workspace built here from
the same histograms equals cabinetry's to floating-point precision:

* a *norm+shape* systematic becomes a `normsys` (hi/lo = sum(varied)/sum(nominal)) and a
  `histosys` whose templates are the varied histograms rescaled to the nominal yield;
* a one-sided systematic is symmetrised: the up template is normalised to the nominal yield,
  down = 2*nominal - up, and lo = 2 - hi;
* a *norm* systematic is a `normsys` with fixed hi/lo (e.g. the luminosity);
* MC statistics: one `staterror` per channel, each sample giving sqrt(sum w^2) per bin.

Histograms are looked up by a callable `lookup(region, process, variation | None)` returning
(values, variances, edges) without flow bins, or None when absent (only non-zero histograms
are stored). Rebinning keeps the bins of the target edges, which must be a subset of the
original edges; under- and overflow are not used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from reanimate.errors import ReanimateError

Hist = tuple[np.ndarray, np.ndarray, np.ndarray]  # values, variances, edges (no flow)
Lookup = Callable[[str, str, "str | None"], "Hist | None"]


@dataclass(frozen=True)
class Channel:
    name: str  # channel name in the workspace
    region: str  # region name in the histogram file
    edges: tuple[float, ...]  # target binning (subset of the histogram edges)


@dataclass(frozen=True)
class Sample:
    name: str  # sample name in the workspace
    process: str  # process name in the histogram file


@dataclass(frozen=True)
class NormFactor:
    name: str
    samples: tuple[str, ...]
    init: float = 1.0
    bounds: tuple[float, float] = (0.0, 10.0)


@dataclass(frozen=True)
class Systematic:
    """`up`/`down` are variation names; down=None means symmetrise the up variation.

    A systematic with `hi`/`lo` set (and no variations) is a pure normalisation (normsys).
    `samples` empty means every sample.
    """

    name: str
    up: str | None = None
    down: str | None = None
    samples: tuple[str, ...] = ()
    hi: float | None = None
    lo: float | None = None

    def applies_to(self, sample: str) -> bool:
        return not self.samples or sample in self.samples


@dataclass(frozen=True)
class ModelConfig:
    measurement: str
    poi: str
    channels: tuple[Channel, ...]
    samples: tuple[Sample, ...]
    data_process: str
    normfactors: tuple[NormFactor, ...] = ()
    systematics: tuple[Systematic, ...] = ()
    staterror: bool = True
    labels: dict[str, str] = field(default_factory=dict)  # display labels, not in the model


def rebin(values: np.ndarray, edges: np.ndarray, target: Sequence[float]) -> np.ndarray:
    """Sum `values` (no flow) into the bins of `target`, whose edges must be original edges."""
    edges = np.asarray(edges, dtype=float)
    target = np.asarray(target, dtype=float)
    index = np.searchsorted(edges, target)
    ok = (index < len(edges)) & np.isclose(edges[np.minimum(index, len(edges) - 1)], target)
    if not ok.all():
        bad = target[~ok].tolist()
        raise ReanimateError(f"cannot rebin: target edges {bad} are not edges of the histogram")
    if len(target) < 2 or np.any(np.diff(index) <= 0):
        raise ReanimateError(f"cannot rebin: target edges {target.tolist()} must increase")
    values = np.asarray(values, dtype=float)[: index[-1]]
    return np.add.reduceat(values, index[:-1])


def _template(lookup: Lookup, ch: Channel, process: str, variation: str | None):
    found = lookup(ch.region, process, variation)
    if found is None:
        return None
    values, variances, edges = found
    return rebin(values, edges, ch.edges), rebin(variances, edges, ch.edges)


def norm_plus_shape(
    name: str, nominal: np.ndarray, up: np.ndarray, down: np.ndarray | None
) -> list[dict]:
    """normsys + histosys modifiers of one systematic on one sample (cabinetry's arithmetic)."""
    total = float(np.sum(nominal))
    norm_up = float(np.sum(up)) / total
    up_shape = up / norm_up
    if down is None:  # symmetrise: normalise first, then mirror
        norm_down = 2.0 - norm_up
        down_shape = 2.0 * nominal - up_shape
    else:
        norm_down = float(np.sum(down)) / total
        down_shape = down / norm_down
    for side, norm in (("up", norm_up), ("down", norm_down)):
        if not np.isfinite(norm) or norm <= 0.0:
            raise ReanimateError(
                f"systematic {name!r}: {side} variation changes the yield by a factor {norm:g};"
                " a normsys needs a positive factor"
            )
    return [
        {"name": name, "type": "normsys", "data": {"hi": norm_up, "lo": norm_down}},
        {
            "name": name,
            "type": "histosys",
            "data": {"hi_data": up_shape.tolist(), "lo_data": down_shape.tolist()},
        },
    ]


def build_workspace(config: ModelConfig, lookup: Lookup) -> dict:
    """The pyhf workspace (dict) of `config`, filled from the histograms `lookup` finds."""
    channels, observations = [], []
    for ch in config.channels:
        data = _template(lookup, ch, config.data_process, None)
        if data is None:
            raise ReanimateError(
                f"histogram of the data ({ch.region}_{config.data_process}) not found"
            )
        samples = []
        for s in config.samples:
            nominal = _template(lookup, ch, s.process, None)
            if nominal is None or float(np.sum(nominal[0])) == 0.0:
                continue  # absent from this region
            samples.append({"name": s.name, "data": nominal[0].tolist(),
                            "modifiers": _modifiers(config, ch, s, nominal, lookup)})
        if not samples:
            raise ReanimateError(f"channel {ch.name!r}: no sample has events in the fit range")
        channels.append({"name": ch.name, "samples": samples})
        observations.append({"name": ch.name, "data": data[0].tolist()})
    parameters = [
        {"name": nf.name, "bounds": [list(nf.bounds)], "inits": [nf.init]}
        for nf in config.normfactors
    ]
    return {
        "channels": channels,
        "measurements": [
            {"name": config.measurement, "config": {"poi": config.poi, "parameters": parameters}}
        ],
        "observations": observations,
        "version": "1.0.0",
    }


def _modifiers(config: ModelConfig, ch: Channel, s: Sample, nominal, lookup: Lookup) -> list:
    values, variances = nominal
    mods: list[dict] = [
        {"name": nf.name, "type": "normfactor", "data": None}
        for nf in config.normfactors
        if s.name in nf.samples
    ]
    for syst in config.systematics:
        if not syst.applies_to(s.name):
            continue
        if syst.up is None:
            mods.append({"name": syst.name, "type": "normsys",
                         "data": {"hi": syst.hi, "lo": syst.lo}})
            continue
        up = _template(lookup, ch, s.process, syst.up)
        down = _template(lookup, ch, s.process, syst.down) if syst.down else None
        if up is None or (syst.down and down is None):
            missing = syst.up if up is None else syst.down
            raise ReanimateError(
                f"histogram {ch.region}_{s.process}_{missing} not found (needed by systematic "
                f"{syst.name!r}; the nominal {ch.region}_{s.process} exists)"
            )
        mods += norm_plus_shape(syst.name, values, up[0], None if down is None else down[0])
    if config.staterror:
        mods.append({"name": f"staterror_{ch.name}", "type": "staterror",
                     "data": np.sqrt(variances).tolist()})
    return mods


def validate(workspace: dict) -> None:
    """Raise ReanimateError unless pyhf accepts `workspace` (schema and model building)."""
    import pyhf

    try:
        ws = pyhf.Workspace(workspace)
        ws.model()
    except (pyhf.exceptions.InvalidSpecification, pyhf.exceptions.InvalidModel,
            pyhf.exceptions.InvalidWorkspaceOperation, KeyError, ValueError) as exc:
        raise ReanimateError(f"not a valid pyhf workspace: {str(exc).splitlines()[0]}") from None
