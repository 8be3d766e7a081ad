"""pyhf's own CLs and upper limits for the limits tests, computed once and stored as a fixture.

    python benchmarks/limits_reference.py [--skip-upper-limits] [--only NAME ...]
        [-o tests/data/limits/pyhf_reference.json]

pyhf 0.7.6, numpy backend, its default scipy optimiser, qmu~: for every model in
tests/data/limits/ (and "stiff_removed": the stiff model without its tiny shapesys, the right
answer for it) `hypotest(mu=1, return_expected_set=True)` and
`upper_limit(data, model, scan=None)` (toms748 root finds, observed and 5 expected); for three
points of the published ATLAS SUSY-2019-08 (1Lbb) likelihood, `hypotest` at mu = 1 (about 20 s
each; `upper_limit` would take many minutes a point). The AGC-like model's upper_limit takes
~8 minutes on our 2-core machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "limits"
PUBLISHED = ROOT.parent / "shared" / "data" / "published" / "atlas-susy-2019-08"
MODELS = ("counting", "multi", "agc_like", "stiff", "stiff_removed")
POINTS_1LBB = ("C1N2_Wh_hbb_700_150", "C1N2_Wh_hbb_300_0", "C1N2_Wh_hbb_1000_350")


def stiff_removed() -> dict:
    ws = json.loads((DATA / "stiff.json").read_text())
    out = copy.deepcopy(ws)
    for channel in out["channels"]:
        for sample in channel["samples"]:
            sample["modifiers"] = [m for m in sample["modifiers"] if m["name"] != "tiny"]
    return out


def workspace(name: str) -> dict:
    return stiff_removed() if name == "stiff_removed" else json.loads(
        (DATA / f"{name}.json").read_text())


def hypotest(ws_dict: dict, mu: float = 1.0) -> dict:
    import pyhf

    pyhf.set_backend("numpy")
    ws = pyhf.Workspace(ws_dict)
    model = ws.model()
    data = ws.data(model)
    started = time.perf_counter()
    obs, exp = pyhf.infer.hypotest(mu, data, model, test_stat="qtilde", return_expected_set=True)
    return {"mu": mu, "cls_observed": float(obs), "cls_expected": [float(x) for x in exp],
            "hypotest_seconds": round(time.perf_counter() - started, 2)}


def upper_limit(ws_dict: dict, cl: float = 0.95) -> dict:
    import pyhf

    pyhf.set_backend("numpy")
    ws = pyhf.Workspace(ws_dict)
    model = ws.model()
    data = ws.data(model)
    started = time.perf_counter()
    obs, exp = pyhf.infer.intervals.upper_limits.upper_limit(data, model, scan=None,
                                                             level=1 - cl)
    return {"limit_observed": float(obs), "limit_expected": [float(x) for x in exp],
            "upper_limit_seconds": round(time.perf_counter() - started, 2)}


def main() -> None:
    import pyhf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=DATA / "pyhf_reference.json")
    parser.add_argument("--skip-upper-limits", action="store_true")
    parser.add_argument("--only", nargs="*", help="models/points to (re)compute")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    out = json.loads(args.output.read_text()) if args.output.exists() else {}
    out["pyhf"] = pyhf.__version__
    models = out.setdefault("models", {})
    for name in MODELS:
        if args.only and name not in args.only:
            continue
        entry = hypotest(workspace(name))
        if not args.skip_upper_limits:
            entry.update(upper_limit(workspace(name)))
        models[name] = entry
        print(name, entry, flush=True)
        args.output.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    if PUBLISHED.is_dir():
        from reanimate.statistics.limits import load_patchset

        bkg = json.loads((PUBLISHED / "BkgOnly.json").read_text())
        patchset = json.loads((PUBLISHED / "patchset.json").read_text())
        points = out.setdefault("atlas-susy-2019-08", {})
        for name, _, ws in load_patchset(bkg, patchset, list(POINTS_1LBB)):
            if args.only and name not in args.only:
                continue
            points[name] = hypotest(ws)
            print(name, points[name], flush=True)
            args.output.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
