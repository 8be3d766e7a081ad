"""Where the histogram stage's time goes: cProfile of ``process_chunk`` on one core.

    .venv/bin/python benchmarks/profile_chunk.py [--events 200000] [--chunk_size 200000]
        [--data DIR] [--ml] [--top 25] [--sort tottime]

Builds (or reuses, with ``--data``) one file of generated NanoAOD-schema ttbar events, runs the
stage's chunks once to warm up, then profiles them and prints the ``--top`` functions, and the
split between reading (the ``read_events`` call) and the rest. ``--ml`` adds the ML filler
(models trained on the file, 100 trees of depth 5). Figures only.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def tasks_of(path: Path, chunk_size: int):
    from reanimate.analyses.agc import processing

    n = processing.num_entries(str(path))
    return [processing.ChunkTask("ttbar", "nominal", str(path), s, min(s + chunk_size, n),
                                 1.0, 42) for s in range(0, n, chunk_size)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--chunk_size", type=int, default=200_000)
    p.add_argument("--data", type=Path, help="keep the input file here (reused if present)")
    p.add_argument("--ml", action="store_true", help="with the ML filler (100 trees, depth 5)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"))
    args = p.parse_args(argv)
    from throughput import build_base

    from reanimate.analyses.agc import processing

    tmp = tempfile.TemporaryDirectory(prefix="reanimate-profile-") if args.data is None else None
    data = Path(tmp.name) if tmp else args.data
    data.mkdir(parents=True, exist_ok=True)
    path = data / f"ttbar_{args.events}.root"
    if not path.exists():
        build_base(path, args.events)
    function = processing.process_chunk
    if args.ml:
        from ml_inference import quick_models

        from reanimate.analyses.agc.ml import stage

        even, odd, _ = quick_models(path, data, n_estimators=100, max_depth=5)
        function = stage.chunk_function(stage.filler(even, odd))
    tasks = tasks_of(path, args.chunk_size)
    for task in tasks:  # warm-up: imports, caches
        function(task)
    reading = 0.0
    for task in tasks:
        t0 = time.process_time()
        processing._read_events(task.path, function.keywords["fillers"][0].branches
                                if args.ml else processing.objects.BRANCHES,
                                task.entry_start, task.entry_stop)
        reading += time.process_time() - t0
    profile = cProfile.Profile()
    t0 = time.process_time()
    profile.enable()
    for task in tasks:
        function(task)
    profile.disable()
    total = time.process_time() - t0
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(args.top)
    print(out.getvalue())
    events = sum(t.entry_stop - t.entry_start for t in tasks)
    print(f"{events:,} events in {len(tasks)} chunks: {total:.2f} CPU-s under the profiler "
          f"({events / total:,.0f} events/CPU-s); reading alone (no profiler) {reading:.2f} "
          f"CPU-s")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
