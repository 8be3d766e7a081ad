"""Throughput of the AGC histogram stage: reading alone, the full stage, the stage with ML.

    .venv/bin/python benchmarks/throughput.py [--events 300000] [--workers 1]
        [--chunk_size 200000] [--base_events 300000] [--file_events N] [--data DIR]
        [--ml [--ml_trees 100 --ml_depth 5 | --ml_models DIR]] [--rounds 3] [--memory 4Gi]

Builds ``--events`` ttbar events in a folder (generated NanoAOD-schema events when the generator
is installed, ``--base_events`` generated and the file copied; else the real 200-event CMS file
replicated; ``--file_events`` rewrites them with 10,000-entry baskets), then for each worker
count starts a Dask LocalCluster (worker processes, one thread each) and runs, over all chunks
(basket-aligned, at most ``--chunk_size`` entries), in ``--rounds`` interleaved rounds:

  read (uproot zlib)  the stage's branches read by uproot with its own zlib inflater;
  read                the same with the stage's reading (ISA-L inflater, the same bytes);
  full                the stage: selection, every systematic, histogram filling, ordered merge;
  full+ML             with ``--ml``: plus the BDT inference (models trained on the file).

Prints, min and median over the rounds, events/s per core (wall / workers) and per CPU-second
of the workers (robust on a shared machine), the ratios to both reading baselines, full+ML /
full, and the workers' RSS after every round (flat = no growth over repeated chunks) and their
peak. Figures, never asserts.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REAL = Path(__file__).resolve().parents[2] / "shared/data/nanoAOD_2015_CMS_Open_Data_ttbar.root"


def build_base(path: Path, n: int) -> str:
    """One file of ``n`` ttbar events; returns how it was made."""
    try:
        from reanimate.analyses.agc import generate
        from reanimate.datasets.writing import write_events
    except ImportError:
        return _replicate_real(path, n)
    sample = generate.plan_samples(events=n, signal_masses=())[0]
    assert (sample.process, sample.variation) == ("ttbar", "nominal")
    columns = generate.generate_columns(sample, n, generate._rng(1, sample, 0))
    scalars = {
        "run": np.ones(n, np.uint32),
        "luminosityBlock": np.ones(n, np.uint32),
        "event": np.arange(1, n + 1, dtype=np.uint64),
    }
    write_events(path, scalars, columns, key="throughput")
    return "generated"


def _replicate_real(path: Path, n: int) -> str:
    replicate(REAL, path, n, basket=10_000)
    return "real file replicated"


def replicate(source: Path, path: Path, n: int, basket: int) -> None:
    """Write ``n`` events made of ``source``'s events repeated (the stage's branches only),
    ``basket`` events per basket."""
    import awkward as ak
    import uproot

    from reanimate.analyses.agc.objects import BRANCHES

    with uproot.open(source) as f:
        events = f["Events"].arrays(list(BRANCHES), library="ak")
    events = ak.concatenate([events] * -(-basket // len(events)))[:basket]
    out = {k: events[k] for k in ("run", "luminosityBlock")}
    for coll in ("Electron", "Muon", "Jet"):
        fields = {b[len(coll) + 1 :]: events[b] for b in BRANCHES if b.startswith(coll + "_")}
        out[coll] = ak.zip(fields)
    with uproot.recreate(path) as f:
        types = {"event": np.uint64, **{k: v.type.content for k, v in out.items()}}
        tree = f.mktree("Events", types)
        for start in range(0, n, basket):
            stop = min(start + basket, n)
            part = {k: v[: stop - start] for k, v in out.items()}
            tree.extend({"event": np.arange(start + 1, stop + 1, dtype=np.uint64), **part})


def _cpu_s() -> float:
    return time.process_time()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def read_plain_uproot(task):
    """The reading baseline with uproot's own zlib inflater (the stage inflates with ISA-L)."""
    import uproot

    from reanimate.analyses.agc import processing

    decompressor = uproot.compression._decompress_ZLIB
    saved, decompressor.library = decompressor.library, "zlib"
    try:
        return processing.read_only(task)
    finally:
        decompressor.library = saved


def measure(files: list[str], workers: int, chunk_size: int, memory: str,
            ml_function=None, rounds: int = 3) -> dict:
    """Each function over all chunks, ``rounds`` times interleaved; per function the events/s
    per core (wall) and per CPU-second of the workers, as lists over rounds; workers' RSS after
    every round and their peak."""
    from reanimate.analyses.agc import distributed, processing

    plan_tasks = []
    for path in files:
        starts = processing.basket_starts(path)
        plan_tasks += [processing.ChunkTask("ttbar", "nominal", path, a, b, 1.0, 42)
                       for a, b in distributed.aligned_ranges(starts, chunk_size)]
    events = sum(t.entry_stop - t.entry_start for t in plan_tasks)
    functions = [("read (uproot zlib)", read_plain_uproot), ("read", processing.read_only),
                 ("full", processing.process_chunk)]
    if ml_function is not None:  # (c): the stage with the ML inference filler
        functions.append(("full+ML", ml_function))
    out = {"workers": workers, "events": events, "chunks": len(plan_tasks), "rss": []}
    with distributed.dask_client(workers=workers, memory_per_worker=memory) as client:
        warm = [processing.ChunkTask("ttbar", "nominal", files[0], 0, 1000, 1.0, 42)] * workers
        for _, fn in functions:
            distributed.run_chunks(client, warm, function=fn, progress=False)  # imports
        for _ in range(rounds):
            for label, fn in functions:
                cpu0 = sum(client.run(_cpu_s).values())
                start = time.perf_counter()
                _, n = distributed.run_chunks(client, plan_tasks, function=fn, progress=False)
                elapsed = time.perf_counter() - start
                cpu = sum(client.run(_cpu_s).values()) - cpu0
                assert n == events
                out.setdefault(label, []).append(events / elapsed / workers)
                out.setdefault(f"{label} cpu", []).append(events / cpu)
            out["rss"].append(sum(client.run(_rss_mb).values()))
        out["peak_rss_mb"] = sorted(client.run(_peak_rss_mb).values())
    return out


def _mm(values: list[float]) -> str:
    return f"{min(values):>9,.0f} {statistics.median(values):>9,.0f}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--base_events", type=int, default=300_000)
    p.add_argument("--file_events", type=int, default=None,
                   help="events per file (default: --base_events; larger files repeat the base "
                        "file's events, stage branches only, 10,000-event baskets)")
    p.add_argument("--workers", default="1")
    p.add_argument("--chunk_size", type=int, default=200_000)
    p.add_argument("--memory", default="4Gi", help="memory limit per worker")
    p.add_argument("--data", type=Path, help="keep the input files here (reused if present)")
    p.add_argument("--ml", action="store_true",
                   help="also (c): the stage with the ML inference (generated files only)")
    p.add_argument("--ml_trees", type=int, default=100, help="(c): trees per model")
    p.add_argument("--ml_depth", type=int, default=5, help="(c): tree depth (the flagship's "
                   "training selects depth 3 from its grid)")
    p.add_argument("--ml_models", type=Path, help="(c): a folder with model_even.json and "
                   "model_odd.json instead of training (e.g. specs/models/agc-ttbar-jet-"
                   "assignment/v1, the flagship's pinned models)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (min and median)")
    args = p.parse_args(argv)

    tmp = None
    data = args.data
    if data is None:
        tmp = tempfile.TemporaryDirectory(prefix="reanimate-throughput-")
        data = Path(tmp.name)
    data.mkdir(parents=True, exist_ok=True)
    try:
        base_n = min(args.base_events, args.events)
        base = data / "ttbar_base.root"
        t0 = time.perf_counter()
        how = build_base(base, base_n) if not base.exists() else "reused"
        per_file = args.file_events or base_n
        if per_file != base_n:
            big = data / f"ttbar_big_{per_file}.root"
            if not big.exists():
                replicate(base, big, per_file, basket=10_000)
            base, how = big, f"{how}, {base_n:,} events repeated"
        files, total = [], 0
        for i in range(-(-args.events // per_file)):
            copy = data / f"ttbar_{per_file}_{i:04d}.root"
            if not copy.exists():
                shutil.copyfile(base, copy)
            files.append(str(copy))
            total += per_file
        print(f"input: {total:,} events in {len(files)} files of {per_file:,} ({how}, "
              f"{sum(Path(f).stat().st_size for f in files) / 1e6:,.0f} MB, "
              f"{time.perf_counter() - t0:.0f} s to build)", file=sys.stderr)
        ml_function = None
        if args.ml:  # models trained on the generated base file (it has GenPart and Jet_qgl)
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from ml_inference import quick_models

            from reanimate.analyses.agc.ml import stage

            if args.ml_models:
                even, odd = args.ml_models / "model_even.json", args.ml_models / "model_odd.json"
                info = f"{args.ml_models}"
            else:
                even, odd, info = quick_models(data / "ttbar_base.root", data,
                                               n_estimators=args.ml_trees,
                                               max_depth=args.ml_depth)
            print(f"ML models: {info}", file=sys.stderr)
            ml_function = stage.chunk_function(stage.filler(even, odd))
        print(f"per function: events/s per core (wall) and per CPU-second of the workers, "
              f"min and median over {args.rounds} interleaved rounds; ratios of medians "
              "against 'read' (the stage's own reading) and 'read (uproot zlib)'")
        for w in [int(x) for x in args.workers.split(",")]:
            r = measure(files, w, args.chunk_size, args.memory, ml_function, args.rounds)
            print(f"\n{w} worker(s), {r['events']:,} events in {r['chunks']} chunks of at most "
                  f"{args.chunk_size:,}")
            print(f"  {'':<20} {'ev/s/core min':>13} {'median':>9} {'ev/CPU-s min':>13} "
                  f"{'median':>9} {'/read':>6} {'/uproot':>8}")
            labels = [k for k in r if isinstance(r[k], list) and not k.endswith(" cpu")
                      and k not in ("rss", "peak_rss_mb")]
            for label in labels:
                cpu = r[f"{label} cpu"]
                med = statistics.median(cpu)
                print(f"  {label:<20} {_mm(r[label])}     {_mm(cpu)} "
                      f"{med / statistics.median(r['read cpu']):>6.2f} "
                      f"{med / statistics.median(r['read (uproot zlib) cpu']):>8.2f}")
            if "full+ML" in r:
                ratio = statistics.median(r["full+ML cpu"]) / statistics.median(r["full cpu"])
                print(f"  full+ML / full (per CPU-second, medians): {ratio:.2f}")
            print(f"  workers' RSS after each round (MB, summed): "
                  f"{', '.join(f'{x:,.0f}' for x in r['rss'])}; peak per worker: "
                  f"{', '.join(f'{x:,.0f}' for x in r['peak_rss_mb'])}", flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
