"""Campaigns end to end on a local cluster, with the per-point cost split and pyhf beside it.

    python benchmarks/campaign.py [--part zprime|1lbb|all] [--workers 2] [--pyhf 2]

* zprime: the small AGC chain (tests/engine_specs.small_flagship) preserved once, then a
  25-point Z' mass grid (600–3000 GeV, generated signals of 10k events each) through it;
* 1lbb: the 125 published ATLAS SUSY-2019-08 patches on the published background-only
  likelihood (../shared/data/published/atlas-susy-2019-08), all six limits per point (observed
  and the five expected).

Each part runs in a fresh temporary output folder (no store to resume from) and prints the wall
time, then the per-point cost split taken from the stored records (`timing`: the derived run's
steps from its provenance, patching, limits), then `--pyhf` of the points through pyhf itself:
``pyhf.infer.hypotest`` at mu = 1 (qmu~, the expected set), timed and compared with our CLs
values, and its cost for the whole grid extrapolated from those points (a full pyhf limit scan
needs ~10 such hypotests per point; the extrapolation says so). Figures only; nothing asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ONE_LBB = REPO.parent / "shared" / "data" / "published" / "atlas-susy-2019-08"
MASSES = list(range(600, 3001, 100))


def run(campaign_file: Path, output: Path, workers: int) -> tuple[float, list[dict]]:
    from reanimate.reinterpret.campaign import load_campaign
    from reanimate.reinterpret.campaign_run import run_campaign
    from reanimate.reinterpret.store import open_store

    campaign, path = load_campaign(campaign_file)
    start = time.perf_counter()
    counts = run_campaign(campaign, path, output, workers=workers)
    wall = time.perf_counter() - start
    with open_store(output) as store:
        points = store.current()
    print(f"  {counts}")
    return wall, points


def cost_split(points: list[dict]) -> None:
    timings = [p["record"]["timing"] for p in points if p["record"]]
    keys = sorted({k for t in timings for k in t}, key=lambda k: (k == "total", k))
    print(f"  per-point cost (mean / max over {len(timings)} points, seconds):")
    for key in keys:
        values = [t.get(key, 0.0) for t in timings]
        print(f"    {key:<14} {statistics.fmean(values):8.3f}  {max(values):8.3f}")
    failed = [p["name"] for p in points if (p["record"] or {}).get("status") not in ("ok",)]
    if failed:
        print(f"  points without status ok: {len(failed)} ({', '.join(failed[:5])} ...)")


def pyhf_side(points: list[dict], workspaces, n: int, wall: float, workers: int,
              total: int) -> None:
    """pyhf's hypotest on `n` points (the workspace of each from `workspaces(point)`)."""
    import pyhf

    if n <= 0:
        return
    chosen = [p for p in points if p["record"] and p["record"].get("cls_observed") is not None]
    chosen = chosen[:: max(1, len(chosen) // n)][:n]
    seconds = []
    print(f"  pyhf {pyhf.__version__} hypotest(mu=1, qtilde, expected set) on {len(chosen)} "
          "points:")
    for point in chosen:
        workspace = pyhf.Workspace(workspaces(point))
        model = workspace.model()
        data = workspace.data(model)
        start = time.perf_counter()
        observed, expected = pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde",
                                                 return_expected_set=True)
        seconds.append(time.perf_counter() - start)
        ours = point["record"]
        print(f"    {point['name']:<24} pyhf CLs_obs {float(observed):.4g} "
              f"(ours {ours['cls_observed']:.4g}), exp median {float(expected[2]):.4g} "
              f"(ours {ours['cls_expected'][2]:.4g}); {seconds[-1]:.1f} s")
    per = statistics.fmean(seconds)
    grid = per * total / workers
    ours = wall * total / len(points)
    how = "extrapolated" if total > len(points) else "measured"
    print(f"  pyhf, extrapolated from these points: {per:.1f} s per hypotest -> "
          f"{grid:.0f} s for CLs at mu=1 on all {total} points on {workers} workers; "
          f"a limit scan (~10 hypotests a point) ~{10 * grid:.0f} s, against our "
          f"{ours:.0f} s for all six limits (wall, {how})")


def zprime(workers: int, n_pyhf: int, events: int, subset: int | None) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from engine_specs import small_flagship

    from reanimate.reinterpret.analysis import prepare_analysis
    from reanimate.statistics import jsonio

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        masses = MASSES[:: max(1, len(MASSES) // subset)][:subset] if subset else MASSES
        spec = tmp / "spec.yaml"
        spec.write_text(yaml.safe_dump(small_flagship(), sort_keys=False))
        campaign = tmp / "zprime.yaml"
        campaign.write_text(yaml.safe_dump({
            "campaign_version": 1, "name": "zprime-bench", "analysis": "spec.yaml",
            "grid": {"axes": {"mass": masses}},
            "signal": {"recipe": f"zprime:mass={{mass}},events={events}"},
            "plot": {"x": "mass"}}, sort_keys=False))
        start = time.perf_counter()
        prepare_analysis(spec, tmp / "out" / "analysis")
        print(f"zprime: preserving the small AGC chain once: {time.perf_counter() - start:.1f} s")
        wall, points = run(campaign, tmp / "out", workers)
        print(f"zprime: {len(points)} points ({events} events each) on {workers} workers: "
              f"{wall:.1f} s (goal <= 60 s for 25; the analysis prepared from the cache included)")
        if len(points) < len(MASSES):
            print(f"zprime: extrapolated to all {len(MASSES)} masses: "
                  f"{wall * len(MASSES) / len(points):.0f} s")
        cost_split(points)
        out = tmp / "out"
        pyhf_side(points, lambda p: jsonio.read(out / "points" / p["digest"][:16]
                                                / "workspace.json"), n_pyhf, wall, workers,
                  len(MASSES))


def one_lbb(workers: int, n_pyhf: int, subset: int | None) -> None:
    if not ONE_LBB.is_dir():
        print(f"1lbb: {ONE_LBB} not found, skipped")
        return
    from reanimate.statistics import jsonio
    from reanimate.statistics.limits import load_patchset

    with tempfile.TemporaryDirectory() as tmp:
        campaign = REPO / "specs" / "campaigns" / "atlas-1lbb.yaml"
        total = 125
        if subset:  # an evenly spaced subset, the wall time extrapolated to the 125 points
            doc = yaml.safe_load(campaign.read_text())
            names = [p["metadata"]["name"] for p in jsonio.read(ONE_LBB / "patchset.json")
                     ["patches"]]
            total = len(names)
            doc["signal"]["patches"] = names[:: max(1, len(names) // subset)][:subset]
            for key in ("workspace",):
                doc[key] = str(ONE_LBB / Path(doc[key]).name)
            doc["signal"]["patchset"] = str(ONE_LBB / "patchset.json")
            campaign = Path(tmp) / "1lbb.yaml"
            campaign.write_text(yaml.safe_dump(doc, sort_keys=False))
        wall, points = run(campaign, Path(tmp) / "out", workers)
        print(f"1lbb: {len(points)} patches x 6 limits on {workers} workers: {wall:.1f} s "
              "(goal <= 300 s for all 125)")
        if len(points) < total:
            print(f"1lbb: extrapolated to all {total} patches: "
                  f"{wall * total / len(points):.0f} s")
        cost_split(points)
        workspace = jsonio.read(ONE_LBB / "BkgOnly.json")
        patchset = jsonio.read(ONE_LBB / "patchset.json")

        def patched(point: dict) -> dict:
            return load_patchset(workspace, patchset, [point["name"]])[0][2]

        pyhf_side(points, patched, n_pyhf, wall, workers, total)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=("zprime", "1lbb", "all"), default="all")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--pyhf", type=int, default=2, help="points to run through pyhf")
    p.add_argument("--events", type=int, default=10000)
    p.add_argument("--points", type=int, default=None,
                   help="an evenly spaced subset of this many points (extrapolated)")
    args = p.parse_args()
    if args.part in ("zprime", "all"):
        zprime(args.workers, args.pyhf, args.events, args.points)
    if args.part in ("1lbb", "all"):
        one_lbb(args.workers, args.pyhf, args.points)


if __name__ == "__main__":
    main()
