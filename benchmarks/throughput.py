"""Throughput of the AGC histogramming stage: events/s per core, reading vs the full stage.

    .venv/bin/python benchmarks/throughput.py [--events 2000000] [--workers 1,2]
        [--chunk_size 100000] [--base_events 100000] [--data DIR]

Builds ``--events`` ttbar events in a temporary folder (generated NanoAOD-schema events when
the generator is installed — ``--base_events`` generated, then the file copied — else the real
200-event CMS file's events replicated), then for each worker count starts a Dask LocalCluster
(real worker processes, one thread each) and measures:

  (a) reading the branches the stage needs, chunk by chunk, and nothing else;
  (b) the full stage: selection, every systematic variation, histogram filling, ordered merge.

Prints events/s per core for both (wall clock / workers) and the ratio b/a (goal >= 0.5); the
same per CPU-second the workers actually used (robust on a shared machine); each worker's peak
RSS. Figures, not asserts.
"""

from __future__ import annotations

import argparse
import resource
import shutil
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


def measure(files: list[str], workers: int, chunk_size: int, memory: str,
            ml_function=None) -> dict:
    from reanimate.analyses.agc import distributed, processing
    from reanimate.analyses.agc.processing import ChunkTask

    tasks = []
    for path in files:
        n = processing.num_entries(path)
        tasks += [
            ChunkTask("ttbar", "nominal", path, s, min(s + chunk_size, n), 1.0, 42)
            for s in range(0, n, chunk_size)
        ]
    events = sum(t.entry_stop - t.entry_start for t in tasks)
    with distributed.dask_client(workers=workers, memory_per_worker=memory) as client:
        warm = [ChunkTask("ttbar", "nominal", files[0], 0, 1000, 1.0, 42)] * workers
        distributed.run_chunks(client, warm, progress=False)  # imports on every worker
        out = {"workers": workers, "events": events, "chunks": len(tasks)}
        functions = [("read", processing.read_only), ("full", processing.process_chunk)]
        if ml_function is not None:  # (c): the stage with the ML inference filler
            functions.append(("ml", ml_function))
        for label, fn in functions:
            cpu0 = sum(client.run(_cpu_s).values())
            start = time.perf_counter()
            _, n = distributed.run_chunks(client, tasks, function=fn, progress=False)
            elapsed = time.perf_counter() - start
            cpu = sum(client.run(_cpu_s).values()) - cpu0
            assert n == events
            out[label] = events / elapsed / workers
            out[f"{label}_s"] = elapsed
            out[f"{label}_cpu"] = events / cpu
        out["peak_rss_mb"] = sorted(client.run(_peak_rss_mb).values())
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=2_000_000)
    p.add_argument("--base_events", type=int, default=100_000)
    p.add_argument("--file_events", type=int, default=None,
                   help="events per file (default: --base_events; larger files repeat the base "
                        "file's events, stage branches only, 10,000-event baskets)")
    p.add_argument("--workers", default="1,2")
    p.add_argument("--chunk_size", type=int, default=100_000)
    p.add_argument("--memory", default="4Gi", help="memory limit per worker")
    p.add_argument("--data", type=Path, help="keep the input files here (reused if present)")
    p.add_argument("--ml", action="store_true",
                   help="also (c): the stage with the ML inference (generated files only)")
    p.add_argument("--ml_trees", type=int, default=100, help="(c): trees per model")
    p.add_argument("--ml_depth", type=int, default=5, help="(c): tree depth (the flagship's "
                   "training selects depth 3 from its grid)")
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

            even, odd, info = quick_models(data / "ttbar_base.root", data,
                                           n_estimators=args.ml_trees, max_depth=args.ml_depth)
            print(f"ML models: {info}", file=sys.stderr)
            ml_function = stage.chunk_function(stage.filler(even, odd))
        print(f"{'workers':>7} {'read ev/s/core':>15} {'full ev/s/core':>15} {'b/a':>5} "
              f"{'read s':>7} {'full s':>7} {'read ev/cpu-s':>14} {'full ev/cpu-s':>14} "
              f"{'b/a':>5}  peak RSS per worker (MB)")
        for w in [int(x) for x in args.workers.split(",")]:
            r = measure(files, w, args.chunk_size, args.memory, ml_function)
            rss = ", ".join(f"{m:,.0f}" for m in r["peak_rss_mb"])
            print(f"{w:>7} {r['read']:>15,.0f} {r['full']:>15,.0f} {r['full'] / r['read']:>5.2f} "
                  f"{r['read_s']:>7.1f} {r['full_s']:>7.1f} {r['read_cpu']:>14,.0f} "
                  f"{r['full_cpu']:>14,.0f} {r['full_cpu'] / r['read_cpu']:>5.2f}  {rss}",
                  flush=True)
            if ml_function is not None:
                print(f"{'(c)':>7} {'':>15} {r['ml']:>15,.0f} {r['ml'] / r['full']:>5.2f} "
                      f"{'':>7} {r['ml_s']:>7.1f} {'':>14} {r['ml_cpu']:>14,.0f} "
                      f"{r['ml_cpu'] / r['full_cpu']:>5.2f}  <- stage + ML, ratios c/b",
                      flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
