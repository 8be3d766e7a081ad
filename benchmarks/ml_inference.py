"""ML inference in the histogram stage: ML / no-ML rates per evaluator and model (one core).

    .venv/bin/python benchmarks/ml_inference.py [--events 200000] [--train_events 20000]
        [--models flagship,100x5,100x6] [--evaluators numba,xgboost] [--rounds 3]
        [--model_even F --model_odd F]

Generates ``--events`` ttbar events (NanoAOD schema, in memory after one write/read). Models:
``flagship``, the pinned pair of specs/agc-ttbar.lock.json (or ``--model_even/--model_odd``);
``TxD``, a pair of T trees of depth D trained on the first ``--train_events`` events. For each
model and evaluator (:mod:`reanimate.analyses.agc.ml.forest`), in interleaved rounds, CPU time
(``time.process_time``) of:

  * inference alone on the 4j2b events (nominal jets): features, scoring with the parity swap,
    best permutation (4j2b events per CPU-second);
  * the histogram stage's per-chunk work (every systematic, all histograms) without ML (b) and
    with the ML filler (c, 20 more histograms per 4j2b variation); the figure is the ratio of
    the rates, c/b = time(b) / time(c).

Prints figures (min and median over ``--rounds``); never asserts (the machine may be shared).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def cpu_time(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def min_median(values) -> str:
    return f"{min(values):.3g} / {float(np.median(values)):.3g}"


def generate(path: Path, n: int) -> None:
    from reanimate.analyses.agc import generate as gen
    from reanimate.datasets.writing import write_events

    sample = gen.plan_samples(events=n, signal_masses=())[0]
    columns = gen.generate_columns(sample, n, gen._rng(1, sample, 0))
    scalars = {
        "run": np.ones(n, np.uint32),
        "luminosityBlock": np.ones(n, np.uint32),
        "event": np.arange(1, n + 1, dtype=np.uint64),
    }
    write_events(path, scalars, columns, key="ml-benchmark")


def quick_models(
    path: Path,
    out_dir: Path,
    train_events: int = 20_000,
    n_estimators: int = 100,
    max_depth: int = 5,
) -> tuple[Path, Path, str]:
    """Train a model pair on the first ``train_events`` of ``path`` (a file with GenPart)."""
    from reanimate.analyses.agc import objects
    from reanimate.analyses.agc.ml import training
    from reanimate.analyses.agc.ml.selection import INFERENCE_BRANCHES, TRAINING_BRANCHES
    from reanimate.datasets.reading import read_events

    branches = list(dict.fromkeys(objects.BRANCHES + INFERENCE_BRANCHES + TRAINING_BRANCHES))
    data = training.training_set(read_events(path, branches, 0, train_events))
    hp = training.HyperParams(n_estimators, max_depth, 0.1)
    result = training.train(data, [hp], seed=1)
    paths = []
    for role in ("model_even", "model_odd"):
        paths.append(Path(out_dir) / f"{role}.json")
        getattr(result, role).save_model(str(paths[-1]))
    info = (
        f"trained on {len(data):,} matched events of the first {train_events:,} "
        f"({n_estimators} trees, depth {max_depth}; held-out events fully correct "
        f"{result.metrics['fraction_events_correct']:.3f})"
    )
    return paths[0], paths[1], info


FLAGSHIP = Path(__file__).resolve().parents[1] / "specs/models/agc-ttbar-jet-assignment/v1"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--train_events", type=int, default=20_000)
    p.add_argument("--models", default="flagship,100x5,100x6")
    p.add_argument("--evaluators", default="numba,xgboost")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--model_even", type=Path)
    p.add_argument("--model_odd", type=Path)
    args = p.parse_args(argv)

    import awkward as ak

    from reanimate.analyses.agc import objects, processing
    from reanimate.analyses.agc.ml import inference
    from reanimate.analyses.agc.ml.permutations import permutations
    from reanimate.analyses.agc.ml.selection import (
        INFERENCE_BRANCHES,
        region_4j2b,
        selected_lepton,
        selection_jets,
    )
    from reanimate.datasets.reading import read_events

    with tempfile.TemporaryDirectory(prefix="reanimate-ml-bench-") as tmp:
        tmp = Path(tmp)
        path = tmp / "ttbar.root"
        t0 = time.perf_counter()
        generate(path, args.events)
        branches = list(dict.fromkeys(objects.BRANCHES + INFERENCE_BRANCHES))
        events = read_events(path, branches)
        print(f"input: {args.events:,} generated ttbar events "
              f"({time.perf_counter() - t0:.1f} s to generate and read)", file=sys.stderr)

        sel = region_4j2b(events)
        region = events[sel.event_mask]
        jets = selection_jets(sel, ak.to_numpy(ak.flatten(events.Jet_qgl, axis=1)))
        lepton = selected_lepton(region)
        numbers = ak.to_numpy(region.event)
        n4 = len(numbers)
        used = np.minimum(jets.counts, 6)
        perms = sum(int((used == k).sum()) * len(permutations(k)) for k in (4, 5, 6))
        print(f"4j2b events: {n4:,} of {args.events:,} ({perms / max(n4, 1):.1f} permutations "
              f"per event on average); {args.rounds} rounds, figures min / median")

        pairs = {}
        for name in args.models.split(","):
            t0 = time.perf_counter()
            if name == "flagship":
                even = args.model_even or FLAGSHIP / "model_even.json"
                odd = args.model_odd or FLAGSHIP / "model_odd.json"
                info = f"{even.parent}"
            else:
                trees, depth = (int(v) for v in name.split("x"))
                d = tmp / name
                d.mkdir()
                even, odd, info = quick_models(path, d, args.train_events, trees, depth)
            pairs[name] = (Path(even).read_bytes(), Path(odd).read_bytes())
            print(f"models {name}: {info} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)

        def plain():
            processing.process_events(events, "ttbar", "nominal", 1.0, 42)

        for name, (even, odd) in pairs.items():
            fillers = {
                ev: inference.MLFiller(even, odd, evaluator=ev)
                for ev in args.evaluators.split(",")
            }
            for f in fillers.values():  # compile / load once, outside the timing
                f.scorers()
                processing.process_events(events, "ttbar", "nominal", 1.0, 42, fillers=(f,))
            alone = {ev: [] for ev in fillers}
            ratio = {ev: [] for ev in fillers}
            base = []
            for _ in range(args.rounds):
                for ev, f in fillers.items():
                    scorers = f.scorers()
                    alone[ev].append(cpu_time(
                        lambda s=scorers: inference.best_features(jets, lepton, numbers, *s)))
                    t_b = cpu_time(plain)
                    t_c = cpu_time(lambda f=f: processing.process_events(
                        events, "ttbar", "nominal", 1.0, 42, fillers=(f,)))
                    base.append(args.events / t_b)
                    ratio[ev].append(t_b / t_c)
            for ev in fillers:
                kind = fillers[ev].scorers()[0].evaluator
                print(f"{name:>9} {ev:>8} ({kind}): inference alone "
                      f"{min_median([n4 / t / 1e3 for t in alone[ev]])} k 4j2b events/CPU-s; "
                      f"stage + ML / stage = {min_median(ratio[ev])}")
            print(f"{name:>9}   no ML: stage {min_median([b / 1e6 for b in base])} M events/CPU-s")


if __name__ == "__main__":
    main()
