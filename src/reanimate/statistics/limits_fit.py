"""Checked maximum-likelihood fits of a `FastModel`.

The first minimiser is a bounded Gauss-Newton (Levenberg-Marquardt) iteration on the exact
gradient and the Gauss-Newton Hessian, with the constraints' exact curvature (so a stiff
constraint is as easy as a loose one): from a warm start it converges in a handful of
likelihood evaluations. It has converged when the estimated distance to the minimum
(EDM = g H^-1 g / 2, in units of 2 NLL, over the parameters not held at a bound) is below
EDM_GOAL, or below EDM_STALLED when no step lowers the likelihood any more (round-off).
After GAUSS_NEWTON_ITERATIONS it switches to the exact Hessian (then BFGS-updated); where that
is indefinite (a non-convex region, far from the data) its eigenvalues are made positive
(|lambda|, floored), at most EXACT_RESTARTS times in a fit. That exact Hessian costs one
gradient per free parameter; the next fit to the same data (a nearby POI value) starts from the
last converged one instead, BFGS-updated, and takes a fresh one by differences only if no step
from it lowers the likelihood.
When it does not converge, MIGRAD (iminuit, exact gradient) takes over from the same start,
then at strategy 2 from the alternative start; each of its minima is checked too (a valid
minimum, a finite likelihood, the gradient small against each parameter's error). A fit
that fails every check is reported as failed with the reason, never used silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EDM_GOAL = 1e-9
EDM_STALLED = 1e-6  # accepted when no step lowers 2 NLL any more (MIGRAD's goal: 2e-7)
MAX_ITERATIONS = 200
GAUSS_NEWTON_ITERATIONS = 12  # then Newton with the exact Hessian (numerical, from gradients)
EXACT_RESTARTS = 4  # an indefinite (exact or BFGS) Hessian made positive, this often at most
HESSIANS_KEPT = 8  # exact Hessians kept for reuse (one per data set and fixed set)
TOLERANCE = 1e-4  # MIGRAD tolerance; EDM goal = 0.002 * tolerance (2 NLL, up = 1)
GRADIENT_GOAL = 1e-2  # |gradient x parameter error| at the minimum, in units of 2 NLL
BOUND_FRACTION = 1e-6


@dataclass
class Fit:
    pars: np.ndarray
    twice_nll: float
    ok: bool
    reason: str | None = None
    nfcn: int = 0
    grad_poi: float = 0.0  # d(2 NLL)/d POI at the minimum: d q_mu / d mu (envelope theorem)


class Fitter:
    """Fits of one model to given data, with some parameters fixed (POI at a value)."""

    def __init__(self, model, bounds: np.ndarray, fixed: np.ndarray):
        self.model = model
        self.bounds = np.asarray(bounds, dtype=float)
        self.fixed = np.asarray(fixed, dtype=bool)
        self.calls = 0
        self._hessians = {}  # (data, fixed) -> the last converged fit's exact Hessian

    def fit(self, main, aux, start, *, poi_value: float | None = None,
            alternative=None) -> Fit:
        """The best fit to (main, aux) from `start` (POI fixed at `poi_value` if given);
        `alternative` is a second start used when the first fit fails its checks."""
        fixed = self.fixed.copy()
        start = np.array(start, dtype=float)
        poi = self.model.poi
        if poi_value is not None:
            fixed[poi] = True
            start[poi] = poi_value
        first = self._newton(main, aux, start, fixed)
        if first.ok:
            return first
        migrad = self._migrad(main, aux, start, fixed, strategy=1)
        if migrad.ok:
            return migrad
        second_start = start if alternative is None else np.array(alternative, dtype=float)
        if poi_value is not None:
            second_start[poi] = poi_value
        second = self._migrad(main, aux, second_start, fixed, strategy=2)
        if second.ok:
            return second
        best = min((first, second), key=lambda f: f.twice_nll if np.isfinite(f.twice_nll)
                   else np.inf)
        best.ok = False
        best.reason = second.reason or first.reason
        return best

    def _newton(self, main, aux, start, fixed) -> Fit:
        free = ~fixed
        lo, hi = self.bounds[free, 0], self.bounds[free, 1]
        full = start.copy()
        full[free] = np.clip(start[free], lo, hi)
        model = self.model
        value, g, h = model.evaluate(full, main, aux)
        calls, damping = 1, 1e-6
        if not np.isfinite(value):
            return Fit(full, np.inf, False, "the likelihood is not finite at the start", calls)
        span = hi - lo
        restarts = 0
        key = (main.tobytes(), aux.tobytes(), fixed.tobytes())
        cached = False  # h is the previous fit's Hessian (same data, nearby POI value)
        for iteration in range(MAX_ITERATIONS):
            # far from the data the residual terms matter and Gauss-Newton crawls: then the
            # exact Hessian (the last converged fit's to these data, else by differences),
            # BFGS-updated
            if iteration == GAUSS_NEWTON_ITERATIONS:
                if key in self._hessians:
                    h, cached = self._hessians[key].copy(), True
                else:
                    h = self._exact_hessian(full, main, aux, free)
                    calls += int(free.sum())
            x, gf = full[free], g[free]
            held = (((x - lo) <= BOUND_FRACTION * span) & (gf > 0)) | (
                ((hi - x) <= BOUND_FRACTION * span) & (gf < 0))
            act = ~held
            hf = h[free][:, free][np.ix_(act, act)]
            ga = gf[act]
            if not np.all(np.isfinite(hf)) or not np.all(np.isfinite(ga)):
                return Fit(full, value, False, "the likelihood's derivatives are not finite",
                           calls, float(g[self.model.poi]))
            scale = np.sqrt(np.maximum(np.diag(hf), 1e-300))
            hs = hf / np.outer(scale, scale)
            gs = ga / scale
            step_s = _solve(hs, gs)
            exact = iteration >= GAUSS_NEWTON_ITERATIONS
            if step_s is None and exact and restarts < EXACT_RESTARTS:
                # the exact Hessian is indefinite (a non-convex region): its eigenvalues made
                # positive (|lambda|), as MIGRAD does, then BFGS updates go on from there
                restarts += 1
                h = _positive(h, free)
                hf = h[free][:, free][np.ix_(act, act)]
                scale = np.sqrt(np.maximum(np.diag(hf), 1e-300))
                hs = hf / np.outer(scale, scale)
                gs = ga / scale
                step_s = _solve(hs, gs)
            if step_s is None:
                return Fit(full, value, False, "the Hessian is singular (a flat direction)",
                           calls, float(g[self.model.poi]))
            edm = 0.5 * float(gs @ step_s)
            if edm < EDM_GOAL:
                if exact:  # kept for the next fit to these data
                    self._hessians.pop(key, None)
                    self._hessians[key] = h.copy()
                    while len(self._hessians) > HESSIANS_KEPT:  # toys: new data each fit
                        del self._hessians[next(iter(self._hessians))]
                self.calls += calls
                return Fit(full.copy(), value, True, None, calls, float(g[self.model.poi]))
            accepted = False
            for _ in range(30):
                step = np.zeros(int(free.sum()))
                step[act] = -_solve(hs + damping * np.eye(len(hs)), gs) / scale
                trial = full.copy()
                trial[free] = np.clip(x + step, lo, hi)
                out = model.evaluate(trial, main, aux)
                calls += 1
                if np.isfinite(out[0]) and out[0] < value:
                    previous, g_previous = full, g
                    full, (value, g, h_gn) = trial, out
                    if iteration < GAUSS_NEWTON_ITERATIONS - 1:
                        h = h_gn
                    elif iteration >= GAUSS_NEWTON_ITERATIONS:
                        h = _bfgs(h, full - previous, g - g_previous)
                    damping = max(damping / 10, 1e-9)
                    accepted = True
                    break
                damping *= 10
            if not accepted:
                if cached:  # the previous fit's Hessian misleads: a fresh one, here
                    h, cached = self._exact_hessian(full, main, aux, free), False
                    calls += int(free.sum())
                    continue
                break
        self.calls += calls
        if edm < EDM_STALLED:  # no step lowers 2 NLL any more: round-off at the minimum
            return Fit(full.copy(), value, True, None, calls, float(g[self.model.poi]))
        return Fit(full, value, False, f"Gauss-Newton did not converge (EDM {edm:.2g})", calls,
                   float(g[self.model.poi]))

    def _exact_hessian(self, full, main, aux, free) -> np.ndarray:
        """The Hessian of 2 NLL by forward differences of the exact gradient (free block)."""
        h = np.zeros((self.model.npars, self.model.npars))
        lo, hi = self.bounds[:, 0], self.bounds[:, 1]
        g0 = self.model.value_and_grad(full, main, aux)[1]
        for i in np.nonzero(free)[0]:
            step = 1e-6 * max(abs(full[i]), 1e-2)
            moved = full.copy()
            moved[i] = full[i] + step if full[i] + step <= hi[i] else full[i] - step
            moved[i] = max(moved[i], lo[i])
            h[:, i] = (self.model.value_and_grad(moved, main, aux)[1] - g0) / (moved[i] - full[i])
        h = 0.5 * (h + h.T)
        idx = np.nonzero(~free)[0]
        h[idx, idx] = 1.0
        return h

    def _migrad(self, main, aux, start, fixed, strategy: int) -> Fit:
        from iminuit import Minuit

        free = ~fixed
        lo, hi = self.bounds[free, 0], self.bounds[free, 1]
        x0 = np.clip(start[free], lo, hi)
        full = start.copy()
        cache = {}

        def evaluate(x):
            key = x.tobytes()
            if key not in cache:
                full[free] = x
                cache.clear()
                cache[key] = self.model.value_and_grad(full, main, aux)
            return cache[key]

        def fcn(x):
            v = evaluate(np.asarray(x, dtype=float))[0]
            return v if np.isfinite(v) else 1e300

        def grad(x):
            g = evaluate(np.asarray(x, dtype=float))[1][free]
            return np.where(np.isfinite(g), g, 0.0)

        if not np.isfinite(evaluate(x0)[0]):
            return Fit(start, np.inf, False, "the likelihood is not finite at the start")
        m = Minuit(fcn, x0, grad=grad)
        m.errordef = Minuit.LEAST_SQUARES
        m.limits = list(zip(lo, hi, strict=True))
        m.errors = np.maximum(np.minimum(0.1 * (hi - lo), 0.5), 1e-8) * _step_scale(
            self.model, free)
        m.strategy = strategy
        m.tol = TOLERANCE
        m.migrad(ncall=20000)
        x = np.asarray(m.values, dtype=float)
        full[free] = x
        value, g = self.model.value_and_grad(full, main, aux)
        self.calls += m.nfcn
        ok, reason = True, None
        if not m.valid:
            ok, reason = False, f"MIGRAD found no valid minimum (EDM {m.fmin.edm:.2g})"
        elif not np.isfinite(value):
            ok, reason = False, "the likelihood is not finite at the minimum"
        else:
            err = np.asarray(m.errors, dtype=float)
            span = hi - lo
            interior = (x - lo > BOUND_FRACTION * span) & (hi - x > BOUND_FRACTION * span)
            worst = np.abs(g[free] * err)[interior]
            if worst.size and worst.max() > GRADIENT_GOAL:
                i = int(np.argmax(np.where(interior, np.abs(g[free] * err), -1)))
                name = np.asarray(self.model.names)[free][i]
                ok, reason = False, (f"the gradient at the minimum is not small "
                                     f"({name}: {g[free][i]:.2g} x error {err[i]:.2g})")
        return Fit(full.copy(), float(value), ok, reason, m.nfcn, float(g[self.model.poi]))


def _positive(h, free) -> np.ndarray:
    """h with the free block's eigenvalues made positive (|lambda|, floored)."""
    idx = np.nonzero(free)[0]
    lam, v = np.linalg.eigh(h[np.ix_(idx, idx)])
    lam = np.maximum(np.abs(lam), 1e-8 * np.abs(lam).max())
    out = h.copy()
    out[np.ix_(idx, idx)] = (v * lam) @ v.T
    return out


def _bfgs(h, s, y) -> np.ndarray:
    """The BFGS update of Hessian h for step s and gradient change y (skipped if s.y <= 0)."""
    sy = float(s @ y)
    hs = h @ s
    shs = float(s @ hs)
    if sy <= 1e-300 or shs <= 1e-300:
        return h
    return h + np.outer(y, y) / sy - np.outer(hs, hs) / shs


def _solve(h, g):
    """h^-1 g by Cholesky (None when h is not positive definite)."""
    from scipy.linalg import solve_triangular

    try:
        c = np.linalg.cholesky(h)
    except np.linalg.LinAlgError:
        return None
    return solve_triangular(c.T, solve_triangular(c, g, lower=True), lower=False)


def _step_scale(model, free) -> np.ndarray:
    """Initial steps no larger than each constraint's width (stiff constraints otherwise make
    MIGRAD's first steps useless)."""
    width = np.where(model.normal, model.sigma,
                     np.where(model.poisson, 1.0 / np.sqrt(model.tau), 1.0))
    return np.minimum(1.0, width[free] * 5.0)
