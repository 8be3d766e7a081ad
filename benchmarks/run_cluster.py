"""The flagship's histogram step three ways: in its own process, with its own LocalCluster, and
handed the run's cluster through $DASK_SCHEDULER_URI (what the local engine does now).

    .venv/bin/python benchmarks/run_cluster.py [--events 20000] [--rounds 3] [--workers 2]
        [--samples DIR] [--no_ml]

Generates the flagship's samples (``--events`` ttbar events and the other samples in the real
proportions; or uses ``--samples``), then in interleaved rounds runs the step program as a
process (``python -m reanimate.analyses.agc.steps.histograms``, the ML histograms with the
flagship's pinned models unless ``--no_ml``):

  in-process      --dask_workers 1: the chunks one after the other in the step's process;
  own cluster     --dask_workers N, no scheduler: the step starts and stops a LocalCluster
                  (what every dask: step did before the engine shared one);
  run's cluster   --dask_workers N with $DASK_SCHEDULER_URI of a LocalCluster of N workers
                  started once beforehand (its start-up is paid once per run, printed apart).

Prints each mode's wall (min/median) and the CPU of the step process (the workers' CPU is not
counted for the cluster modes), and checks the three give the same bytes. Figures only.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "specs" / "models" / "agc-ttbar-jet-assignment" / "v1"


def run_step(samples: Path, out: Path, workers: int, ml: bool, scheduler: str | None):
    argv = [sys.executable, "-m", "reanimate.analyses.agc.steps.histograms", "--samples",
            str(samples), "--histograms", str(out / "histograms.root"), "--no_progress", "true",
            "--dask_workers", str(workers)]
    if ml:
        argv += ["--model_even", str(MODELS / "model_even.json"), "--model_odd",
                 str(MODELS / "model_odd.json"), "--histograms_ml",
                 str(out / "histograms_ml.root")]
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_URI"}
    if scheduler:
        env["DASK_SCHEDULER_URI"] = scheduler
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the step failed: {proc.stderr.read().decode()}")
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(out.glob("*.root"))))
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, digest.hexdigest()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--samples", type=Path, help="a catalogue folder (default: generated)")
    p.add_argument("--no_ml", action="store_true")
    args = p.parse_args(argv)
    from reanimate.dask_cluster import start_local_cluster

    with tempfile.TemporaryDirectory(prefix="reanimate-run-cluster-") as tmp:
        tmp = Path(tmp)
        samples = args.samples
        if samples is None:
            samples = tmp / "samples"
            subprocess.run([sys.executable, "-m", "reanimate.analyses.agc.steps.datasets",
                            "--events", str(args.events), "--seed", "42", "--samples",
                            str(samples)], check=True, stdout=subprocess.DEVNULL)
        t0 = time.perf_counter()
        cluster = start_local_cluster(args.workers, 1, "2Gi")
        start_s = time.perf_counter() - t0
        modes = {"in-process": (1, None), "own cluster": (args.workers, None),
                 "run's cluster": (args.workers, cluster.scheduler_address)}
        found: dict[str, list] = {m: [] for m in modes}
        try:
            for r in range(args.rounds + 1):  # round 0 warms caches, not reported
                for mode, (workers, scheduler) in modes.items():
                    out = tmp / f"{mode.replace(' ', '_')}_{r}"
                    out.mkdir()
                    result = run_step(samples, out, workers, not args.no_ml, scheduler)
                    if r:
                        found[mode].append(result)
        finally:
            cluster.close()
    print(f"histogram step, {args.events:,} ttbar events (flagship proportions), "
          f"{'with' if not args.no_ml else 'without'} ML; {args.rounds} interleaved rounds; "
          f"the run's cluster of {args.workers} workers took {start_s:.1f} s to start (once per "
          "run, overlapping the upstream steps)")
    print(f"  {'mode':<14} {'wall min':>8} {'median':>7} {'step CPU':>9} {'peak RSS':>9}")
    for mode, results in found.items():
        walls = [x[0] for x in results]
        print(f"  {mode:<14} {min(walls):>7.2f}s {statistics.median(walls):>6.2f}s "
              f"{statistics.median(x[1] for x in results):>8.2f}s "
              f"{statistics.median(x[2] for x in results):>6.0f} MB")
    digests = {x[3] for results in found.values() for x in results}
    same = "the same bytes in every mode and round" if len(digests) == 1 else "DIFFER"
    print(f"  outputs: {same}")


if __name__ == "__main__":
    main()
