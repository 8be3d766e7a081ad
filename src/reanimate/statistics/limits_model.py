"""A pyhf model's -2 log L and its exact gradient, vectorised in numpy (for the limits).

pyhf's numpy backend has no automatic differentiation, so its fits take numerical gradients:
two likelihood evaluations per parameter and step (the 1Lbb likelihood has 126). `FastModel`
evaluates the same likelihood as pyhf (pyhf's parameter layout, bounds, inits, fixed flags and
auxiliary data, taken from the pyhf model; normsys interpolation code 4 and histosys code 4p,
pyhf's defaults, the only ones a workspace can ask for) with the gradient in closed form, so one
evaluation gives both. tests/test_limits.py checks it against ``model.logpdf`` at random points.

Layout: every (channel, sample) pair owns its channel's bins; those "rows" are concatenated
(`row_bin` maps a row to its bin of the main data). A row's rate is
``(nominal + histosys deltas) x scalar factors (normfactor, lumi, normsys) x per-bin factors
(shapesys, staterror, shapefactor)``, then summed into the bins.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, xlogy

from reanimate.errors import ReanimateError

SCALAR = ("normfactor", "lumi")
PER_BIN = ("shapesys", "staterror", "shapefactor")
KNOWN = (*SCALAR, *PER_BIN, "normsys", "histosys")


class FastModel:
    """-2 log L of a pyhf model (main Poisson terms + constraints) and its gradient."""

    def __init__(self, model):
        config = model.config
        self.npars = config.npars
        self.names = list(config.par_names)
        self.poi = config.poi_index
        self.init = np.asarray(config.suggested_init(), dtype=float)
        self.bounds = np.asarray(config.suggested_bounds(), dtype=float)
        self.fixed = np.asarray(config.suggested_fixed(), dtype=bool)
        self.nbins = int(sum(config.channel_nbins.values()))
        self._constraints(config)
        self._rates(model)

    # -- constraints ------------------------------------------------------------------
    def _constraints(self, config) -> None:
        n = self.npars
        self.normal = np.zeros(n, dtype=bool)
        self.poisson = np.zeros(n, dtype=bool)
        self.sigma = np.ones(n)
        self.tau = np.ones(n)
        self.aux_index = []  # pyhf's auxdata order -> parameter index
        for name in config.auxdata_order:
            pset = config.param_set(name)
            idx = np.arange(self.npars)[config.par_slice(name)]
            if pset.pdf_type == "normal":
                self.normal[idx] = True
                self.sigma[idx] = np.asarray(pset.width(), dtype=float)
            elif pset.pdf_type == "poisson":
                self.poisson[idx] = True
                self.tau[idx] = np.asarray(pset.factors, dtype=float)
            else:  # pragma: no cover - pyhf has only these two
                raise ReanimateError(f"unsupported constraint {pset.pdf_type} of {name}")
            self.aux_index.extend(int(i) for i in idx)
        self.aux_index = np.asarray(self.aux_index, dtype=int)

    def split(self, data) -> tuple[np.ndarray, np.ndarray]:
        """pyhf's data vector -> (main counts, aux value per parameter; unconstrained: 0)."""
        data = np.asarray(data, dtype=float)
        main = data[: self.nbins]
        aux = np.zeros(self.npars)
        aux[self.aux_index] = data[self.nbins:]
        return main, aux

    def join(self, main, aux) -> np.ndarray:
        return np.concatenate([main, aux[self.aux_index]])

    def asimov(self, pars) -> tuple[np.ndarray, np.ndarray]:
        """Expected main counts and auxiliary data at `pars` (pyhf's expected_data)."""
        aux = np.where(self.poisson, pars * self.tau, pars)
        aux = np.where(self.normal | self.poisson, aux, 0.0)
        return self.expected(pars), aux

    # -- rates --------------------------------------------------------------------------
    def _rates(self, model) -> None:
        config = model.config
        channels = {c["name"]: c for c in model.spec["channels"]}
        nominal, row_bin, row_sample = [], [], []
        scalar, normsys, histo, perbin = [], [], [], []  # (row slice / sample, data)
        offsets = {}
        nrows = 0
        for channel in config.channels:
            bins = np.arange(self.nbins)[config.channel_slices[channel]]
            for sample in sorted(channels[channel]["samples"], key=lambda x: x["name"]):
                k = len(offsets)
                offsets[(channel, sample["name"])] = k
                rows = np.arange(nrows, nrows + len(bins))
                nominal.extend(float(v) for v in sample["data"])
                row_bin.extend(bins)
                row_sample.extend([k] * len(bins))
                nrows += len(bins)
                for mod in sample["modifiers"]:
                    kind, name = mod["type"], mod["name"]
                    if kind not in KNOWN:
                        raise ReanimateError(f"unsupported modifier type {kind} ({name})")
                    idx = np.arange(self.npars)[config.par_slice(name)]
                    if kind in SCALAR:
                        scalar.append((k, int(idx[0])))
                    elif kind == "normsys":
                        normsys.append((k, int(idx[0]), float(mod["data"]["hi"]),
                                        float(mod["data"]["lo"])))
                    elif kind == "histosys":
                        histo.append((rows, int(idx[0]), mod["data"]["hi_data"],
                                      mod["data"]["lo_data"]))
                    else:
                        perbin.append((rows, idx))
        self.nrows = nrows
        self.nominal = np.asarray(nominal)
        self.row_bin = np.asarray(row_bin, dtype=int)
        self.row_sample = np.asarray(row_sample, dtype=int)
        self.nsamples = len(offsets)
        # scalar factors of a sample (normfactor, lumi: the parameter; normsys: code 4)
        entries = [(k, i, 1.0, 1.0) for k, i in scalar] + normsys
        self.sc_sample = np.asarray([e[0] for e in entries], dtype=int)
        self.sc_par = np.asarray([e[1] for e in entries], dtype=int)
        self.sc_is_norm = np.asarray([kind == 1 for kind in
                                      [0] * len(scalar) + [1] * len(normsys)], dtype=bool)
        hi = np.asarray([e[2] for e in entries], dtype=float)
        lo = np.asarray([e[3] for e in entries], dtype=float)
        self.ns_hi, self.ns_lo = hi, lo
        with np.errstate(divide="ignore", invalid="ignore"):
            self.ns_coef = _code4_coefficients(hi, lo)  # (6, entries)
            self.ns_loghi, self.ns_loglo = np.log(hi), np.log(lo)
        # histosys (code 4p): up = hi - nom, dn = nom - lo
        h_rows, h_par, h_up, h_dn = [], [], [], []
        for rows, i, hi_data, lo_data in histo:
            nom = self.nominal[rows]
            h_rows.append(rows)
            h_par.append(np.full(len(rows), i))
            h_up.append(np.asarray(hi_data, dtype=float) - nom)
            h_dn.append(nom - np.asarray(lo_data, dtype=float))
        self.hs_row, self.hs_par = _cat(h_rows, int), _cat(h_par, int)
        self.hs_up, self.hs_dn = _cat(h_up), _cat(h_dn)
        self.hs_S = 0.5 * (self.hs_up + self.hs_dn)
        self.hs_A = 0.0625 * (self.hs_up - self.hs_dn)
        # per-bin factors: (row, parameter) pairs
        self.pb_row = _cat([rows for rows, _ in perbin], int)
        self.pb_par = _cat([idx for _, idx in perbin], int)
        self.sc_table, self.sc_others = _tables(self.sc_sample, self.nsamples)
        first = np.full(self.nsamples, 0, dtype=int)  # a row of each sample (its factor)
        first[self.row_sample[::-1]] = np.arange(self.nrows)[::-1]
        self._first_row = first
        self.pb_table, self.pb_others = _tables(self.pb_row, self.nrows)

    def _scalar(self, pars):
        """Values and derivatives of the scalar factors (normsys: pyhf's code 4, alpha0 = 1)."""
        x = pars[self.sc_par]
        norm = self.sc_is_norm
        if not norm.any():
            return x, np.ones_like(x)
        v, d = x.copy(), np.ones_like(x)
        a = x[norm]
        c = self.ns_coef[:, norm]
        poly = 1.0 + a * (c[0] + a * (c[1] + a * (c[2] + a * (c[3] + a * (c[4] + a * c[5])))))
        dpoly = c[0] + a * (2 * c[1] + a * (3 * c[2] + a * (4 * c[3] + a * (
            5 * c[4] + a * 6 * c[5]))))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            lh, ll = self.ns_loghi[norm], self.ns_loglo[norm]
            up, dn = np.exp(a * lh), np.exp(-a * ll)
            v[norm] = np.where(a >= 1, up, np.where(a <= -1, dn, poly))
            d[norm] = np.where(a >= 1, up * lh, np.where(a <= -1, -dn * ll, dpoly))
        return v, d

    def _parts(self, pars):
        pars = np.asarray(pars, dtype=float)
        a = pars[self.hs_par]
        a2 = a * a
        poly = a * self.hs_S + a2 * (15.0 + a2 * (-10.0 + a2 * 3.0)) * self.hs_A
        delta = np.where(a > 1, a * self.hs_up, np.where(a < -1, a * self.hs_dn, poly))
        base = self.nominal + np.bincount(self.hs_row, delta, minlength=self.nrows)
        sv, sd = self._scalar(pars)
        scv = np.append(sv, 1.0)  # the last entry pads the "others" tables
        sfac = np.prod(scv[self.sc_table], axis=1)
        pbv = np.append(pars[self.pb_par], 1.0)
        bfac = np.prod(pbv[self.pb_table], axis=1)
        return pars, a, sd, base, sfac, bfac, scv, pbv

    def expected(self, pars) -> np.ndarray:
        _, _, _, base, sfac, bfac, _, _ = self._parts(pars)
        rate = base * sfac[self.row_sample] * bfac
        return np.bincount(self.row_bin, rate, minlength=self.nbins)

    def twice_nll(self, pars, main, aux) -> float:
        return self.value_and_grad(pars, main, aux, grad=False)[0]

    def value_and_grad(self, pars, main, aux, grad: bool = True):
        """(-2 log L, its gradient) at `pars` for counts `main` and auxiliary data `aux`."""
        out = self.evaluate(pars, main, aux, order=1 if grad else 0)
        return out[0], (out[1] if grad else None)

    def evaluate(self, pars, main, aux, order: int = 2):
        """-2 log L, then (order >= 1) its gradient, then (order 2) its Gauss-Newton Hessian
        (2 J diag(n / lambda^2) J^T + the constraints' exact curvature)."""
        pars, a, sd, base, sfac, bfac, scv, pbv = self._parts(pars)
        srow = sfac[self.row_sample]
        rate = base * srow * bfac
        lam = np.bincount(self.row_bin, rate, minlength=self.nbins)
        nrm, poi = self.normal, self.poisson
        with np.errstate(divide="ignore", invalid="ignore"):
            logl = np.sum(xlogy(main, lam) - lam - gammaln(main + 1.0))
            z = (aux[nrm] - pars[nrm]) / self.sigma[nrm]
            logl += np.sum(-0.5 * z * z - np.log(self.sigma[nrm] * np.sqrt(2 * np.pi)))
            rt = pars[poi] * self.tau[poi]
            logl += np.sum(xlogy(aux[poi], rt) - rt - gammaln(aux[poi] + 1.0))
        value = -2.0 * float(logl)
        if order == 0:
            return (value,)
        jac = self.jacobian(pars, a, sd, base, srow, bfac, scv, pbv)
        with np.errstate(divide="ignore", invalid="ignore"):
            dl = np.where(lam > 0, main / lam - 1.0, np.where(main == 0, -1.0, np.inf))
            g = jac @ dl
        g[nrm] += (aux[nrm] - pars[nrm]) / self.sigma[nrm] ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            g[poi] += aux[poi] / pars[poi] - self.tau[poi]
        if order == 1:
            return value, -2.0 * g
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(lam > 0, main / lam ** 2, 0.0)
        hess = (jac * w) @ jac.T
        diag = np.zeros(self.npars)
        diag[nrm] = self.sigma[nrm] ** -2.0
        with np.errstate(divide="ignore", invalid="ignore"):
            diag[poi] = aux[poi] / pars[poi] ** 2
        hess[np.diag_indices(self.npars)] += diag
        return value, -2.0 * g, 2.0 * hess

    def jacobian(self, pars, a, sd, base, srow, bfac, scv, pbv) -> np.ndarray:
        """d lambda_b / d theta_p, shape (parameters, bins)."""
        nb, npar = self.nbins, self.npars
        size = npar * nb
        jac = np.zeros(size)
        if len(self.hs_row):  # histosys: d rate / d alpha = d delta / d alpha x factors
            a2 = a * a
            dpoly = self.hs_S + a * (30.0 + a2 * (-40.0 + a2 * 18.0)) * self.hs_A
            dd = np.where(a > 1, self.hs_up, np.where(a < -1, self.hs_dn, dpoly))
            r = self.hs_row
            jac += np.bincount(self.hs_par * nb + self.row_bin[r], (srow * bfac)[r] * dd, size)
        if len(self.sc_par):  # scalar factors: the product of the others x the derivative
            without = np.bincount(self.row_sample * nb + self.row_bin, base * bfac,
                                  self.nsamples * nb).reshape(self.nsamples, nb)
            v = scv[:-1]
            safe = v != 0
            sfac = srow[self._first_row]
            with np.errstate(divide="ignore", invalid="ignore"):
                others = np.where(safe, sfac[self.sc_sample] / np.where(safe, v, 1.0), 0.0)
            if not safe.all():
                bad = ~safe
                others[bad] = np.prod(scv[self.sc_others[bad]], axis=1)
            w = without[self.sc_sample] * (others * sd)[:, None]
            idx = self.sc_par[:, None] * nb + np.arange(nb)[None, :]
            jac += np.bincount(idx.ravel(), w.ravel(), size)
        if len(self.pb_par):
            others = np.prod(pbv[self.pb_others], axis=1)
            r = self.pb_row
            jac += np.bincount(self.pb_par * nb + self.row_bin[r],
                               base[r] * srow[r] * others, size)
        return jac.reshape(npar, nb)


def _cat(parts, dtype=float) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def _code4_coefficients(hi, lo) -> np.ndarray:
    """pyhf's code-4 polynomial coefficients a_1..a_6 (alpha0 = 1) for factors hi, lo."""
    a_inv = np.array([
        [15 / 16, -15 / 16, -7 / 16, -7 / 16, 1 / 16, -1 / 16],
        [3 / 2, 3 / 2, -9 / 16, 9 / 16, 1 / 16, 1 / 16],
        [-5 / 8, 5 / 8, 5 / 8, 5 / 8, -1 / 8, 1 / 8],
        [3 / -2, 3 / -2, -7 / -8, 7 / -8, -1 / 8, -1 / 8],
        [3 / 16, -3 / 16, -3 / 16, -3 / 16, 1 / 16, -1 / 16],
        [1 / 2, 1 / 2, -5 / 16, 5 / 16, 1 / 16, 1 / 16]])
    lh, ll = np.log(hi), np.log(lo)
    b = np.stack([hi - 1, lo - 1, lh * hi, -ll * lo, lh ** 2 * hi, ll ** 2 * lo])
    return a_inv @ b


def _tables(groups: np.ndarray, ngroups: int) -> tuple[np.ndarray, np.ndarray]:
    """For entries belonging to `groups`: (group -> its entries, entry -> the other entries of
    its group), padded with the index len(groups) (a constant 1)."""
    n = len(groups)
    members = [[] for _ in range(ngroups)]
    for j, k in enumerate(groups):
        members[k].append(j)
    width = max([len(m) for m in members] + [1])
    table = np.full((ngroups, width), n, dtype=int)
    for k, m in enumerate(members):
        table[k, : len(m)] = m
    others = np.full((n, max(width - 1, 1)), n, dtype=int)
    for j, k in enumerate(groups):
        rest = [m for m in members[k] if m != j]
        others[j, : len(rest)] = rest
    return table, others
