"""Seconds per point (CLs at mu = 1 + observed and 5 expected limits): ours vs pyhf's default.

    python benchmarks/limits.py [--rounds 3] [--pyhf-rounds 1] [--no-pyhf]
        [--models counting multi agc_like 1lbb] [--campaign-points 6]

Ours: `reanimate.statistics.limits.limit_record` (asymptotic qmu~), including building the
model. pyhf: `pyhf.infer.intervals.upper_limits.upper_limit(data, model)` with its defaults
(numpy backend, scipy optimiser, toms748 root finds), the observed and 5 expected limits (it
does not even include the CLs at mu = 1). Same models, same run. Then an estimate of the whole
1Lbb patchset (125 points, all six limits) on 2 cores from the mean of `--campaign-points`
points spread over the grid (patch application + model build + limits).
pyhf's upper_limit takes ~8 min on the AGC-like model and far longer on 1Lbb: use
--pyhf-rounds 0 (or --no-pyhf) for ours alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "limits"
PUBLISHED = ROOT.parent / "shared" / "data" / "published" / "atlas-susy-2019-08"
POINT_1LBB = "C1N2_Wh_hbb_700_150"


def _workspace(name: str, cache: dict) -> dict:
    if name != "1lbb":
        return json.loads((DATA / f"{name}.json").read_text())
    from reanimate.statistics.limits import load_patchset

    if "1lbb" not in cache:
        cache["bkg"] = json.loads((PUBLISHED / "BkgOnly.json").read_text())
        cache["patchset"] = json.loads((PUBLISHED / "patchset.json").read_text())
        cache["1lbb"] = load_patchset(cache["bkg"], cache["patchset"], [POINT_1LBB])[0][2]
    return cache["1lbb"]


def ours(ws: dict, validate: bool) -> tuple[float, dict]:
    from reanimate.statistics.limits import limit_record

    started = time.perf_counter()
    record = limit_record(ws, validate=validate)
    return time.perf_counter() - started, record


def pyhf_default(ws: dict) -> tuple[float, list]:
    import pyhf

    pyhf.set_backend("numpy")
    started = time.perf_counter()
    w = pyhf.Workspace(ws, validate=False)
    model = w.model(validate=False)
    obs, exp = pyhf.infer.intervals.upper_limits.upper_limit(w.data(model), model)
    return time.perf_counter() - started, [float(obs), *map(float, exp)]


def summary(times: list[float]) -> str:
    if not times:
        return "-"
    if len(times) == 1:
        return f"{times[0]:.3f}"
    return f"{min(times):.3f} / {statistics.median(times):.3f}"


def campaign(cache: dict, n: int) -> None:
    from reanimate.statistics.limits import limit_record, load_patchset

    _workspace("1lbb", cache)
    names = [p["metadata"]["name"] for p in cache["patchset"]["patches"]]
    chosen = names[:: max(1, len(names) // n)][:n]
    seconds, failed = [], 0
    for name in chosen:
        started = time.perf_counter()
        (_, labels, ws), = load_patchset(cache["bkg"], cache["patchset"], [name])
        record = limit_record(ws, name=name, labels=labels, validate=False)
        seconds.append(time.perf_counter() - started)
        failed += record["status"] != "ok"
        print(f"  {name}: {seconds[-1]:.2f} s, {record['status']}, limit obs "
              f"{record['limit_observed']}, fits {record.get('fits')}", flush=True)
    mean = statistics.mean(seconds)
    print(f"1Lbb patchset estimate: {mean:.2f} s a point (mean of {len(chosen)}, {failed} failed) "
          f"x {len(names)} points / 2 cores = {mean * len(names) / 2 / 60:.1f} min "
          f"(+ the one-off validation and Dask start-up)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pyhf-rounds", type=int, default=1)
    parser.add_argument("--no-pyhf", action="store_true")
    parser.add_argument("--models", nargs="*", default=["counting", "multi", "agc_like", "1lbb"])
    parser.add_argument("--campaign-points", type=int, default=6)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    cache: dict = {}
    rows = []
    for name in args.models:
        if name == "1lbb" and not PUBLISHED.is_dir():
            print(f"skipping 1lbb: {PUBLISHED} not found")
            continue
        ws = _workspace(name, cache)
        mine = [ours(ws, validate=name != "1lbb") for _ in range(args.rounds)]
        record = mine[-1][1]
        theirs = [] if args.no_pyhf else [pyhf_default(ws) for _ in range(args.pyhf_rounds)]
        ours_t = [t for t, _ in mine]
        pyhf_t = [t for t, _ in theirs]
        speedup = (f"{statistics.median(pyhf_t) / statistics.median(ours_t):.0f}x"
                   if pyhf_t else "-")
        rows.append((name, summary(ours_t), summary(pyhf_t), speedup))
        limits = [record["limit_observed"], *record["limit_expected"]]
        print(f"{name}: ours {summary(ours_t)} s, pyhf {summary(pyhf_t)} s ({speedup}); "
              f"limits ours {[round(x, 5) for x in limits]}"
              + (f", pyhf {[round(x, 5) for x in theirs[-1][1]]}" if theirs else ""), flush=True)
    print("\nseconds per point (min / median): model | ours | pyhf upper_limit | speed-up")
    for row in rows:
        print(" | ".join(row))
    if args.campaign_points and PUBLISHED.is_dir():
        campaign(cache, args.campaign_points)


if __name__ == "__main__":
    main()
