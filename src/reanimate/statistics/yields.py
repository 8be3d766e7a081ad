"""Expected yields of a pyhf model per channel and sample, with a linearised uncertainty band.

The band follows cabinetry: each parameter is moved by +-1 sigma, the change of the total
yield per bin is symmetrised, and the variance is J^T C J with the correlation matrix of the
fit (post-fit) or the identity (pre-fit, prior widths; free parameters contribute nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reanimate.statistics import fitting


@dataclass
class ChannelYields:
    channel: str
    samples: list[str]
    by_sample: np.ndarray  # (samples, bins)
    total: np.ndarray  # (bins,)
    uncertainty: np.ndarray  # (bins,) on the total
    data: np.ndarray  # (bins,)


def prefit_widths(model) -> np.ndarray:
    """Prior width of every parameter (0 for free or fixed ones)."""
    fixed = model.config.suggested_fixed()
    widths = [0.0 if c is None or fx else c["width"]
              for c, fx in zip(fitting.constraints(model), fixed, strict=True)]
    return np.asarray(widths, dtype=float)


def _totals(model, pars: np.ndarray) -> np.ndarray:
    return np.asarray(model.main_model.expected_data(pars), dtype=float)


def channel_yields(model, data: np.ndarray, pars: np.ndarray, widths: np.ndarray,
                   correlation: np.ndarray | None = None) -> list[ChannelYields]:
    """Yields at `pars`; band from +-`widths` variations, correlated by `correlation`."""
    pars = np.asarray(pars, dtype=float)
    by_sample = np.asarray(model.main_model.expected_data(pars, return_by_sample=True), float)
    n = len(pars)
    jac = np.zeros((n, by_sample.shape[1]))
    for i in np.flatnonzero(widths > 0):
        up, down = pars.copy(), pars.copy()
        up[i] += widths[i]
        down[i] -= widths[i]
        jac[i] = (_totals(model, up) - _totals(model, down)) / 2
    corr = np.eye(n) if correlation is None else np.asarray(correlation, dtype=float)
    variance = np.einsum("ib,ij,jb->b", jac, corr, jac)
    unc = np.sqrt(np.clip(variance, 0.0, None))
    out = []
    for ch in model.config.channels:
        sl = model.config.channel_slices[ch]
        out.append(ChannelYields(
            channel=ch, samples=list(model.config.samples), by_sample=by_sample[:, sl],
            total=by_sample[:, sl].sum(axis=0), uncertainty=unc[sl],
            data=np.asarray(data[: model.config.nmaindata], dtype=float)[sl],
        ))
    return out


def prefit(model, data) -> list[ChannelYields]:
    return channel_yields(model, data, np.asarray(model.config.suggested_init(), float),
                          prefit_widths(model))


def postfit(model, data, fit: dict) -> list[ChannelYields]:
    pars = fitting.parameter_vector(model, fit)
    cov = fitting.covariance(model, fit)
    sig = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(np.outer(sig, sig) > 0, cov / np.outer(sig, sig), 0.0)
    return channel_yields(model, data, pars, sig, corr)
