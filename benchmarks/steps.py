"""Wall and CPU time of the flagship's plots, fit and train steps, each as its own process.

Each step program runs as `make run` runs it (the same flags as specs/agc-ttbar.yaml gives it)
on the inputs of a work directory: WORKDIR/results/{datasets,histograms,statmodel,fit}, the
layout `reanimate run` leaves. Without --workdir, a fresh small run of the flagship is made
first in a temporary directory (`reanimate run specs/agc-ttbar.yaml --set events=N`). Every
step runs --rounds times, interleaved (plots, fit, train, plots, ...), outputs into a fresh
temporary directory each time; printed: min and median of the wall time and of the CPU time
(user + sys of the process and the processes it started and waited for).

    .venv/bin/python benchmarks/steps.py [--workdir WORKDIR] [--rounds 3] [--events 5000]
        [--steps plots,fit,train]

The machine's load shows in the wall figures, hardly in the CPU ones: compare code versions
side by side in one run of the machine, not across days.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "agc-ttbar.yaml"
STEPS = ("plots", "fit", "train")
# the flagship's train parameters (specs/agc-ttbar.yaml, steps.train.parameters)
TRAIN = ["--seed", "42", "--n_estimators_grid", "25,50", "--max_depth_grid", "3"]


def commands(results: Path, out: Path) -> dict[str, list[str]]:
    """The step programs' command lines, outputs under `out`."""
    py = [sys.executable, "-m"]
    hists, stat = results / "histograms", results / "statmodel" / "statmodel"
    return {
        "plots": [*py, "reanimate.analyses.agc.steps.plots",
                  "--histograms", str(hists / "histograms.root"),
                  "--histograms_ml", str(hists / "histograms_ml.root"),
                  "--workspace", str(stat / "workspace.json"),
                  "--report", str(stat / "statmodel_report.json"),
                  "--fit", str(results / "fit" / "fit" / "fit_results.json"),
                  "--origin", "generated", "--plots", str(out / "plots")],
        "fit": [*py, "reanimate.steps.fit", "--workspace", str(stat / "workspace.json"),
                "--significance", "true", "--results", str(out / "fit" / "fit_results.json")],
        "train": [*py, "reanimate.analyses.agc.steps.train",
                  "--samples", str(results / "datasets" / "samples"), *TRAIN,
                  "--model_even", str(out / "models" / "model_even.json"),
                  "--model_odd", str(out / "models" / "model_odd.json"),
                  "--metrics", str(out / "models" / "training_metrics.json")],
    }


def timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of `argv` (its children included once reaped)."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # embedded store
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[2]}: exit code {proc.returncode}\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def fresh_run(workdir: Path, events: int) -> None:
    script = Path(sys.executable).with_name("reanimate")
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "reanimate.cli"]
    proc = subprocess.run([*cli, "run", str(SPEC), "--workdir", str(workdir),
                           "--set", f"events={events}"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"the small run failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, help="work dir of a run (default: a fresh one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=5000, help="events of the fresh run")
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated, of " +
                        ", ".join(STEPS))
    args = parser.parse_args(argv)
    steps = [s for s in args.steps.split(",") if s]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown or args.rounds < 1:
        parser.error(f"unknown steps {unknown}" if unknown else "--rounds must be >= 1")
    with tempfile.TemporaryDirectory(prefix="reanimate-bench-steps-") as tmp:
        tmp = Path(tmp)
        workdir = args.workdir
        if workdir is None:
            workdir = tmp / "work"
            fresh_run(workdir, args.events)
        results = workdir.resolve() / "results"
        samples: dict[str, list[tuple[float, float]]] = {s: [] for s in steps}
        for r in range(args.rounds):
            for step in steps:
                out = tmp / f"{step}-{r}"
                for sub in ("fit", "models", "cwd"):
                    (out / sub).mkdir(parents=True, exist_ok=True)
                samples[step].append(timed(commands(results, out)[step], out / "cwd"))
        where = args.workdir or f"a fresh run of {args.events} events"
        cpus = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                else os.cpu_count())
        print(f"inputs: {where}; {args.rounds} rounds; CPUs {cpus}")
        for step in steps:
            walls, cpus = zip(*samples[step], strict=True)
            print(f"{step:<6} wall min {min(walls):6.2f} s  median {statistics.median(walls):6.2f}"
                  f" s   CPU min {min(cpus):6.2f} s  median {statistics.median(cpus):6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
