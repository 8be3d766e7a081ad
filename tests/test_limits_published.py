"""`limit_record` on the published ATLAS SUSY-2019-08 (1Lbb) likelihood equals pyhf's hypotest.

pyhf's values (hypotest at mu = 1, qmu~, observed and expected) were computed once by
benchmarks/limits_reference.py (about 20 s a point) and stored in
tests/data/limits/pyhf_reference.json. Skipped when ../shared is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from reanimate.statistics.limits import limit_record, load_patchset

PUBLISHED = Path(__file__).resolve().parents[2] / "shared" / "data" / "published" / \
    "atlas-susy-2019-08"
REFERENCE = json.loads((Path(__file__).parent / "data" / "limits" /
                        "pyhf_reference.json").read_text())["atlas-susy-2019-08"]
CLS_RTOL, CLS_ATOL = 2e-4, 1e-6
Z_TOL = 5e-3  # or |Phi^-1(CLs) - Phi^-1(CLs_pyhf)|: pyhf's own fit noise at large q (docs)

pytestmark = pytest.mark.skipif(not PUBLISHED.is_dir(), reason=f"{PUBLISHED} not found")


@pytest.fixture(scope="module")
def points():
    bkg = json.loads((PUBLISHED / "BkgOnly.json").read_text())
    patchset = json.loads((PUBLISHED / "patchset.json").read_text())
    return load_patchset(bkg, patchset, sorted(REFERENCE))


def test_1lbb_cls_equal_pyhf(points):
    assert len(points) == 3
    for name, labels, ws in points:
        record = limit_record(ws, name=name, labels=labels, validate=False)
        ref = REFERENCE[name]
        assert record["status"] == "ok", record["reason"]
        # no stiff or idle parameter in 1Lbb; a weak point's +2 sigma limit passes mu_SIG's
        # upper bound 5, which is said
        assert all(t.startswith("POI mu_SIG: limits beyond") for t in record.get("treated", []))
        assert record["poi"] == "mu_SIG" and set(labels) == {"m_C1N2", "m_N1"}
        ours = [record["cls_observed"], *record["cls_expected"]]
        theirs = [ref["cls_observed"], *ref["cls_expected"]]
        for a, b in zip(ours, theirs, strict=True):
            assert a == pytest.approx(b, rel=CLS_RTOL, abs=CLS_ATOL) or abs(
                norm.ppf(a) - norm.ppf(b)) < Z_TOL, (name, ours, theirs)
        exp = record["limit_expected"]
        assert exp == sorted(exp) and record["limit_observed"] > 0
        assert record["seconds"] < 30


def test_1lbb_likelihood_equals_pyhf(points):
    import pyhf

    from reanimate.statistics.limits_model import FastModel

    ws = pyhf.Workspace(points[0][2], validate=False)
    model = ws.model(validate=False)
    data = np.asarray(ws.data(model))
    fast = FastModel(model)
    main, aux = fast.split(data)
    rng = np.random.default_rng(1)
    for scale in (0.0, 0.3, 1.0):
        pars = np.clip(fast.init + scale * rng.normal(size=fast.npars), fast.bounds[:, 0] + 1e-3,
                       fast.bounds[:, 1])
        assert fast.twice_nll(pars, main, aux) == pytest.approx(
            -2 * float(model.logpdf(pars, data)[0]), rel=1e-12)
