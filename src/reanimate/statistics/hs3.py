"""Lossless conversion between pyhf JSON workspaces and HS3 JSON documents (hs3_version 0.2).

pyhf -> HS3, per channel one `histfactory_dist` (`model_<channel>`) and one `binned` datum
(`obsData_<channel>`); per measurement one likelihood, one analysis (`domains` list,
`parameters_of_interest`), one `product_domain` (finite min/max for every parameter, from the
measurement's bounds or pyhf's defaults) and one parameter point (inits, `const` = fixed).
Modifiers are written as ROOT and pyhs3 read them:

* normfactor, normsys, histosys: `name` (the pyhf modifier name) and `parameter`;
  normsys/histosys carry `"constraint": "Gauss"` and no `interpolation` key (pyhf's defaults,
  code4 / code4p, are what ROOT and pyhs3 assume);
* staterror: per-bin `parameters`, `"constraint": "Gauss"` (pyhf's; ROOT defaults to Poisson);
  the per-sample uncertainties of pyhf's `data` go to the sample's `data.errors`, as HS3 wants;
  a bin without uncertainty (pyhf fixes its parameter at 1, with a unit-width constraint) is
  written with relative uncertainty 1 and a const parameter, as pyhf evaluates it, and listed
  in `misc.pyhf.staterror_zero_bins` so that HS3 -> pyhf restores the zeros;
* shapefactor: per-bin `parameters`;
* shapesys: per-bin `parameters`, `"constraint": "Poisson"`, `data.vals` = the **absolute**
  per-bin uncertainties of the sample, exactly pyhf's `data` and what pyhs3 reads (tau =
  (nominal/vals)^2). ROOT and the spec text read `vals` differently; the convention is recorded
  in `misc.pyhf.shapesys_vals = "absolute"` so a reader can tell;
* lumi: HS3 HistFactory has no lumi modifier, so it becomes a `normfactor` on the lumi
  parameter plus a `gaussian_dist` constraint (x = auxdata, sigma = sigmas) in the likelihood's
  `aux_distributions`, as ROOT writes it; HS3 -> pyhf turns it back into a `lumi` modifier.

Parameter names must be identifier-safe for HS3 readers (pyhs3 calls by keyword): a pyhf name
that is not (e.g. "Jet energy scale") is written as a safe name ("Jet_energy_scale") and the
original kept in `misc.pyhf.parameter_names`, so pyhf -> HS3 -> pyhf gives back the same JSON.
Whatever HS3 cannot say about a pyhf workspace (its `version`, which measurement-parameter keys
were explicit, non-lumi `auxdata`/`sigmas`/`factors`) is kept in `misc.pyhf`; an HS3 document
from elsewhere (no `misc.pyhf`) converts too, with pyhf names taken from the HS3 parameters.
"""

from __future__ import annotations

import copy
import re

from reanimate import __version__
from reanimate.errors import ReanimateError

HS3_VERSION = "0.2"
_SAFE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PER_BIN = {"staterror", "shapesys", "shapefactor"}
_SINGLE = {"normfactor", "normsys", "histosys", "lumi"}


def safe_name(name: str) -> str:
    """An identifier-safe version of `name` (unchanged when it already is one)."""
    if _SAFE.match(name):
        return name
    out = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return out if _SAFE.match(out) else f"p_{out}"


# --------------------------------------------------------------------------- pyhf -> HS3


def pyhf_to_hs3(workspace: dict, axes: dict[str, list[float]] | None = None) -> dict:
    """The HS3 document of a pyhf workspace. `axes` optionally gives bin edges per channel."""
    import pyhf

    try:
        pyhf.schema.validate(workspace, "workspace.json")
    except pyhf.exceptions.InvalidSpecification as exc:
        reason = " ".join(str(exc).split("\n")[:2]).replace("\t", "")
        raise ReanimateError(f"not a valid pyhf workspace: {reason}") from None
    ws = pyhf.Workspace(copy.deepcopy(workspace))
    names = _Names()
    channels = [_channel(c, names) for c in workspace["channels"]]
    kinds = _modifier_kinds(workspace)
    if "lumi" in kinds.values():
        lumi_params = {n for n, k in kinds.items() if k == "lumi"}
    else:
        lumi_params = set()
    obs = {o["name"]: o["data"] for o in workspace["observations"]}
    distributions, data = [], []
    for channel in channels:
        original = channel["_pyhf_name"]
        axis = _axis(names.channel(original), len(obs[original]), (axes or {}).get(original))
        distributions.append({"type": "histfactory_dist", "name": channel["name"],
                              "axes": [axis], "samples": channel["samples"]})
        data.append({"type": "binned", "name": f"obsData_{names.channel(original)}",
                     "axes": [axis], "contents": list(obs[original])})
    likelihoods, analyses, domains, points, measurements = [], [], [], [], []
    hf_names, data_names = [d["name"] for d in distributions], [d["name"] for d in data]
    for meas in workspace["measurements"]:
        m, cfg = meas["name"], meas["config"]
        try:
            model = ws.model(measurement_name=m)
        except Exception as exc:  # pyhf raises several types for a bad measurement
            raise ReanimateError(f"measurement {m!r}: {exc}") from None
        explicit = {p["name"]: p for p in cfg.get("parameters", [])}
        like = {"name": f"{m}_likelihood", "distributions": hf_names, "data": data_names}
        aux = [_lumi_constraint(p, explicit.get(p, {}), names) for p in sorted(lumi_params)]
        if aux:
            like["aux_distributions"] = [a["name"] for a in aux]
            distributions.extend(a for a in aux if a not in distributions)
        likelihoods.append(like)
        dom_axes, pars = [], []
        bounds, inits, fixed = (model.config.suggested_bounds(), model.config.suggested_init(),
                                model.config.suggested_fixed())
        for par in model.config.par_order:
            sl = model.config.par_slice(par)
            hs3_names = names.params(par, sl.stop - sl.start, kinds.get(par))
            for i, hs3_name in enumerate(hs3_names):
                lo, hi = bounds[sl.start + i]
                dom_axes.append({"name": hs3_name, "min": float(lo), "max": float(hi)})
                pars.append({"name": hs3_name, "value": float(inits[sl.start + i]),
                             "const": bool(fixed[sl.start + i])})
        domains.append({"type": "product_domain", "name": f"{m}_domain", "axes": dom_axes})
        points.append({"name": f"{m}_init", "parameters": pars})
        analyses.append({"name": m, "likelihood": like["name"], "domains": [f"{m}_domain"],
                         "parameters_of_interest": [names.param(cfg["poi"])], "init": f"{m}_init"})
        measurements.append(_measurement_misc(m, cfg, kinds))
    misc = {"version": workspace["version"], "measurements": measurements}
    zero_stat = {c["_pyhf_name"]: c["_zero_stat_bins"] for c in channels if c["_zero_stat_bins"]}
    if zero_stat:
        misc["staterror_zero_bins"] = zero_stat
    if names.changed_params:
        misc["parameter_names"] = dict(sorted(names.changed_params.items()))
    if names.changed_channels:
        misc["channel_names"] = dict(sorted(names.changed_channels.items()))
    if "shapesys" in kinds.values():
        misc["shapesys_vals"] = "absolute"
    return {
        "metadata": {"hs3_version": HS3_VERSION,
                     "packages": [{"name": "reanimate", "version": __version__}]},
        "distributions": distributions,
        "data": data,
        "likelihoods": likelihoods,
        "domains": domains,
        "parameter_points": points,
        "analyses": analyses,
        "misc": {"pyhf": misc},
    }


class _Names:
    """pyhf name -> HS3 name, recording the ones that had to change."""

    def __init__(self) -> None:
        self.changed_params: dict[str, str] = {}
        self.changed_channels: dict[str, str] = {}
        self._taken: dict[str, str] = {}

    def param(self, name: str) -> str:
        safe = safe_name(name)
        base, n = safe, 2
        while self._taken.setdefault(safe, name) != name:
            safe, n = f"{base}_{n}", n + 1
        if safe != name:
            self.changed_params[safe] = name
        return safe

    def params(self, name: str, n: int, kind: str | None) -> list[str]:
        if kind in _PER_BIN:
            return [f"{self.param(name)}_bin_{i}" for i in range(n)]
        return [self.param(name)]

    def channel(self, name: str) -> str:  # used after a prefix: may start with a digit
        safe = re.sub(r"[^A-Za-z0-9_]", "_", name)
        if safe != name:
            self.changed_channels[safe] = name
        return safe


def _modifier_kinds(workspace: dict) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for c in workspace["channels"]:
        for s in c["samples"]:
            for mod in s["modifiers"]:
                kind = kinds.setdefault(mod["name"], mod["type"])
                if kind != mod["type"] and {kind, mod["type"]} != {"normsys", "histosys"}:
                    raise ReanimateError(
                        f"modifier {mod['name']!r} is both {kind} and {mod['type']}"
                    )
    return kinds


def _channel(channel: dict, names: _Names) -> dict:
    samples = []
    for s in channel["samples"]:
        data = {"contents": list(s["data"])}
        mods = []
        stat = [m for m in s["modifiers"] if m["type"] == "staterror"]
        if len(stat) > 1:
            raise ReanimateError(
                f"channel {channel['name']!r}, sample {s['name']!r}: more than one staterror"
            )
        if stat:
            data["errors"] = list(stat[0]["data"])
        for mod in s["modifiers"]:
            mods.append(_modifier(mod, len(s["data"]), names))
        samples.append({"name": s["name"], "data": data, "modifiers": mods})
    zero_bins = _fill_zero_staterror_bins(samples)
    return {"name": f"model_{names.channel(channel['name'])}", "samples": samples,
            "_pyhf_name": channel["name"], "_zero_stat_bins": zero_bins}


def _fill_zero_staterror_bins(samples: list[dict]) -> list[int]:
    """Bins whose staterror uncertainty is zero in every sample: pyhf fixes their parameter at
    1 with a unit-width constraint, an HS3 reader would build a zero-width Gaussian (an infinite
    likelihood). Write them as pyhf evaluates them: relative uncertainty 1 (the whole error on
    the first sample with a staterror) and, in the parameter point, const. Returns the bins."""
    with_stat = [s for s in samples if "errors" in s["data"]]
    if not with_stat:
        return []
    nbins = len(with_stat[0]["data"]["errors"])
    zero = [b for b in range(nbins) if all(s["data"]["errors"][b] == 0 for s in with_stat)]
    for b in zero:
        with_stat[0]["data"]["errors"][b] = float(sum(s["data"]["contents"][b]
                                                      for s in with_stat)) or 1.0
    return zero


def _modifier(mod: dict, nbins: int, names: _Names) -> dict:
    kind, name = mod["type"], mod["name"]
    out: dict = {"type": kind, "name": name}
    if kind in _PER_BIN:
        out["parameters"] = names.params(name, nbins, kind)
    else:
        out["parameter"] = names.param(name)
    if kind == "normsys":
        out["data"] = {"hi": mod["data"]["hi"], "lo": mod["data"]["lo"]}
        out["constraint"] = "Gauss"
    elif kind == "histosys":
        out["data"] = {"hi": {"contents": list(mod["data"]["hi_data"])},
                       "lo": {"contents": list(mod["data"]["lo_data"])}}
        out["constraint"] = "Gauss"
    elif kind == "staterror":
        out["constraint"] = "Gauss"
    elif kind == "shapesys":
        out["data"] = {"vals": list(mod["data"])}
        out["constraint"] = "Poisson"
    elif kind == "lumi":
        out["type"] = "normfactor"
    elif kind not in ("normfactor", "shapefactor"):
        raise ReanimateError(f"modifier {name!r}: unsupported pyhf modifier type {kind!r}")
    return out


def _lumi_constraint(name: str, cfg: dict, names: _Names) -> dict:
    if "auxdata" not in cfg or "sigmas" not in cfg:
        raise ReanimateError(
            f"lumi parameter {name!r}: the measurement must set auxdata and sigmas"
        )
    par = names.param(name)
    return {"type": "gaussian_dist", "name": f"{par}_constraint", "x": cfg["auxdata"][0],
            "mean": par, "sigma": cfg["sigmas"][0]}


def _measurement_misc(name: str, cfg: dict, kinds: dict[str, str]) -> dict:
    params = []
    for p in cfg.get("parameters", []):
        entry: dict = {"name": p["name"], "keys": sorted(p)}
        extra = {k: p[k] for k in ("auxdata", "sigmas", "factors") if k in p}
        if kinds.get(p["name"]) == "lumi":
            extra = {k: v for k, v in extra.items() if k not in ("auxdata", "sigmas")}
        if extra:
            entry["extra"] = extra
        params.append(entry)
    return {"name": name, "keys": sorted(cfg), "parameters": params}


def _axis(channel: str, nbins: int, edges: list[float] | None) -> dict:
    name = f"obs_x_{channel}"
    if edges is None:
        return {"name": name, "min": 0.0, "max": float(nbins), "nbins": nbins}
    if len(edges) != nbins + 1:
        raise ReanimateError(f"channel {channel!r}: {len(edges)} edges for {nbins} bins")
    return {"name": name, "edges": [float(e) for e in edges]}


# --------------------------------------------------------------------------- HS3 -> pyhf


def hs3_to_pyhf(doc: dict) -> dict:
    """The pyhf workspace of an HS3 document made of HistFactory distributions."""
    try:
        return _hs3_to_pyhf(doc)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        raise ReanimateError(f"not a valid HS3 document of HistFactory distributions "
                             f"({type(exc).__name__}: {exc})") from None


def _hs3_to_pyhf(doc: dict) -> dict:
    if not isinstance(doc, dict) or "hs3_version" not in doc.get("metadata", {}):
        raise ReanimateError("not an HS3 document: metadata.hs3_version missing")
    misc = doc.get("misc", {}).get("pyhf", {})
    by_name = {d["name"]: d for d in doc.get("distributions", [])}
    data_by_name = {d["name"]: d for d in doc.get("data", [])}
    likelihoods = {lk["name"]: lk for lk in doc.get("likelihoods", [])}
    analyses = doc.get("analyses") or []
    if not analyses:
        raise ReanimateError("HS3 document has no analyses (needed for the POI)")
    param_names = misc.get("parameter_names", {})
    channel_names = misc.get("channel_names", {})
    first = _get(likelihoods, analyses[0]["likelihood"], "likelihood")
    lumi = _lumi_params(first, by_name)
    channels, observations = [], []
    for dist_name, data_name in zip(first["distributions"], first["data"], strict=True):
        dist = _get(by_name, dist_name, "distribution")
        if dist.get("type") != "histfactory_dist":
            raise ReanimateError(
                f"distribution {dist_name!r} is {dist.get('type')!r}; only histfactory_dist "
                "distributions convert to pyhf"
            )
        safe = dist_name.removeprefix("model_")
        cname = channel_names.get(safe, safe)
        samples = [_pyhf_sample(dist_name, s, param_names, lumi) for s in dist["samples"]]
        for b in misc.get("staterror_zero_bins", {}).get(cname, []):
            for sample in samples:  # back to pyhf's zero uncertainty (a fixed parameter)
                for mod in sample["modifiers"]:
                    if mod["type"] == "staterror":
                        mod["data"][b] = 0.0
        channels.append({"name": cname, "samples": samples})
        datum = _get(data_by_name, data_name, "data")
        observations.append({"name": cname, "data": list(datum["contents"])})
    measurements = [_measurement(a, doc, likelihoods, by_name, misc, param_names)
                    for a in analyses]
    return {"channels": channels, "measurements": measurements, "observations": observations,
            "version": misc.get("version", "1.0.0")}


def _get(table: dict, name: str, what: str) -> dict:
    if name not in table:
        raise ReanimateError(f"HS3 document: {what} {name!r} is referenced but not defined")
    return table[name]


def _lumi_params(likelihood: dict, by_name: dict) -> dict[str, dict]:
    out = {}
    for name in likelihood.get("aux_distributions", []):
        dist = _get(by_name, name, "aux distribution")
        if dist.get("type") == "gaussian_dist" and isinstance(dist.get("mean"), str):
            out[dist["mean"]] = dist
    return out


def _pyhf_sample(channel: str, sample: dict, param_names: dict, lumi: dict) -> dict:
    where = f"distribution {channel!r}, sample {sample['name']!r}"
    mods = []
    for mod in sample.get("modifiers", []):
        kind = mod["type"]
        if kind not in _PER_BIN | {"normfactor", "normsys", "histosys"}:
            raise ReanimateError(f"{where}: unknown modifier type {kind!r}")
        if "interpolation" in mod.get("data", {}) and mod["data"]["interpolation"] != {
            "normsys": "code4", "histosys": "code4p"}.get(kind):
            raise ReanimateError(f"{where}: modifier {mod['name']!r} uses interpolation "
                                 f"{mod['data']['interpolation']!r}; pyhf has only its defaults")
        constraint = mod.get("constraint")
        wanted = {"normsys": "Gauss", "histosys": "Gauss", "staterror": "Gauss",
                  "shapesys": "Poisson"}.get(kind)
        if constraint is not None and constraint != wanted:
            raise ReanimateError(f"{where}: {kind} {mod['name']!r} has a {constraint} constraint;"
                                 f" pyhf's {kind} has a {wanted} one")
        if kind in _PER_BIN:
            name = mod["name"]
        else:
            name = param_names.get(mod["parameter"], mod["parameter"])
        if kind == "normfactor":
            out = {"name": name, "type": "lumi" if mod["parameter"] in lumi else "normfactor",
                   "data": None}
        elif kind == "normsys":
            out = {"name": name, "type": kind, "data": {"hi": mod["data"]["hi"],
                                                        "lo": mod["data"]["lo"]}}
        elif kind == "histosys":
            out = {"name": name, "type": kind,
                   "data": {"hi_data": list(mod["data"]["hi"]["contents"]),
                            "lo_data": list(mod["data"]["lo"]["contents"])}}
        elif kind == "staterror":
            errors = sample["data"].get("errors")
            if errors is None:
                raise ReanimateError(f"{where}: staterror needs the sample's data.errors")
            out = {"name": name, "type": kind, "data": list(errors)}
        elif kind == "shapesys":
            out = {"name": name, "type": kind, "data": list(mod["data"]["vals"])}
        else:  # shapefactor
            out = {"name": name, "type": kind, "data": None}
        mods.append(out)
    return {"name": sample["name"], "data": list(sample["data"]["contents"]), "modifiers": mods}


def _measurement(analysis: dict, doc: dict, likelihoods: dict, by_name: dict, misc: dict,
                 param_names: dict) -> dict:
    name = analysis["name"]
    pois = analysis.get("parameters_of_interest") or []
    if len(pois) != 1:
        raise ReanimateError(f"analysis {name!r}: pyhf needs exactly one parameter of interest")
    domains = {d["name"]: d for d in doc.get("domains", [])}
    bounds: dict[str, tuple[float, float]] = {}
    for dname in analysis.get("domains", []):
        for ax in _get(domains, dname, "domain").get("axes", []):
            bounds[ax["name"]] = (ax["min"], ax["max"])
    points = {p["name"]: p for p in doc.get("parameter_points", [])}
    init = {}
    if analysis.get("init"):
        point = _get(points, analysis["init"], "parameter point")
        init = {p["name"]: p for p in point["parameters"]}
    lumi = _lumi_params(_get(likelihoods, analysis["likelihood"], "likelihood"), by_name)
    per_bin = _per_bin_parameters(doc)
    meta = {m["name"]: m for m in misc.get("measurements", [])}.get(name)
    inverse = {v: k for k, v in param_names.items()}

    def hs3_names(pyhf_name: str) -> list[str]:
        return per_bin.get(pyhf_name) or [inverse.get(pyhf_name, pyhf_name)]

    def entry(pyhf_name: str, keys: list[str], extra: dict) -> dict:
        hs = hs3_names(pyhf_name)
        out: dict = {"name": pyhf_name}
        for key in keys:
            if key == "bounds":
                out[key] = [list(bounds[h]) for h in hs]
            elif key == "inits":
                out[key] = [init[h]["value"] for h in hs]
            elif key == "fixed":
                out[key] = bool(init[hs[0]].get("const", False))
            elif key in ("auxdata", "sigmas") and hs[0] in lumi:
                out[key] = [lumi[hs[0]]["x" if key == "auxdata" else "sigma"]]
            elif key in extra:
                out[key] = extra[key]
        return out

    if meta is not None:
        params = [entry(p["name"], p["keys"], p.get("extra", {})) for p in meta["parameters"]]
    else:  # a foreign document: state bounds, inits and fixed of every single parameter
        params = []
        for h in sorted(bounds):
            if any(h in v for v in per_bin.values()):
                continue
            keys = ["bounds", "inits"] + (["fixed"] if init.get(h, {}).get("const") else [])
            keys += ["auxdata", "sigmas"] if h in lumi else []
            params.append(entry(param_names.get(h, h), [k for k in keys if k != "inits" or h in
                                                        init], {}))
    config: dict = {"poi": param_names.get(pois[0], pois[0])}
    if meta is None or "parameters" in meta["keys"]:
        config["parameters"] = params
    return {"name": name, "config": config}


def _per_bin_parameters(doc: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for dist in doc.get("distributions", []):
        for s in dist.get("samples", []) if dist.get("type") == "histfactory_dist" else []:
            for mod in s.get("modifiers", []):
                if mod["type"] in _PER_BIN:
                    out.setdefault(mod["name"], mod.get("parameters", []))
    return out
