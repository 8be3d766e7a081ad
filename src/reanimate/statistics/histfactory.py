"""Build a HistFactory model (pyhf JSON workspace) from histograms and a declarative config.

The arithmetic follows cabinetry (which the AGC reference uses); with
`Treatments.none()` a workspace built here from the same histograms equals cabinetry's to
floating-point precision:

* a *norm+shape* systematic becomes a `normsys` (hi/lo = sum(varied)/sum(nominal)) and a
  `histosys` whose templates are the varied histograms rescaled to the nominal yield;
* a one-sided systematic is symmetrised: the up template is normalised to the nominal yield,
  down = 2*nominal - up, and lo = 2 - hi;
* a *norm* systematic is a `normsys` with fixed hi/lo (e.g. the luminosity);
* MC statistics: one `staterror` per channel, each sample giving sqrt(sum w^2) per bin.

On top of it come the template treatments of reanimate.statistics.treatments (bin merging,
empty and negative yields, smoothing, pruning, the staterror threshold), configured by
`ModelConfig.treatments` and recorded decision by decision in the report of `build_model`.

A signal (`ModelConfig.signal`, a SignalConfig) is added on top of the backgrounds' model
without changing it: bins and staterror bins are the backgrounds', the signal sample comes last
in each channel and its normfactor becomes the POI. `signal_patch` gives the same signal as
RFC 6902 operations on the workspace built without it (needing only the signal's histograms).

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
from reanimate.statistics import treatments
from reanimate.statistics.jsonio import rounded

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
    `samples` empty means every sample. `smooth`: smooth its shapes (when the treatments
    smooth at all); `independent`: its variations are separate MC samples, whose own
    statistical noise enters the shape-significance test.
    """

    name: str
    up: str | None = None
    down: str | None = None
    samples: tuple[str, ...] = ()
    hi: float | None = None
    lo: float | None = None
    smooth: bool = False
    independent: bool = False

    def applies_to(self, sample: str) -> bool:
        return not self.samples or sample in self.samples


@dataclass(frozen=True)
class SignalConfig:
    """A signal added to a background model: the sample `sample` (histograms of `process`),
    scaled by the normfactor `poi`, which becomes the measurement's POI (the background POI
    stays a free normfactor). `systematics`: names of the config's systematics that apply to
    it (its staterror comes with the channel's). Bin merging and the staterror bins are the
    backgrounds' alone, so the background part is the model without signal, byte for byte."""

    sample: str = "signal"
    process: str = "signal"
    poi: str = "mu_signal"
    bounds: tuple[float, float] = (0.0, 10.0)
    init: float = 1.0
    systematics: tuple[str, ...] = ()


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
    treatments: treatments.Treatments = field(default_factory=treatments.Treatments.none)
    labels: dict[str, str] = field(default_factory=dict)  # display labels, not in the model
    signal: SignalConfig | None = None


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


@dataclass
class _Channel:
    """One channel while it is built: its edges, data, and the samples that stay in it."""

    config: Channel
    edges: tuple[float, ...]
    data: np.ndarray
    nominals: dict[str, tuple[np.ndarray, np.ndarray]]  # sample -> (values, variances)


def build_model(config: ModelConfig, lookup: Lookup) -> tuple[dict, dict]:
    """(pyhf workspace, report) of `config`, filled from the histograms `lookup` finds.

    The report records every treatment decision (reanimate.statistics.treatments): the bins
    of each channel, the samples kept or dropped, per sample x systematic x channel what
    became of the normsys and histosys parts and why, and which bins have staterror.
    With `config.signal`, the signal sample comes last in each channel (see SignalConfig).
    """
    t = config.treatments
    _check_signal(config)
    report: dict = {"version": 1, "treatments": t.as_dict(), "channels": [], "samples": [],
                    "systematics": []}
    variations = _known_variations(config, lookup)
    channels, observations = [], []
    for ch in config.channels:
        built = _open_channel(config, ch, lookup, report)
        samples = []
        for s in config.samples:
            if s.name not in built.nominals:
                continue
            mods = _modifiers(config, built, s, lookup, variations, report)
            samples.append({"name": s.name, "data": built.nominals[s.name][0].tolist(),
                            "modifiers": mods})
        _add_staterror(config, built, samples, report)
        if config.signal is not None:
            channel = next(c for c in report["channels"] if c["name"] == ch.name)
            signal = _signal_sample(config, ch, built.edges, _staterror_keep(channel), lookup,
                                    report)
            samples += [signal] if signal else []
        channels.append({"name": ch.name, "samples": samples})
        observations.append({"name": ch.name, "data": built.data.tolist()})
    parameters = [
        {"name": nf.name, "bounds": [list(nf.bounds)], "inits": [nf.init]}
        for nf in config.normfactors
    ]
    poi = config.poi
    if config.signal is not None:
        _require_signal_somewhere(config, report)
        parameters.append(_signal_parameter(config.signal))
        poi = config.signal.poi
        report["signal"] = {"sample": config.signal.sample, "process": config.signal.process,
                            "poi": config.signal.poi}
    workspace = {
        "channels": channels,
        "measurements": [
            {"name": config.measurement, "config": {"poi": poi, "parameters": parameters}}
        ],
        "observations": observations,
        "version": "1.0.0",
    }
    return workspace, report


def _known_variations(config: ModelConfig, lookup: Lookup) -> set[str]:
    """Variation names with a histogram somewhere: a variation missing for one sample in one
    channel lost all its events there (only non-empty histograms are stored); one missing
    everywhere is a configuration error."""
    found = set()
    for syst in config.systematics:
        for variation in (syst.up, syst.down):
            if variation and any(lookup(ch.region, s.process, variation) is not None
                                 for ch in config.channels for s in config.samples):
                found.add(variation)
    return found


def _open_channel(config: ModelConfig, ch: Channel, lookup: Lookup, report: dict) -> _Channel:
    t = config.treatments
    data = _template(lookup, ch, config.data_process, None, ch.edges)
    if data is None:
        raise ReanimateError(f"histogram of the data ({ch.region}_{config.data_process}) not found")
    present: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for s in config.samples:
        nominal = _template(lookup, ch, s.process, None, ch.edges)
        row = {"channel": ch.name, "sample": s.name}
        if nominal is None or float(np.sum(np.clip(nominal[0], 0, None))) <= 0.0:
            report["samples"].append({**row, "status": "dropped",
                                      "reason": "no events in the fit range"})
            continue
        present[s.name] = nominal
    if not present:
        raise ReanimateError(f"channel {ch.name!r}: no sample has events in the fit range")
    edges = tuple(ch.edges)
    if t.max_mc_rel_error is not None:
        total = sum(np.clip(v, 0, None) for v, _ in present.values())
        variance = sum(var for _, var in present.values())
        edges = tuple(treatments.merged_edges(total, variance, ch.edges, t.max_mc_rel_error))
    nominals = {}
    for name, process in ((s.name, s.process) for s in config.samples if s.name in present):
        values, variances = _template(lookup, ch, process, None, edges)
        negative = int(np.sum(values < 0))
        report["samples"].append({
            "channel": ch.name, "sample": name, "status": "kept",
            "reason": f"{negative} negative bin(s) floored at 0" if negative else None})
        nominals[name] = (np.clip(values, 0.0, None), variances)
    report["channels"].append({"name": ch.name, "edges": list(edges),
                               "declared_edges": list(ch.edges)})
    built = _Channel(ch, edges, _template(lookup, ch, config.data_process, None, edges)[0],
                     nominals)
    return built


def _template(lookup: Lookup, ch: Channel, process: str, variation: str | None, edges):
    found = lookup(ch.region, process, variation)
    if found is None:
        return None
    values, variances, hist_edges = found
    return rebin(values, hist_edges, edges), rebin(variances, hist_edges, edges)


def _modifiers(config: ModelConfig, built: _Channel, s: Sample, lookup: Lookup,
               variations: set[str], report: dict) -> list[dict]:
    mods: list[dict] = [
        {"name": nf.name, "type": "normfactor", "data": None}
        for nf in config.normfactors
        if s.name in nf.samples
    ]
    systematics = [syst for syst in config.systematics if syst.applies_to(s.name)]
    return mods + _systematic_modifiers(config, built, s, systematics, lookup, variations,
                                        report)


def _systematic_modifiers(config: ModelConfig, built: _Channel, s: Sample,
                          systematics: Sequence[Systematic], lookup: Lookup,
                          variations: set[str] | None, report: dict) -> list[dict]:
    """The modifiers of `systematics` on sample `s`; `variations` None: a variation without a
    histogram is an empty one (the signal's: the backgrounds' build checked the names)."""
    mods: list[dict] = []
    for syst in systematics:
        if syst.up is None:
            mods.append({"name": syst.name, "type": "normsys",
                         "data": {"hi": syst.hi, "lo": syst.lo}})
            continue
        sides = []
        for variation in (syst.up, syst.down):
            if variation is None:
                sides.append(None)
                continue
            if variations is not None and variation not in variations:
                raise ReanimateError(
                    f"no histogram of variation {variation!r} for any sample in any region "
                    f"(needed by systematic {syst.name!r}; e.g. "
                    f"{built.config.region}_{s.process}_{variation})")
            found = _template(lookup, built.config, s.process, variation, built.edges)
            zero = np.zeros(len(built.edges) - 1)
            sides.append(found if found is not None else (zero, zero))
        treated = treat_systematic(config.treatments, syst, built.nominals[s.name],
                                   sides[0], sides[1])
        report["systematics"].append({"channel": built.config.name, "sample": s.name,
                                      "systematic": syst.name, **treated.record})
        mods += treated.modifiers
    return mods


def _add_staterror(config: ModelConfig, built: _Channel, samples: list[dict],
                   report: dict) -> None:
    channel = next(c for c in report["channels"] if c["name"] == built.config.name)
    if not config.staterror:
        channel["staterror"] = None
        return
    total = sum(v for v, _ in built.nominals.values())
    variance = sum(var for _, var in built.nominals.values())
    why_not = treatments.staterror_bins(total, variance, config.treatments.staterror_threshold)
    keep = np.array([w is None for w in why_not])
    channel["staterror"] = {
        "parameter": f"staterror_{built.config.name}",
        "bins_with_parameter": int(keep.sum()),
        "bins_without": [{"bin": i, "reason": w} for i, w in enumerate(why_not) if w],
    }
    if not keep.any():
        return
    for sample in samples:
        sigma = np.where(keep, np.sqrt(built.nominals[sample["name"]][1]), 0.0)
        sample["modifiers"].append({"name": f"staterror_{built.config.name}",
                                    "type": "staterror", "data": sigma.tolist()})


# ------------------------------------------------------------------------------ signal


def _check_signal(config: ModelConfig) -> None:
    sig = config.signal
    if sig is None:
        return
    if sig.sample in {s.name for s in config.samples}:
        raise ReanimateError(f"signal sample {sig.sample!r}: a background has that name")
    if sig.poi in {nf.name for nf in config.normfactors}:
        raise ReanimateError(f"signal POI {sig.poi!r}: a normfactor of the model has that name")
    unknown = sorted(set(sig.systematics) - {syst.name for syst in config.systematics})
    if unknown:
        raise ReanimateError(f"signal systematics not in the model: {', '.join(unknown)}")
    low, high = sig.bounds
    if not low < high:
        raise ReanimateError(f"signal POI bounds {list(sig.bounds)}: the lower must be below "
                             f"the upper")


def _signal_parameter(sig: SignalConfig) -> dict:
    return {"name": sig.poi, "bounds": [[float(sig.bounds[0]), float(sig.bounds[1])]],
            "inits": [float(sig.init)]}


def _staterror_keep(channel: dict) -> np.ndarray | None:
    """The bins with a staterror parameter, from a channel's report entry (None: none)."""
    info = channel.get("staterror")
    if not info or not info["bins_with_parameter"]:
        return None
    keep = np.ones(len(channel["edges"]) - 1, dtype=bool)
    keep[[b["bin"] for b in info["bins_without"]]] = False
    return keep


def _signal_sample(config: ModelConfig, ch: Channel, edges: tuple[float, ...],
                   keep: np.ndarray | None, lookup: Lookup, report: dict) -> dict | None:
    """The signal sample of one channel in the backgrounds' bins (None: no events there).

    Its modifiers: the POI normfactor, its systematics (treated as the backgrounds' are), and
    the channel's staterror in the backgrounds' staterror bins (pyhf adds its sigma to theirs).
    """
    sig = config.signal
    nominal = _template(lookup, ch, sig.process, None, edges)
    row = {"channel": ch.name, "sample": sig.sample}
    if nominal is None or float(np.sum(np.clip(nominal[0], 0, None))) <= 0.0:
        report["samples"].append({**row, "status": "dropped",
                                  "reason": "no events in the fit range"})
        return None
    values, variances = nominal
    negative = int(np.sum(values < 0))
    report["samples"].append({**row, "status": "kept",
                              "reason": f"{negative} negative bin(s) floored at 0" if negative
                              else None})
    values = np.clip(values, 0.0, None)
    built = _Channel(ch, tuple(edges), np.zeros(len(edges) - 1), {sig.sample: (values, variances)})
    systematics = [syst for syst in config.systematics if syst.name in sig.systematics]
    mods = [{"name": sig.poi, "type": "normfactor", "data": None}]
    mods += _systematic_modifiers(config, built, Sample(sig.sample, sig.process), systematics,
                                  lookup, None, report)
    if keep is not None:
        sigma = np.where(keep, np.sqrt(variances), 0.0)
        mods.append({"name": f"staterror_{ch.name}", "type": "staterror",
                     "data": sigma.tolist()})
    return {"name": sig.sample, "data": values.tolist(), "modifiers": mods}


def _require_signal_somewhere(config: ModelConfig, report: dict) -> None:
    sig = config.signal
    if not any(r["sample"] == sig.sample and r["status"] == "kept" for r in report["samples"]):
        names = ", ".join(f"{ch.region}_{sig.process}" for ch in config.channels)
        raise ReanimateError(f"signal {sig.process!r} has no events in the fit range of any "
                             f"channel (histograms {names})")


def signal_patch(workspace: dict, report: dict, config: ModelConfig, lookup: Lookup,
                 decisions: dict | None = None) -> list[dict]:
    """RFC 6902 JSON Patch ops adding `config.signal` to a model built without it.

    `workspace` and `report` are build_model's outputs without signal (they give the bins and
    the staterror bins); `lookup` needs only the signal's histograms. Applying the ops gives
    build_model's workspace with the signal, exactly. The signal's decisions (sample and
    systematics rows, as in the report) are appended to `decisions` when given.
    """
    sig = config.signal
    if sig is None:
        raise ReanimateError("the model configuration has no signal")
    _check_signal(config)
    if report.get("treatments") != config.treatments.as_dict():
        raise ReanimateError("the statmodel report's treatments differ from the configuration's")
    rows = decisions if decisions is not None else {}
    rows.setdefault("samples", [])
    rows.setdefault("systematics", [])
    in_ws = {c.get("name"): i for i, c in enumerate(workspace.get("channels") or [])}
    in_report = {c.get("name"): c for c in report.get("channels") or []}
    ops = []
    for ch in config.channels:
        if ch.name not in in_ws:
            raise ReanimateError(f"channel {ch.name!r} is not in the workspace")
        if ch.name not in in_report:
            raise ReanimateError(f"channel {ch.name!r} is not in the statmodel report")
        index, channel = in_ws[ch.name], in_report[ch.name]
        present = workspace["channels"][index].get("samples")
        if not isinstance(present, list):
            raise ReanimateError(f"channel {ch.name!r} of the workspace has no samples list")
        if any(s.get("name") == sig.sample for s in present):
            raise ReanimateError(f"channel {ch.name!r} already has a sample {sig.sample!r}")
        nbins = len(channel["edges"]) - 1
        if present and len(present[0]["data"]) != nbins:
            raise ReanimateError(f"channel {ch.name!r}: the report's {nbins} bins are not the "
                                 f"workspace's {len(present[0]['data'])}")
        edges = tuple(float(e) for e in channel["edges"])
        sample = _signal_sample(config, ch, edges, _staterror_keep(channel), lookup, rows)
        if sample is not None:
            ops.append({"op": "add", "path": f"/channels/{index}/samples/{len(present)}",
                        "value": sample})
    _require_signal_somewhere(config, rows)
    names = [m.get("name") for m in workspace.get("measurements") or []]
    if config.measurement not in names:
        raise ReanimateError(f"measurement {config.measurement!r} is not in the workspace")
    m = names.index(config.measurement)
    measurement = workspace["measurements"][m]["config"]
    parameters = measurement.get("parameters")
    if any(p.get("name") == sig.poi for p in parameters or []):
        raise ReanimateError(f"the workspace already has a parameter {sig.poi!r}")
    ops.append({"op": "replace", "path": f"/measurements/{m}/config/poi", "value": sig.poi})
    if parameters is None:
        ops.append({"op": "add", "path": f"/measurements/{m}/config/parameters",
                    "value": [_signal_parameter(sig)]})
    else:
        ops.append({"op": "add", "path": f"/measurements/{m}/config/parameters/"
                    f"{len(parameters)}", "value": _signal_parameter(sig)})
    return ops


@dataclass
class Treated:
    modifiers: list[dict]
    record: dict  # normsys, histosys, treatments, effects, reason


def treat_systematic(t: treatments.Treatments, syst: Systematic, nominal, up, down) -> Treated:
    """normsys + histosys of one norm+shape systematic on one sample in one channel.

    `nominal`, `up`, `down` are (values, variances); down None means symmetrise the up side.
    Without treatments this is cabinetry's arithmetic: hi/lo = sum(varied)/sum(nominal),
    histosys templates = varied histograms rescaled to the nominal yield, a one-sided
    variation mirrored after normalisation (down = 2 nominal - up, lo = 2 - hi).
    """
    values, variances = nominal  # the nominal's negative bins are already floored
    total = float(np.sum(values))
    notes: list[str] = []
    if np.any(up[0] < 0) or (down is not None and np.any(down[0] < 0)):
        up = (np.clip(up[0], 0.0, None), up[1])
        down = None if down is None else (np.clip(down[0], 0.0, None), down[1])
        notes.append("floored")
    record = {"normsys": "kept", "histosys": "kept", "treatments": notes, "reason": None,
              "norm_effect": None, "shape_effect": None, "shape_p_value": None}
    hi = float(np.sum(up[0])) / total
    lo = float(np.sum(down[0])) / total if down is not None else 2.0 - hi
    if down is None:
        notes.append("symmetrised")
    bad = [f"{side} factor {f:.3g}" for side, f in (("up", hi), ("down", lo)) if not f > 0]
    if bad:
        reason = (f"variation yield not positive ({', '.join(bad)}"
                  f"{'; down = 2 - up' if down is None else ''})")
        if t.empty_variation == "drop":
            record.update(normsys="dropped", histosys="dropped", reason=reason)
            return Treated([], record)
        hi, lo = max(hi, t.norm_floor), max(lo, t.norm_floor)
        notes.append("norm floored")
        record["reason"] = reason + f", floored at {t.norm_floor:g}"
    up_shape = up[0] / (float(np.sum(up[0])) / total) if np.sum(up[0]) > 0 else values.copy()
    if down is not None:
        down_shape = (down[0] / (float(np.sum(down[0])) / total) if np.sum(down[0]) > 0
                      else values.copy())
    raw = [up_shape] if down is None else [up_shape, down_shape]
    raw_vars = [_shape_variance(up, hi)] + ([] if down is None else [_shape_variance(down, lo)])
    if t.smoothing and syst.smooth:
        up_shape = treatments.smooth_shape(values, up_shape)
        if down is not None:
            down_shape = treatments.smooth_shape(values, down_shape)
        notes.append("smoothed")
    if down is None:
        down_shape = 2.0 * values - up_shape
    if np.any(up_shape < 0) or np.any(down_shape < 0):
        up_shape, down_shape = np.clip(up_shape, 0, None), np.clip(down_shape, 0, None)
        if "floored" not in notes:
            notes.append("floored")
    norm_effect = max(abs(hi - 1.0), abs(lo - 1.0))
    shape = treatments.shape_effect(values, [up_shape, down_shape])
    p_values = [treatments.shape_p_value(values, variances, r, v if syst.independent else None)
                for r, v in zip(raw, raw_vars, strict=True)]
    p_values = [p for p in p_values if p is not None]
    p = min(p_values) if p_values else None
    record.update(norm_effect=rounded(norm_effect, 6), shape_effect=rounded(shape, 6),
                  shape_p_value=None if p is None else rounded(p, 6))
    reasons = []
    if norm_effect < t.prune_norm:
        record["normsys"] = "pruned"
        reasons.append(f"norm {norm_effect:.2%} < {t.prune_norm:.2%}")
    if shape < t.prune_shape:
        record["histosys"] = "pruned"
        reasons.append(f"shape {shape:.2%} < {t.prune_shape:.2%}")
    elif t.shape_significance is not None and p is not None and p > t.shape_significance:
        record["histosys"] = "pruned"
        reasons.append(f"shape not significant (p = {p:.2g} > {t.shape_significance:g})")
    if reasons:
        record["reason"] = "; ".join(filter(None, [record["reason"], *reasons]))
    mods = []
    if record["normsys"] == "kept":
        mods.append({"name": syst.name, "type": "normsys", "data": {"hi": hi, "lo": lo}})
    if record["histosys"] == "kept":
        mods.append({"name": syst.name, "type": "histosys",
                     "data": {"hi_data": up_shape.tolist(), "lo_data": down_shape.tolist()}})
    return Treated(mods, record)


def _shape_variance(side, factor: float) -> np.ndarray:
    """Variances of a variation's histogram once rescaled to the nominal yield."""
    return side[1] / factor**2 if factor > 0 else side[1]

def validate(workspace: dict) -> None:
    """Raise ReanimateError unless pyhf accepts `workspace` (schema and model building)."""
    import pyhf

    try:
        ws = pyhf.Workspace(workspace)
        ws.model()
    except (pyhf.exceptions.InvalidSpecification, pyhf.exceptions.InvalidModel,
            pyhf.exceptions.InvalidWorkspaceOperation, KeyError, ValueError) as exc:
        raise ReanimateError(f"not a valid pyhf workspace: {str(exc).splitlines()[0]}") from None
