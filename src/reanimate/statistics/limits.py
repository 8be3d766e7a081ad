"""CLs and upper limits of any pyhf workspace, checked, one JSON record per model.

`limit_record(workspace, settings=...)` gives the observed and expected (-2 ... +2 sigma) CLs at
mu and upper limits at the confidence level, with pyhf's asymptotic qmu~ formulae (or toys),
equal to `pyhf.infer.hypotest` / `upper_limit` within the tolerances of docs/limits.md, from
far fewer and faster fits (`limits_core`, `limits_model`, `limits_fit`). Before fitting, the
model is screened (`limits_screen`): stiff constraints are fixed, parameters without effect are
fixed, the POI's range is made fit for qmu~; every treatment is listed in the record. A fit
that fails its checks makes the point `failed` with the reason: never a silent wrong limit.
`load_patchset` applies a HEPData/pyhf PatchSet to its background-only workspace.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from reanimate.errors import ReanimateError

RECORD_FIELDS = ("name", "labels", "mu", "cls_observed", "cls_expected", "limit_observed",
                 "limit_expected", "cl", "status", "reason", "seconds")
DIGITS = 10  # significant digits kept in a record (the fits' noise is far above the last bits)
MAX_POI = 1e6  # the POI's upper bound is widened at most to this


@dataclass(frozen=True)
class LimitSettings:
    poi: str | None = None  # default: the measurement's POI
    cl: float = 0.95
    mu: float = 1.0  # where CLs is evaluated
    toys: int | None = None  # None: asymptotic qmu~
    seed: int = 0  # toys only (numpy Generator, never global state)


def software() -> dict:
    import iminuit
    import pyhf
    import scipy

    from reanimate import __version__

    return {"reanimate": __version__, "pyhf": pyhf.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "iminuit": iminuit.__version__}


def build(workspace: dict, poi: str | None = None, measurement: str | None = None,
          validate: bool = True):
    """(pyhf model, data) of a workspace dict with `poi` as the POI; ReanimateError if not a
    workspace or the POI is missing."""
    import pyhf

    if not isinstance(workspace, dict) or "channels" not in workspace:
        raise ReanimateError("not a pyhf workspace (no 'channels')")
    try:
        ws = pyhf.Workspace(workspace, validate=validate)
        overrides = {"poi_name": poi} if poi else {}
        model = ws.model(measurement_name=measurement, validate=False, **overrides)
        data = np.asarray(ws.data(model), dtype=float)
    except pyhf.exceptions.InvalidSpecification as exc:
        raise ReanimateError(f"not a valid pyhf workspace: {_first_line(exc)}") from None
    except (pyhf.exceptions.InvalidModel, pyhf.exceptions.InvalidMeasurement,
            pyhf.exceptions.InvalidModifier, KeyError, ValueError, TypeError,
            IndexError) as exc:
        text = _first_line(exc)
        if poi and poi in text:
            raise ReanimateError(f"the POI {poi} is not a parameter of the model") from None
        raise ReanimateError(f"not a valid pyhf workspace: {text}") from None
    if model.config.poi_index is None:
        raise ReanimateError("the measurement has no POI (give one with --poi)")
    if model.config.param_set(model.config.poi_name).n_parameters != 1:
        raise ReanimateError(f"the POI {model.config.poi_name} must be a scalar parameter")
    return model, data


def _first_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def limit_record(workspace: dict, *, name: str = "workspace", labels: dict | None = None,
                 settings: LimitSettings = LimitSettings(), measurement: str | None = None,
                 validate: bool = True) -> dict:
    """The record of one model (RECORD_FIELDS, then poi, method, mu_hat, software, treated).

    Bad input (not a workspace, POI missing, CL out of range) raises ReanimateError; numerical
    trouble gives status "failed" and its reason. BLAS runs single-threaded inside (the
    matrices are small; several threads per process only fight over the cores)."""
    with _one_blas_thread():
        return _limit_record(workspace, name, labels, settings, measurement, validate)


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scipy's stack
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _limit_record(workspace, name, labels, settings, measurement, validate) -> dict:
    from reanimate.statistics.limits_core import FitFailed, check_alpha
    from reanimate.statistics.limits_model import FastModel
    from reanimate.statistics.limits_screen import screen

    started = time.perf_counter()
    alpha = check_alpha(settings.cl)
    if settings.toys is not None and settings.toys < 1:
        raise ReanimateError(f"--toys must be at least 1, got {settings.toys}")
    model, data = build(workspace, settings.poi, measurement, validate=validate)
    fast = FastModel(model)
    record = {"name": name, "labels": dict(labels or {}), "mu": float(settings.mu),
              "cls_observed": None, "cls_expected": None, "limit_observed": None,
              "limit_expected": None, "cl": float(settings.cl), "status": "failed",
              "reason": None, "seconds": 0.0, "poi": model.config.poi_name,
              "method": ("asymptotic qmu~" if settings.toys is None
                         else f"toys qmu~ ({settings.toys} per hypothesis, seed {settings.seed})"),
              "mu_hat": None}
    treated: list[str] = []
    try:
        main, aux = fast.split(data)
        bounds, fixed, init = screen(fast, main, aux, settings.mu, treated)
        if settings.toys is None:
            values = _asymptotic(fast, main, aux, bounds, fixed, init, settings, alpha, treated)
        else:
            from reanimate.statistics.limits_toys import toy_values

            values = toy_values(fast, main, aux, bounds, fixed, init, settings, alpha)
        record.update(values)
        record["status"] = "ok"
    except FitFailed as exc:
        record["reason"] = str(exc)
    except FloatingPointError as exc:  # pragma: no cover - numpy errstate guards
        record["reason"] = f"numerical error: {exc}"
    if record["status"] == "ok" and treated:
        record["reason"] = "; ".join(treated)
    record["seconds"] = round(time.perf_counter() - started, 3)
    record["software"] = software()
    if treated:
        record["treated"] = treated
    return _rounded(record)


def _asymptotic(fast, main, aux, bounds, fixed, init, settings, alpha, treated) -> dict:
    from reanimate.statistics.limits_core import BelowFreeFit, FitFailed

    free_start = None
    for _ in range(3):  # a POI-fixed fit below the free fit: refit freely from there
        try:
            return _asymptotic_once(fast, main, aux, bounds, fixed, init, settings, alpha,
                                    treated, free_start)
        except BelowFreeFit as exc:
            free_start = exc.pars
    raise FitFailed("the free fit keeps missing the minimum (POI-fixed fits lie below it)")


def _asymptotic_once(fast, main, aux, bounds, fixed, init, settings, alpha, treated,
                     free_start) -> dict:
    from reanimate.statistics.limits_core import FitFailed, Hypotests

    poi = fast.poi
    tests = Hypotests(fast, main, aux, bounds, fixed, init, free_start)
    for _ in range(40):  # mu^ at the POI's upper bound: widen it and fit again
        if tests.mu_hat < bounds[poi, 1] * (1 - 1e-6) or bounds[poi, 1] >= MAX_POI:
            break
        bounds = bounds.copy()
        bounds[poi, 1] *= 4
        tests = Hypotests(fast, main, aux, bounds, fixed, init, tests.free.pars)
    observed, expected = tests.cls(settings.mu)
    limits = tests.expected_limits(alpha)
    observed_limit = tests.observed_limit(alpha, sigma=limits[2] / _median_k(alpha))
    top = max(observed_limit, *limits)
    original = fast.bounds[poi, 1]
    if top > original or bounds[poi, 1] > original:
        wide = max(bounds[poi, 1], top)
        treated.append(f"POI {fast.names[poi]}: limits beyond its upper bound {original:g} "
                       f"(pyhf's upper_limit stops there); range widened to "
                       f"[{bounds[poi, 0]:g}, {wide:.6g}]")
    if not all(math.isfinite(v) for v in (observed, *expected, observed_limit, *limits)):
        raise FitFailed("a CLs value or limit is not finite")
    return {"cls_observed": observed, "cls_expected": expected,
            "limit_observed": observed_limit, "limit_expected": limits,
            "mu_hat": tests.mu_hat, "fits": tests.fit_count}


def _median_k(alpha: float) -> float:
    from scipy.stats import norm

    return float(-norm.ppf(alpha * 0.5))


def _rounded(record: dict) -> dict:
    from reanimate.statistics.jsonio import rounded

    def r(v):
        if isinstance(v, float):
            return rounded(v, DIGITS)
        if isinstance(v, list):
            return [r(x) for x in v]
        return v

    return {k: r(v) if k not in ("labels", "software") else v for k, v in record.items()}


def load_patchset(workspace: dict, patchset: dict, names: list[str] | None = None,
                  where: str = "patchset") -> list[tuple[str, dict, dict]]:
    """[(patch name, {label: value}, patched workspace)] of a pyhf PatchSet, checked against
    the workspace's digest; unknown names and patches that do not apply: ReanimateError."""
    import jsonpatch
    import pyhf

    try:
        patches = pyhf.PatchSet(patchset)
    except pyhf.exceptions.InvalidSpecification as exc:
        raise ReanimateError(f"{where}: not a pyhf PatchSet: {_first_line(exc)}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise ReanimateError(f"{where}: not a pyhf PatchSet ({_first_line(exc)})") from None
    for algorithm, digest in patches.digests.items():
        try:
            actual = pyhf.utils.digest(workspace, algorithm=algorithm)
        except ValueError:
            raise ReanimateError(f"{where}: unknown digest algorithm {algorithm}") from None
        if actual != digest:
            raise ReanimateError(f"{where}: its {algorithm} digest {digest[:12]}... is not the "
                                 f"workspace's ({actual[:12]}...): made for another workspace")
    by_name = {p.name: p for p in patches.patches}
    if names:
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ReanimateError(f"{where}: no patch named {', '.join(unknown)} "
                                 f"({len(by_name)} patches, e.g. {next(iter(by_name), '-')})")
        chosen = [by_name[n] for n in dict.fromkeys(names)]
    else:
        chosen = list(patches.patches)
    out = []
    for patch in chosen:
        try:
            patched = jsonpatch.apply_patch(workspace, patch.patch, in_place=False)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError,
                IndexError, TypeError) as exc:
            raise ReanimateError(f"{where}: patch {patch.name} does not apply to the "
                                 f"workspace: {_first_line(exc)}") from None
        labels = dict(zip(patches.labels, patch.values, strict=False))
        out.append((patch.name, labels, patched))
    return out
