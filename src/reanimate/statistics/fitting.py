"""Maximum-likelihood fits of a pyhf model with iminuit (MIGRAD with retries, HESSE, MINOS).

`fit_workspace` returns a JSON-ready dict: the POI, every parameter with its error, its
constraint and its pull ((value - centre) / prior width; None for free parameters), the
correlation matrix, the minimum NLL (-log L, with pyhf's constants), Minuit's status, and
whether the fit converged with the reason when it did not (`status`: every MIGRAD attempt,
the covariance quality, the parameters at a bound by name).
With `significance=True` it adds the discovery significance Z = sqrt(q0), q0 computed from
the profile-likelihood test statistic directly (pyhf's hypotest p-value underflows to 0 for
a strong signal, so Z = inf there). Floats are rounded to 12 significant digits so that the
bytes do not depend on the last bits of the minimiser's arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from reanimate.errors import ReanimateError
from reanimate.statistics.jsonio import rounded

DEFAULT_TOLERANCE = 1e-3  # Minuit EDM goal = 0.002 * tolerance (we minimise 2 NLL, up = 1)
_WALL = 1e12  # 2 NLL returned where an expected yield is negative
BOUND_FRACTION = 1e-4  # a parameter within this fraction of its range of a bound is at it
POI_STARTS = (0.5, 2.0)  # retries start the POI at these multiples of its initial value
CALLS_PER_PARAMETER = 150  # MIGRAD calls per iteration (3 per attempt): 150 x free parameters
TOTAL_CALLS_PER_PARAMETER = 1000  # no new attempt once all attempts used this many


@dataclass
class Attempt:
    strategy: int
    start: str  # "initial", "previous minimum", "poi x0.5", ...
    valid: bool
    edm: float
    twice_nll: float
    nfcn: int

    def as_dict(self) -> dict:
        return {"strategy": self.strategy, "start": self.start, "valid": self.valid,
                "edm": rounded(self.edm, 6), "nll": rounded(self.twice_nll / 2),
                "nfcn": self.nfcn}


@dataclass
class FitResult:
    bestfit: np.ndarray
    errors: np.ndarray
    correlation: np.ndarray
    twice_nll: float
    valid: bool
    edm: float
    nfcn: int
    migrad_calls: int
    strategy: int = 1
    covariance: str = "accurate"  # accurate | made positive definite | approximate | failed
    at_bounds: list[dict] = field(default_factory=list)  # {"name", "value", "bound"}
    attempts: list[Attempt] = field(default_factory=list)
    minos: dict | None = None  # {"lower": ..., "upper": ..., "valid": ...} for the POI
    converged: bool = True
    reason: str | None = None


def load_model(workspace: dict, measurement: str | None = None):
    """(model, data) of a pyhf workspace dict; ReanimateError if pyhf refuses it."""
    import pyhf

    try:
        ws = pyhf.Workspace(workspace)
        model = ws.model(measurement_name=measurement)
        return model, np.asarray(ws.data(model), dtype=float)
    except (pyhf.exceptions.InvalidSpecification, pyhf.exceptions.InvalidModel,
            pyhf.exceptions.InvalidMeasurement, KeyError, ValueError) as exc:
        raise ReanimateError(f"not a valid pyhf workspace: {str(exc).splitlines()[0]}") from None


def fit_model(model, data, *, init=None, fixed=None, tolerance: float = DEFAULT_TOLERANCE,
              strategy: int = 1, physical: bool = False, retries: bool = True,
              minos: bool = False) -> FitResult:
    """MIGRAD with strategy escalation and bounded retries, then HESSE (MINOS on request).

    The objective is pyhf's -2 log L (numpy backend, float64); with `physical=True` it is
    walled off (a huge value) where an expected yield would be negative, where pyhf's Poisson
    term is unbounded for bins with no data. Step sizes and limits are pyhf's. Attempts, at
    most four, each MIGRAD then HESSE: at `strategy` from the start; while the result is not
    clean (valid minimum, a covariance not forced positive-definite, no nuisance parameter at a
    bound), at strategy 2 from where it stopped, then from the start with the POI at 0.5x and
    2x its initial value. Each has a call budget (CALLS_PER_PARAMETER, at most 3 of iminuit's
    own iterations), and no attempt starts once TOTAL_CALLS_PER_PARAMETER is spent, so that a
    fit that runs away fails in seconds; the best wins (clean, then valid, then lowest). The
    result says whether the fit converged (clean, as above) and, if not, why.
    """
    import pyhf
    from iminuit import Minuit

    pyhf.set_backend("numpy")
    data = np.asarray(data, dtype=float)
    bounds = model.config.suggested_bounds()

    twice_nll = _objective(model, data, physical)
    start = np.asarray(model.config.suggested_init() if init is None else init, dtype=float)
    if not np.isfinite(twice_nll(start)):
        raise ReanimateError("the fit failed: the likelihood is not finite at the starting point")
    labels = parameter_labels(model)
    fixed = list(model.config.suggested_fixed() if fixed is None else fixed)
    poi = model.config.poi_index

    def minimiser(values, strat: int) -> Minuit:
        m = Minuit(twice_nll, list(values), name=labels)
        m.errordef = Minuit.LEAST_SQUARES  # up = 1 for 2 NLL
        m.limits = bounds
        m.fixed = fixed
        m.errors = [(hi - lo) / 1000.0 for lo, hi in bounds]
        m.tol = tolerance
        m.strategy = strat
        return m

    plan = [(strategy, "initial", start)]
    if retries:
        plan.append((2, "previous minimum", None))
        if poi is not None and not fixed[poi]:
            for factor in POI_STARTS:
                moved = start.copy()
                lo, hi = bounds[poi]
                moved[poi] = float(np.clip(start[poi] * factor, lo, hi))
                plan.append((2, f"poi x{factor:g}", moved))

    def score(m) -> tuple:  # a clean minimum, then a valid one, then the lowest
        clean = (m.valid and _covariance_quality(m) in ("accurate", "approximate")
                 and not _nuisance_at_bound(np.asarray(m.values), bounds, fixed, poi))
        return (clean, bool(m.valid), -float(m.fval))

    attempts: list[Attempt] = []
    best = last = None
    free = len(fixed) - sum(fixed)
    for strat, label, values in plan:
        if sum(a.nfcn for a in attempts) > max(10000, TOTAL_CALLS_PER_PARAMETER * free):
            break
        m = minimiser(np.asarray(last.values) if values is None else values, strat)
        m.migrad(ncall=max(2000, CALLS_PER_PARAMETER * free), iterate=3)
        if m.valid and np.isfinite(m.fval):
            m.hesse()  # a covariance forced positive-definite is a reason to try again
        attempts.append(Attempt(strat, label, bool(m.valid), float(m.fmin.edm),
                                float(m.fval), int(m.nfcn)))
        last = m
        if np.isfinite(m.fval) and (best is None or score(m) > score(best)):
            best = m
        if best is not None and score(best)[0]:
            break
    if best is None or not np.isfinite(best.fval):
        raise ReanimateError("the fit failed: the likelihood is not finite at the minimum")
    if best.covariance is None or not best.valid:
        best.hesse()
    minos_result = None
    if minos and poi is not None and not fixed[poi]:
        try:
            best.minos(labels[poi])
            me = best.merrors[labels[poi]]
            minos_result = {"lower": rounded(me.lower), "upper": rounded(me.upper),
                            "valid": bool(me.is_valid)}
        except RuntimeError as exc:  # iminuit refuses MINOS on an invalid minimum
            minos_result = {"lower": None, "upper": None, "valid": False, "note": str(exc)}
    return _result(best, bounds, fixed, labels, poi, attempts, minos_result)


def _objective(model, data: np.ndarray, physical: bool):
    """pyhf's -2 log L at a point, walled off (`physical`) where an expected yield is negative.

    Each distinct point is evaluated once (MIGRAD and HESSE come back to some), and the walled
    objective computes the expected data once per point, not once for the wall and again
    inside pyhf's logpdf; both give exactly pyhf's numbers (checked at the first point).
    """
    import pyhf
    from pyhf import probability

    seen: dict[bytes, float] = {}
    shared = [True]  # the expected data computed once: off if it ever differs from pyhf's

    def plain(pars: np.ndarray) -> float:
        return -2.0 * float(model.logpdf(pars, data)[0])

    def walled(pars: np.ndarray) -> float:
        if not shared[0]:
            expected = np.asarray(model.main_model.expected_data(pars))
            if expected.min() < 0:
                return _WALL * (1.0 + float(-expected[expected < 0].sum()))
            return plain(pars)
        t = pyhf.tensorlib
        tpars = t.astensor(pars)
        lambdas = model.main_model.expected_data(tpars)  # the first step of model.logpdf
        expected = np.asarray(lambdas)
        if expected.min() < 0:
            return _WALL * (1.0 + float(-expected[expected < 0].sum()))
        pdfs = [probability.Independent(probability.Poisson(lambdas))]
        constraint = model.constraint_model.make_pdf(tpars)
        if constraint:
            pdfs.append(constraint)
        joint = probability.Simultaneous(pdfs, model.fullpdf_tv, model.batch_size)
        value = -2.0 * float(t.reshape(joint.log_prob(t.astensor(data)), (1,))[0])
        if not seen and value != plain(pars) and not (np.isnan(value)
                                                     and np.isnan(plain(pars))):
            shared[0] = False  # another pyhf: its own logpdf from now on
            return walled(pars)
        return value

    evaluate = walled if physical else plain

    def twice_nll(pars) -> float:
        pars = np.asarray(pars, dtype=float)
        key = pars.tobytes()
        if key not in seen:
            seen[key] = evaluate(pars)
        return seen[key]

    return twice_nll


def _covariance_quality(m) -> str:
    fmin = m.fmin
    if m.covariance is None or fmin is None or fmin.hesse_failed:
        return "failed"
    if fmin.has_made_posdef_covar:
        return "made positive definite"
    return "accurate" if fmin.has_accurate_covar else "approximate"


def _strategy(m) -> int:
    """Minuit's strategy as an int (iminuit returns an MnStrategy object)."""
    strategy = m.strategy
    return int(getattr(strategy, "strategy", strategy))


def _nuisance_at_bound(values, bounds, fixed, poi) -> bool:
    return any(not fixed[i] and i != poi
               and min(values[i] - lo, hi - values[i]) <= BOUND_FRACTION * (hi - lo)
               for i, (lo, hi) in enumerate(bounds))


def _result(m, bounds, fixed, labels, poi, attempts, minos_result) -> FitResult:
    n = len(bounds)
    cov = np.asarray(m.covariance, dtype=float) if m.covariance is not None else np.zeros((n, n))
    err = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(np.outer(err, err) > 0, cov / np.outer(err, err), 0.0)
    np.fill_diagonal(corr, [1.0 if e > 0 else 0.0 for e in err])
    fmin = m.fmin
    covariance = _covariance_quality(m)
    values = np.asarray(m.values, dtype=float)
    at_bounds = []
    for i, (lo, hi) in enumerate(bounds):
        if fixed[i]:
            continue
        tol = BOUND_FRACTION * (hi - lo)
        for side, bound in (("lower", lo), ("upper", hi)):
            if abs(values[i] - bound) <= tol:
                at_bounds.append({"name": labels[i], "value": rounded(values[i]),
                                  "bound": side, "poi": i == poi})
    reasons = []
    if not fmin.is_valid:
        detail = [what for flag, what in (
            (fmin.is_above_max_edm, f"EDM {fmin.edm:.3g} above the goal {fmin.edm_goal:.3g}"),
            (fmin.has_reached_call_limit, "call limit reached"),
            (not fmin.has_valid_parameters, "invalid parameters"),
        ) if flag]
        reasons.append("MIGRAD found no valid minimum" + (f" ({', '.join(detail)})"
                                                          if detail else ""))
    if covariance in ("failed", "made positive definite"):
        reasons.append(f"HESSE covariance {covariance}")
    nuisance_at_bounds = [b for b in at_bounds if not b["poi"]]
    if nuisance_at_bounds:
        listed = ", ".join(f"{b['name']} at its {b['bound']} bound ({b['value']:g})"
                           for b in nuisance_at_bounds[:6])
        more = len(nuisance_at_bounds) - 6
        reasons.append(f"parameters at a bound: {listed}" + (f" and {more} more" if more > 0
                                                             else ""))
    return FitResult(
        bestfit=values, errors=err, correlation=corr, twice_nll=float(m.fval),
        valid=bool(fmin.is_valid), edm=float(fmin.edm), nfcn=sum(a.nfcn for a in attempts),
        migrad_calls=len(attempts), strategy=_strategy(m), covariance=covariance,
        at_bounds=at_bounds, attempts=attempts, minos=minos_result,
        converged=not reasons, reason="; ".join(reasons) or None,
    )


def parameter_labels(model) -> list[str]:
    """One label per fit parameter, pyhf's style: name, or name[i] for per-bin parameters."""
    labels = []
    for par in model.config.par_order:
        n = model.config.param_set(par).n_parameters
        labels += [par] if n == 1 and not _per_bin(model, par) else [f"{par}[{i}]"
                                                                     for i in range(n)]
    return labels


def _per_bin(model, par: str) -> bool:
    return any(n == par and t in ("staterror", "shapesys", "shapefactor")
               for n, t in model.config.modifiers)


def constraints(model) -> list[dict | None]:
    """Per fit parameter: {"type": "gaussian"|"poisson", "center", "width"} or None (free)."""
    out: list[dict | None] = []
    for par in model.config.par_order:
        ps = model.config.param_set(par)
        n = ps.n_parameters
        if not getattr(ps, "constrained", False):
            out += [None] * n
            continue
        aux = list(ps.auxdata)
        if ps.pdf_type == "poisson":
            factors = list(ps.factors)
            out += [{"type": "poisson", "center": 1.0,
                     "width": 1.0 / math.sqrt(f) if f > 0 else 0.0} for f in factors]
        else:
            sigmas = list(getattr(ps, "sigmas", [1.0] * n))
            out += [{"type": "gaussian", "center": float(a), "width": float(s)}
                    for a, s in zip(aux, sigmas, strict=True)]
    return out


def significance(model, data, free: FitResult | None = None,
                 tolerance: float = DEFAULT_TOLERANCE) -> dict:
    """Discovery test of POI = 0: q0 = 2 (NLL(POI=0) - NLL(best)) if POI-hat >= 0, Z = sqrt(q0).

    The same test statistic as pyhf.infer.test_statistics.q0, from two of our fits. The
    background-only fit is kept to non-negative expected yields: far from the best fit,
    low-statistics histosys templates can drive bins negative, where pyhf's likelihood runs
    away to -infinity and q0 would come out 0.
    """
    from scipy.stats import norm

    poi = model.config.poi_index
    if model.config.suggested_bounds()[poi][0] > 0:
        raise ReanimateError("significance needs POI bounds that include 0")
    free = free or fit_model(model, data, tolerance=tolerance)
    init = np.asarray(free.bestfit, dtype=float).copy()
    init[poi] = 0.0
    fixed = list(model.config.suggested_fixed())
    fixed[poi] = True
    try:
        null = fit_model(model, data, init=init, fixed=fixed, tolerance=tolerance,
                         physical=True)
    except ReanimateError:  # e.g. bins with data and no expected background: q0 = infinity
        return {"q0": None, "Z": None, "p0": None, "converged": False,
                "note": "the background-only likelihood is zero or undefined where the fit "
                        "starts (bins with data and no background?): Z is not finite"}
    q0 = max(null.twice_nll - free.twice_nll, 0.0) if free.bestfit[poi] >= 0 else 0.0
    z = math.sqrt(q0)
    return {"q0": rounded(q0), "Z": rounded(z), "p0": rounded(float(norm.sf(z))),
            "converged": bool(null.valid), "note": None}


def fit_workspace(workspace: dict, *, measurement: str | None = None,
                  with_significance: bool = False, minos: bool = False,
                  tolerance: float = DEFAULT_TOLERANCE) -> dict:
    """Fit a pyhf workspace to its observations; the JSON-ready results dict."""
    import iminuit
    import pyhf

    model, data = load_model(workspace, measurement)
    res = fit_model(model, data, tolerance=tolerance, minos=minos)
    labels = parameter_labels(model)
    cons = constraints(model)
    init = model.config.suggested_init()
    bounds = model.config.suggested_bounds()
    fixed = model.config.suggested_fixed()
    kinds: dict[str, list[str]] = {}
    for name, kind in model.config.modifiers:
        kinds.setdefault(name, [])
        if kind not in kinds[name]:
            kinds[name].append(kind)
    parameters = []
    for i, label in enumerate(labels):
        value, error, c = res.bestfit[i], res.errors[i], cons[i]
        pull = pull_error = None
        if c is not None and c["width"] > 0 and not fixed[i]:
            pull = rounded((value - c["center"]) / c["width"])
            pull_error = rounded(error / c["width"])
        parameters.append({
            "name": label,
            "value": rounded(value), "error": rounded(error),
            "init": rounded(init[i]), "bounds": [rounded(b) for b in bounds[i]],
            "fixed": bool(fixed[i]),
            "constraint": None if c is None else {k: (rounded(v) if k != "type" else v)
                                                  for k, v in c.items()},
            "pull": pull, "pull_error": pull_error,
            "modifiers": sorted(kinds.get(label.split("[")[0], [])),
        })
    poi = model.config.poi_index
    out = {
        "measurement": measurement or workspace["measurements"][0]["name"],
        "poi": {"name": model.config.poi_name, "value": rounded(res.bestfit[poi]),
                "error": rounded(res.errors[poi]), "minos": res.minos},
        "parameters": parameters,
        "correlation": {"parameters": labels,
                        "matrix": [[rounded(x, 10) for x in row] for row in res.correlation]},
        "nll": rounded(res.twice_nll / 2),
        "converged": res.converged,
        "status": {"reason": res.reason, "covariance": res.covariance,
                   "at_bounds": res.at_bounds,
                   "attempts": [a.as_dict() for a in res.attempts]},
        "minuit": {"valid": res.valid, "edm": rounded(res.edm, 6), "hesse": True,
                   "tolerance": tolerance, "strategy": res.strategy,
                   "migrad_calls": res.migrad_calls, "nfcn": res.nfcn},
        "significance": (significance(model, data, res, tolerance) if with_significance
                         else None),
        "software": {"pyhf": pyhf.__version__, "iminuit": iminuit.__version__},
    }
    return out


def parameter_vector(model, fit: dict) -> np.ndarray:
    """The best-fit parameter vector of `fit` (a results dict) in `model`'s order."""
    values = {p["name"]: p["value"] for p in fit["parameters"]}
    labels = parameter_labels(model)
    missing = [label for label in labels if label not in values]
    if missing:
        raise ReanimateError(f"fit results lack parameters of the model: {missing[:5]}")
    return np.array([values[label] for label in labels], dtype=float)


def covariance(model, fit: dict) -> np.ndarray:
    """Covariance matrix from the fit's errors and correlation matrix (model's order)."""
    labels = parameter_labels(model)
    errors = {p["name"]: p["error"] for p in fit["parameters"]}
    index = {name: i for i, name in enumerate(fit["correlation"]["parameters"])}
    corr = np.asarray(fit["correlation"]["matrix"], float)
    order = [index[label] for label in labels]
    err = np.array([errors[label] for label in labels])
    return corr[np.ix_(order, order)] * np.outer(err, err)
