"""The model screened before the limit fits: stiff and idle parameters fixed, the POI's range.

* **Stiff constraints.** A constraint far narrower than anything the data can resolve (the
  published trap: a shapesys of relative width ~1e-6, tau ~ 1e12) makes the likelihood so
  ill-conditioned that minimisers stop where they start (pyhf's default scipy fit reports
  success at its initial point and a limit off by a large factor). A constrained parameter is
  fixed at its constraint's centre when its constraint precision C (1/sigma^2, or tau for a
  Poisson constraint) is at least STIFF_PRECISION and the data's Fisher information I about it
  is at most STIFF_RATIO x C: fixing it then moves 2 NLL by ~ I/C x (its pull)^2, far below
  the fits' tolerance.
* **Idle parameters.** A free parameter that changes no expected count (a normfactor of an
  empty sample) makes the minimum a valley; it is fixed at its initial value.
* **POI range.** qmu~ needs the POI's lower bound at 0 (pyhf warns otherwise); a negative
  lower bound is raised to 0. The POI's upper bound is widened later when the limits or the
  best fit reach it (pyhf's upper_limit errors out there).

Every change is appended to `treated` as one sentence.
"""

from __future__ import annotations

import numpy as np

from reanimate.statistics.limits_core import FitFailed

STIFF_PRECISION = 1e8  # constraint width below 1e-4
STIFF_RATIO = 1e-6


def fisher_information(model, pars) -> np.ndarray:
    """The main measurement's Fisher information about each parameter at `pars` (diagonal)."""
    lam = model.expected(pars)
    info = np.zeros(model.npars)
    lo, hi = model.bounds.T
    for i in range(model.npars):
        h = 1e-5 * max(abs(pars[i]), 1.0)
        up, dn = pars.copy(), pars.copy()
        up[i] = min(pars[i] + h, hi[i])
        dn[i] = max(pars[i] - h, lo[i])
        if up[i] == dn[i]:
            continue
        d = (model.expected(up) - model.expected(dn)) / (up[i] - dn[i])
        with np.errstate(divide="ignore", invalid="ignore"):
            info[i] = np.sum(np.where(lam > 0, d * d / lam, 0.0))
    return info


def screen(model, main, aux, mu: float, treated: list[str]):
    """(bounds, fixed, init) for the fits, with the treatments above."""
    bounds = model.bounds.copy()
    fixed = model.fixed.copy()
    init = model.init.copy()
    poi = model.poi
    name = model.names
    if bounds[poi, 0] < 0:
        treated.append(f"POI {name[poi]}: lower bound {bounds[poi, 0]:g} raised to 0 (qmu~)")
        bounds[poi, 0] = 0.0
        init[poi] = max(init[poi], 0.0)
    if fixed[poi]:
        treated.append(f"POI {name[poi]}: fixed in the measurement, freed for the limits")
        fixed[poi] = False
    probe = init.copy()
    probe[poi] = max(mu, 1.0) if probe[poi] <= 0 else probe[poi]
    info = fisher_information(model, probe)
    if info[poi] <= 0:
        raise FitFailed(f"the POI {name[poi]} changes no expected count (no signal?)")
    precision = np.where(model.normal, model.sigma ** -2.0,
                         np.where(model.poisson, model.tau, 0.0))
    stiff = (~fixed & (precision >= STIFF_PRECISION) & (info <= STIFF_RATIO * precision))
    stiff[poi] = False
    for i in np.nonzero(stiff)[0]:
        centre = aux[i] / model.tau[i] if model.poisson[i] else aux[i]
        width = precision[i] ** -0.5
        fixed[i] = True
        init[i] = centre
        ratio = np.sqrt(info[i] / precision[i])
        treated.append(f"{name[i]}: constraint width {width:.2g}, {ratio:.1g} of the width the "
                       f"data alone give; fixed at its centre {centre:g} (stiff)")
    constrained = model.normal | model.poisson
    idle = ~fixed & ~constrained & (info == 0)
    idle[poi] = False
    for i in np.nonzero(idle)[0]:
        fixed[i] = True
        treated.append(f"{name[i]}: changes no expected count; fixed at {init[i]:g}")
    return bounds, fixed, init
