"""Limits (reanimate.statistics.limits, `reanimate limits`) against pyhf, on small models.

pyhf's `upper_limit` takes from a second (counting) to minutes (the AGC-like model), so its
values come from tests/data/limits/pyhf_reference.json (benchmarks/limits_reference.py);
`hypotest`, fast, is also run live on the small models. Tolerances: docs/limits.md.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from reanimate.errors import ReanimateError
from reanimate.statistics.limits import RECORD_FIELDS, LimitSettings, limit_record, load_patchset

DATA = Path(__file__).parent / "data" / "limits"
REFERENCE = json.loads((DATA / "pyhf_reference.json").read_text())
CLS_RTOL, CLS_ATOL = 2e-4, 1e-6  # CLs: relative, absolute (docs/limits.md)
LIMIT_RTOL = 2e-4  # limits: relative


def workspace(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def pyhf_hypotest(ws_dict: dict, mu: float = 1.0):
    import pyhf

    pyhf.set_backend("numpy")
    ws = pyhf.Workspace(ws_dict)
    model = ws.model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obs, exp = pyhf.infer.hypotest(mu, ws.data(model), model, test_stat="qtilde",
                                       return_expected_set=True)
    return float(obs), [float(x) for x in exp]


@pytest.fixture(scope="session")
def records():
    names = ("counting", "multi", "agc_like", "stiff")
    return {name: limit_record(workspace(name), name=name) for name in names}


def assert_cls(record, observed, expected):
    assert record["cls_observed"] == pytest.approx(observed, rel=CLS_RTOL, abs=CLS_ATOL)
    assert record["cls_expected"] == pytest.approx(expected, rel=CLS_RTOL, abs=CLS_ATOL)


def assert_limits(record, reference):
    assert record["limit_observed"] == pytest.approx(reference["limit_observed"],
                                                     rel=LIMIT_RTOL)
    assert record["limit_expected"] == pytest.approx(reference["limit_expected"],
                                                     rel=LIMIT_RTOL)


@pytest.mark.parametrize("name", ["counting", "multi", "agc_like"])
def test_equal_to_pyhf(records, name):
    record, reference = records[name], REFERENCE["models"][name]
    assert list(record)[: len(RECORD_FIELDS)] == list(RECORD_FIELDS)
    assert record["status"] == "ok" and "treated" not in record
    assert_cls(record, reference["cls_observed"], reference["cls_expected"])
    assert_limits(record, reference)
    assert record["cls_expected"] == sorted(record["cls_expected"])
    assert record["limit_expected"] == sorted(record["limit_expected"])
    assert set(record["software"]) == {"reanimate", "pyhf", "numpy", "scipy", "iminuit"}


@pytest.mark.parametrize("name", ["counting", "multi"])
def test_equal_to_live_hypotest(records, name):
    assert_cls(records[name], *pyhf_hypotest(workspace(name)))


def test_cls_at_another_mu():
    ws = workspace("multi")
    record = limit_record(ws, settings=LimitSettings(mu=2.5, cl=0.9))
    assert_cls(record, *pyhf_hypotest(ws, 2.5))
    assert record["mu"] == 2.5 and record["cl"] == 0.9


def test_likelihood_equals_pyhf():
    """FastModel's -2 log L, expected data and gradient against pyhf at random points."""
    import pyhf

    from reanimate.statistics.limits_model import FastModel

    rng = np.random.default_rng(3)
    for name in ("counting", "multi", "agc_like", "stiff"):
        ws = pyhf.Workspace(workspace(name))
        model = ws.model()
        data = np.asarray(ws.data(model))
        fast = FastModel(model)
        main, aux = fast.split(data)
        lo, hi = fast.bounds.T
        for k in range(4):
            pars = np.clip(fast.init + rng.normal(0, 0.4, fast.npars) * (1.5 if k else 0),
                           lo + 1e-3, hi)
            value, grad = fast.value_and_grad(pars, main, aux)
            assert value == pytest.approx(-2 * float(model.logpdf(pars, data)[0]), rel=1e-12)
            assert fast.join(*fast.asimov(pars)) == pytest.approx(
                np.asarray(model.expected_data(pars)), rel=1e-12)
            if name != "stiff":  # finite differences cannot resolve tau = 1e12
                eps = 1e-6
                numeric = [(fast.twice_nll(pars + eps * e, main, aux)
                            - fast.twice_nll(pars - eps * e, main, aux)) / (2 * eps)
                           for e in np.eye(fast.npars)]
                assert grad == pytest.approx(numeric, rel=1e-5, abs=1e-5)


def test_stiff_shapesys_is_treated(records):
    """A shapesys of relative width 1e-6: fixed, and the limits are those of the model without
    it; pyhf's default fit stops at its start there and is far off."""
    record = records["stiff"]
    right, naive = REFERENCE["models"]["stiff_removed"], REFERENCE["models"]["stiff"]
    assert record["status"] == "ok"
    assert len(record["treated"]) == 2 and all("tiny[" in t and "stiff" in t
                                               for t in record["treated"])
    assert "tiny[0]" in record["reason"]
    assert_cls(record, right["cls_observed"], right["cls_expected"])
    assert_limits(record, right)
    assert naive["limit_observed"] > 1.4 * right["limit_observed"]  # the trap is real


def test_weak_signal_widens_the_poi_range():
    ws = workspace("counting")
    ws["channels"][0]["samples"][0]["data"] = [0.2]  # limit ~ 40, the POI's bound is 10
    record = limit_record(ws)
    assert record["status"] == "ok" and record["limit_observed"] > 10
    assert "widened" in record["reason"]
    import pyhf

    model = pyhf.Workspace(ws).model()
    bounds = model.config.suggested_bounds()
    bounds[model.config.poi_index] = (0.0, 200.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls = pyhf.infer.hypotest(record["limit_observed"], pyhf.Workspace(ws).data(model),
                                  model, par_bounds=bounds, test_stat="qtilde")
    assert float(cls) == pytest.approx(0.05, rel=1e-3)


def test_no_signal_fails_with_a_reason():
    ws = workspace("counting")
    ws["channels"][0]["samples"][0]["data"] = [0.0]
    record = limit_record(ws)
    assert record["status"] == "failed" and "changes no expected count" in record["reason"]
    assert record["limit_observed"] is None and record["cls_expected"] is None


def test_bad_input_raises():
    with pytest.raises(ReanimateError, match="not a pyhf workspace"):
        limit_record({"foo": 1})
    with pytest.raises(ReanimateError, match="POI nope"):
        limit_record(workspace("counting"), settings=LimitSettings(poi="nope"))
    with pytest.raises(ReanimateError, match="--cl"):
        limit_record(workspace("counting"), settings=LimitSettings(cl=1.5))


def test_toys_are_seeded():
    ws = workspace("counting")
    one = limit_record(ws, settings=LimitSettings(toys=8, seed=5))
    two = limit_record(ws, settings=LimitSettings(toys=8, seed=5))
    other = limit_record(ws, settings=LimitSettings(toys=8, seed=6))
    keys = ("cls_observed", "cls_expected", "limit_observed", "limit_expected", "status")
    assert "toys" in one["method"] and "seed 5" in one["method"]
    assert [one[k] for k in keys] == [two[k] for k in keys]
    assert [one[k] for k in keys] != [other[k] for k in keys]
    if one["status"] == "ok":  # 8 toys: a rough limit
        assert one["limit_observed"] == pytest.approx(REFERENCE["models"]["counting"][
            "limit_observed"], rel=0.5)


def reanimate(capsys, monkeypatch, *args):
    """`reanimate ARGS` in this process (pyhf imported once): (exit code, stdout, stderr)."""
    import sys

    from reanimate.cli import main

    monkeypatch.setattr(sys, "argv", ["reanimate", *map(str, args)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_patchset_gives_one_record_per_patch(tmp_path, capsys, monkeypatch):
    import pyhf

    base, patchset = workspace("counting"), json.loads((DATA / "patchset.json").read_text())
    points = load_patchset(base, patchset)
    assert [(n, lab) for n, lab, _ in points] == [("sig_300", {"mass": 300}),
                                                  ("sig_400", {"mass": 400}),
                                                  ("sig_500", {"mass": 500})]
    out = tmp_path / "results.json"
    code, stdout, stderr = reanimate(capsys, monkeypatch, "limits", DATA / "counting.json",
                                     "--patchset", DATA / "patchset.json", "--workers", "2",
                                     "-o", out)
    assert code == 0, stderr
    results = json.loads(out.read_text())
    assert [r["name"] for r in results] == ["sig_300", "sig_400", "sig_500"]
    by_hand = pyhf.PatchSet(patchset)
    for r in results:
        patched = by_hand.apply(pyhf.Workspace(base), r["name"])
        assert r["labels"] == {"mass": int(r["name"][-3:])}
        assert_cls(r, *pyhf_hypotest(dict(patched)))
    assert "sig_400" in stdout and "2.032" in stdout  # the table


def _bad(tmp_path, name, content) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_cli_bad_input(tmp_path, capsys, monkeypatch):
    ws = DATA / "counting.json"
    patchset = json.loads((DATA / "patchset.json").read_text())
    broken = copy.deepcopy(patchset)
    broken["patches"][1]["patch"][0]["path"] = "/channels/7/samples/0/data"
    other = copy.deepcopy(patchset)
    other["metadata"]["digests"]["sha256"] = "0" * 64
    cases = {
        "not JSON": ([_bad(tmp_path, "a.json", "{")], "not valid JSON"),
        "not a workspace": ([_bad(tmp_path, "b.json", [1, 2])], "not a pyhf workspace"),
        "POI missing": ([ws, "--poi", "nope"], "POI nope"),
        "patch does not apply": ([ws, "--patchset", _bad(tmp_path, "c.json", broken)],
                                 "patch sig_400 does not apply"),
        "digest mismatch": ([ws, "--patchset", _bad(tmp_path, "d.json", other)],
                            "made for another workspace"),
        "unknown patch": ([ws, "--patchset", DATA / "patchset.json", "--patch", "sig_9"],
                          "no patch named sig_9"),
        "not a patchset": ([ws, "--patchset", ws], "not a pyhf PatchSet"),
        "missing file": ([tmp_path / "nothere.json"], "not found"),
    }
    for case, (args, message) in cases.items():
        code, _, stderr = reanimate(capsys, monkeypatch, "limits", *args)
        lines = stderr.strip().splitlines()
        assert code == 2, (case, stderr)
        assert len(lines) == 1 and message in lines[0], (case, stderr)
        assert "Traceback" not in stderr


def test_cli_subprocess(cli):
    """As a user runs it: a plain workspace, and one bad input."""
    proc = cli("limits", DATA / "counting.json", "--mu", "2")
    assert proc.returncode == 0, proc.stderr
    assert "counting" in proc.stdout and "2.032" in proc.stdout
    proc = cli("limits", DATA / "counting.json", "--poi", "nope")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "POI nope" in proc.stderr
