"""CLs and limits from pseudo-experiments (pyhf's ToyCalculator recipe, seeded).

At each mu: toys of the signal+background hypothesis are drawn at the POI-fixed fit to the data
at mu, toys of the background-only hypothesis at the fit at mu = 0 (main counts Poisson, the
auxiliary data from their constraints); the test statistic is qmu~ itself. CLs+b and CLb are
the fractions of toys with qmu~ at least the observed one; the expected CLs are the 2.3, 15.9,
50, 84.1 and 97.7 percentiles of the CLs of the background-only toys (pyhf's
`expected_pvalues`). Limits: CLs on a grid of mu around the asymptotic limits, interpolated
linearly where it crosses 1 - CL (pyhf's `linear_grid_scan`). Random numbers come from
`numpy.random.default_rng([seed, k])` per mu (k: its grid index), so a seed reproduces every
number and no global state is touched.
"""

from __future__ import annotations

import numpy as np

from reanimate.statistics.limits_core import FitFailed, Hypotests

PERCENTILES = (2.27501319, 15.86552539, 50.0, 84.13447461, 97.72498681)
GRID = 12


def _sample(model, pars, n, rng):
    lam, aux = model.asimov(pars)
    main = rng.poisson(np.maximum(lam, 0.0), size=(n, len(lam))).astype(float)
    auxs = np.repeat(aux[None, :], n, axis=0)
    nrm, poi = model.normal, model.poisson
    auxs[:, nrm] = rng.normal(pars[nrm], model.sigma[nrm], size=(n, int(nrm.sum())))
    auxs[:, poi] = rng.poisson(pars[poi] * model.tau[poi], size=(n, int(poi.sum())))
    return main, auxs


def _qmu(model, fitter, main, aux, mu, init):
    free = fitter.fit(main, aux, init)
    if free.pars[model.poi] > mu:
        return 0.0
    fixed = fitter.fit(main, aux, free.pars, poi_value=mu, alternative=init)
    if not (free.ok and fixed.ok):
        raise FitFailed(f"a toy fit failed: {free.reason or fixed.reason}")
    return max(fixed.twice_nll - free.twice_nll, 0.0)


def _cls_at(tests: Hypotests, mu: float, ntoys: int, rng) -> tuple[float, list[float]]:
    model, fitter, init = tests.model, tests.fitter, tests.init
    q_obs = tests.data_side(mu)[0] ** 2
    sb_pars = tests._fit(tests.obs_fits, mu, tests.main, tests.aux, "the POI-fixed fit").pars
    sb = _sample(model, sb_pars, ntoys, rng)
    b = _sample(model, tests.bkg.pars, ntoys, rng)
    q_sb = np.array([_qmu(model, fitter, sb[0][i], sb[1][i], mu, init) for i in range(ntoys)])
    q_b = np.array([_qmu(model, fitter, b[0][i], b[1][i], mu, init) for i in range(ntoys)])

    def cls(q):
        clb = np.mean(q_b >= q)
        return float(np.mean(q_sb >= q) / clb) if clb > 0 else 1.0

    expected = np.percentile([cls(q) for q in q_b], PERCENTILES)
    return cls(q_obs), [float(v) for v in expected]


def toy_values(fast, main, aux, bounds, fixed, init, settings, alpha) -> dict:
    tests = Hypotests(fast, main, aux, bounds, fixed, init)
    asym = tests.expected_limits(alpha)
    start = tests.observed_limit(alpha, sigma=asym[2] / 1.96)
    lo, hi = 0.1 * min(start, asym[0]), 2.0 * max(start, asym[-1])
    grid = np.linspace(lo, hi, GRID)
    observed, expected = _cls_at(tests, settings.mu, settings.toys,
                                 np.random.default_rng([settings.seed, GRID]))
    scan = [_cls_at(tests, float(mu), settings.toys, np.random.default_rng([settings.seed, k]))
            for k, mu in enumerate(grid)]
    curves = np.array([[o, *e] for o, e in scan])  # (grid, 6)
    limits = [_crossing(grid, curves[:, j], alpha) for j in range(6)]
    return {"cls_observed": observed, "cls_expected": expected,
            "limit_observed": limits[0], "limit_expected": limits[1:],
            "mu_hat": tests.mu_hat, "fits": tests.fit_count}


def _crossing(grid, values, alpha) -> float:
    below = np.nonzero(values < alpha)[0]
    if not len(below):
        raise FitFailed("the toys' CLs stays above 1 - CL on the scanned range")
    j = int(below[0])
    if j == 0:
        raise FitFailed("the toys' CLs is below 1 - CL at the start of the scanned range")
    x0, x1, y0, y1 = grid[j - 1], grid[j], values[j - 1], values[j]
    return float(x0 + (alpha - y0) * (x1 - x0) / (y1 - y0))
