"""CLs and upper limits of one model with the asymptotic qmu~ formulae, as pyhf computes them.

pyhf's `hypotest(mu, test_stat="qtilde")` at a given mu needs four fits (free and POI-fixed, on
the data and on the Asimov data of the background-only fit); `upper_limit` repeats that for
every mu of its root finds, one per limit, each fit from the model's initial values with
numerical gradients. Here the same numbers come from fewer, faster fits:

* the free fit to the data and the background-only fit (mu = 0, which makes the Asimov data)
  are done once; the free fit to the Asimov data is its generating point (exact);
* a POI-fixed fit is done once per mu, warm-started from the nearest mu already fitted;
* the expected limit of band n solves sqrt(q_mu,A(mu)) = K_n, K_n = -Phi^-1(alpha Phi(-n)) - n
  (the asymptotic formula CLs_n = Phi(-(n + sqrt q_mu,A)) / Phi(-n)): Asimov fits only,
  a secant iteration from mu = K_n sigma, two to four fits per band;
* the observed limit is a bracketed Brent root of Phi^-1(CLs_obs(mu)) - Phi^-1(alpha),
  started from the asymptotic estimate, each step one data and one Asimov fit.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from reanimate.errors import ReanimateError
from reanimate.statistics.limits_fit import Fit, Fitter

BANDS = (2, 1, 0, -1, -2)  # pyhf's order: the -2 sigma expected CLs (smallest) first
RTOL = 1e-6  # relative tolerance of every limit's root find (pyhf's toms748: 1e-4)
FREE_SLACK = 1e-6  # 2 NLL a POI-fixed fit may lie below the free fit (fit noise)
ACCEPT = 1e-3  # a Newton step this small (relative) is taken as the last one
MAX_STEPS = 40


class FitFailed(Exception):
    """A fit did not pass its checks: the point is reported as failed with this reason."""


class BelowFreeFit(Exception):
    """A POI-fixed fit went below the free fit: the free fit missed the minimum."""

    def __init__(self, pars):
        self.pars = pars


class Hypotests:
    """qmu~ of one model at any mu, with every fit cached and warm-started."""

    def __init__(self, model, main, aux, bounds, fixed, init, free_start=None):
        self.model = model
        self.main, self.aux = main, aux
        self.init = np.asarray(init, dtype=float)
        self.fitter = Fitter(model, bounds, fixed)
        self.poi = model.poi
        start = self.init if free_start is None else free_start
        self.free = self._checked(self.fitter.fit(main, aux, start, alternative=self.init),
                                  "the free fit")
        self.bkg = self._checked(self.fitter.fit(main, aux, self.free.pars, poi_value=0.0,
                                                 alternative=self.init),
                                 "the background-only fit")
        self._below(self.bkg)
        self.amain, self.aaux = model.asimov(self.bkg.pars)
        self.asimov_min = model.twice_nll(self.bkg.pars, self.amain, self.aaux)
        self.obs_fits = {0.0: self.bkg}
        self.asimov_fits = {0.0: Fit(self.bkg.pars, self.asimov_min, True)}

    @property
    def fit_count(self) -> int:
        return len(self.obs_fits) + len(self.asimov_fits)

    @property
    def mu_hat(self) -> float:
        return float(self.free.pars[self.poi])

    @staticmethod
    def _checked(fit, what):
        if not fit.ok:
            raise FitFailed(f"{what} failed: {fit.reason}")
        return fit

    def _fit(self, cache, mu, main, aux, what):
        if mu not in cache:
            near = min(cache, key=lambda m: abs(m - mu)) if cache else None
            start = cache[near].pars if near is not None else self.bkg.pars
            fit = self.fitter.fit(main, aux, start, poi_value=mu, alternative=self.init)
            cache[mu] = self._checked(fit, f"{what} at {self.model.names[self.poi]} = {mu:.6g}")
            if main is self.main:
                self._below(fit)
        return cache[mu]

    def _below(self, fit) -> None:
        if fit.twice_nll < self.free.twice_nll - FREE_SLACK:
            raise BelowFreeFit(fit.pars)

    def asimov_side(self, mu: float) -> tuple[float, float]:
        """(sqrt q_mu,A, its derivative in mu)."""
        fit = self._fit(self.asimov_fits, mu, self.amain, self.aaux, "the Asimov fit")
        return _root_and_slope(fit.twice_nll - self.asimov_min, fit.grad_poi)

    def data_side(self, mu: float) -> tuple[float, float]:
        """(sqrt q_mu~ of the data, its derivative in mu); 0 where mu^ > mu."""
        if self.mu_hat > mu:
            return 0.0, 0.0
        fit = self._fit(self.obs_fits, mu, self.main, self.aux, "the POI-fixed fit")
        return _root_and_slope(fit.twice_nll - self.free.twice_nll, fit.grad_poi)

    def cls(self, mu: float) -> tuple[float, list[float]]:
        """(observed CLs, expected CLs for -2 ... +2 sigma) at mu, as pyhf's hypotest."""
        sa = self.asimov_side(mu)[0]
        s = self.data_side(mu)[0]
        return cls_observed(s, sa), [_ratio(n, sa) for n in BANDS]

    def expected_limits(self, alpha: float) -> list[float]:
        """The expected upper limits, -2 ... +2 sigma: sqrt q_mu,A(mu) = K_n, by Newton."""
        mu0 = _sensitive_mu(self, max(self.mu_hat, 0.0) + 1.0)
        sigma = mu0 / self.asimov_side(mu0)[0]
        limits = []
        for n in BANDS:
            target = -norm.ppf(alpha * norm.cdf(-n)) - n

            def f(mu, target=target):
                sa, slope = self.asimov_side(mu)
                return sa - target, slope

            mu = _newton(f, target * sigma)
            sigma = mu / target
            limits.append(mu)
        return limits

    def observed_limit(self, alpha: float, sigma: float) -> float:
        """CLs_obs(mu) = alpha by a safeguarded Newton iteration on log CLs."""
        goal = math.log(alpha)

        def h(mu):
            sa, dsa = self.asimov_side(mu)
            s, ds = self.data_side(mu)
            value = cls_observed(s, sa)
            eps = 1e-6
            d_s = (math.log(cls_observed(s + eps, sa)) - math.log(cls_observed(
                max(s - eps, 0.0), sa))) / (s + eps - max(s - eps, 0.0))
            d_sa = (math.log(cls_observed(s, sa + eps)) - math.log(cls_observed(
                s, sa - eps))) / (2 * eps)
            return math.log(max(value, 1e-300)) - goal, d_s * ds + d_sa * dsa

        mu_hat = max(self.mu_hat, 0.0)
        start = mu_hat + sigma * norm.ppf(1 - alpha * norm.cdf(mu_hat / sigma))
        return _newton(h, start)


def cls_observed(s: float, sa: float) -> float:
    """pyhf's observed CLs from sqrt q_mu~ (s) and sqrt q_mu,A (sa)."""
    t = s - sa if s <= sa else (s * s - sa * sa) / (2 * sa)
    return _ratio(t, sa)


def _root_and_slope(q: float, dq: float) -> tuple[float, float]:
    root = math.sqrt(max(q, 0.0))
    return root, (dq / (2 * root) if root > 0 else 0.0)


def _sensitive_mu(tests: Hypotests, mu0: float) -> float:
    """A mu where sqrt q_mu,A is neither negligible nor huge (to estimate sigma)."""
    for _ in range(60):
        sa = tests.asimov_side(mu0)[0]
        if sa < 0.5:
            mu0 *= 4.0
        elif sa > 20:
            mu0 /= 4.0
        else:
            return mu0
    raise FitFailed(f"no signal sensitivity: sqrt(q_mu,A) = {sa:.3g} at mu = {mu0:.3g}")


def _newton(fd, x: float) -> float:
    """A root of f (fd returns f and f') from x: Newton steps kept inside the bracket found so
    far (bisection when a step leaves it), to RTOL."""
    pos = neg = None  # points where f > 0 and f < 0
    for _ in range(MAX_STEPS):
        f, d = fd(x)
        if f == 0:
            return x
        if f > 0:
            pos = x
        else:
            neg = x
        step = -f / d if d != 0 and math.isfinite(d) else None
        nxt = x + step if step is not None else None
        if pos is not None and neg is not None:
            lo, hi = min(pos, neg), max(pos, neg)
            if nxt is None or not lo < nxt < hi:
                nxt = 0.5 * (lo + hi)
        elif nxt is None or nxt <= 0 or nxt > 10 * x:
            nxt = x * (4.0 if (f < 0) == (d > 0) else 0.25) if d else x * 2
        # quadratic convergence: after a Newton step of relative size r the error is ~ r^2
        if abs(nxt - x) <= (ACCEPT if step is not None and nxt == x + step else RTOL) * abs(x):
            return nxt
        x = nxt
    raise FitFailed("a limit's root find did not converge")


def _ratio(t: float, sqrt_qa: float) -> float:
    """CLs = CLsb / CLb for test statistic t (pyhf's -mu^/sigma space)."""
    return float(norm.cdf(-(t + sqrt_qa)) / norm.cdf(-t))


def check_alpha(cl: float) -> float:
    if not 0.0 < cl < 1.0:
        raise ReanimateError(f"--cl must be between 0 and 1, got {cl}")
    return 1.0 - cl
