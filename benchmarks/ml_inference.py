"""Throughput of the BDT jet–parton assignment inference (events/s, one core).

    .venv/bin/python benchmarks/ml_inference.py [--events 200000] [--train_events 20000]
        [--n_estimators 100] [--max_depth 5] [--repeat 3]
        [--model_even F --model_odd F]

Generates ``--events`` ttbar events (NanoAOD schema, in memory after one write/read), trains a
model pair on the first ``--train_events`` (or loads the given JSON models), then measures on
one core, events already in memory:

  * inference alone on the 4j2b events (nominal jets): permutation features, XGBoost scoring
    with the parity swap, best permutation — per 4j2b event, and split features / scoring;
  * the histogram stage's per-chunk work (every systematic, all histograms) without (b) and
    with (c) the ML filler (20 extra histograms per 4j2b variation), and the ratio c/b.

Prints figures; never asserts (the machine may be shared). Best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def best_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--train_events", type=int, default=20_000)
    p.add_argument("--n_estimators", type=int, default=100)
    p.add_argument("--max_depth", type=int, default=5)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--model_even", type=Path)
    p.add_argument("--model_odd", type=Path)
    args = p.parse_args(argv)

    import awkward as ak

    from reanimate.analyses.agc import objects, processing
    from reanimate.analyses.agc.ml import features as feat
    from reanimate.analyses.agc.ml import inference, stage
    from reanimate.analyses.agc.ml.selection import (
        INFERENCE_BRANCHES,
        region_4j2b,
        selected_lepton,
        selection_jets,
    )
    from reanimate.datasets.reading import read_events
    from reanimate.hashing import sha256_file

    with tempfile.TemporaryDirectory(prefix="reanimate-ml-bench-") as tmp:
        tmp = Path(tmp)
        path = tmp / "ttbar.root"
        t0 = time.perf_counter()
        generate(path, args.events)
        branches = list(dict.fromkeys(objects.BRANCHES + INFERENCE_BRANCHES))
        events = read_events(path, branches)
        print(
            f"input: {args.events:,} generated ttbar events "
            f"({time.perf_counter() - t0:.1f} s to generate and read)",
            file=sys.stderr,
        )

        if args.model_even and args.model_odd:
            model_paths = {"model_even": args.model_even, "model_odd": args.model_odd}
        else:
            t0 = time.perf_counter()
            even, odd, info = quick_models(
                path, tmp, args.train_events, args.n_estimators, args.max_depth
            )
            model_paths = {"model_even": even, "model_odd": odd}
            print(f"models: {info} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        filler = stage.filler(
            model_paths["model_even"],
            model_paths["model_odd"],
            sha256_even=sha256_file(model_paths["model_even"]),
            sha256_odd=sha256_file(model_paths["model_odd"]),
        )
        model_even, model_odd = filler.boosters()

        sel = region_4j2b(events)
        region = events[sel.event_mask]
        jets = selection_jets(sel, ak.to_numpy(ak.flatten(events.Jet_qgl, axis=1)))
        lepton = selected_lepton(region)
        numbers = ak.to_numpy(region.event)
        n4 = len(numbers)
        counts = np.minimum(jets.counts, 6)
        perms = sum(int((counts == k).sum()) * len(feat.permutations(k)) for k in (4, 5, 6))

        t_feat = best_time(lambda: list(feat.iter_groups(jets, lepton)), args.repeat)
        t_inf = best_time(
            lambda: inference.best_features(jets, lepton, numbers, model_even, model_odd),
            args.repeat,
        )
        print(
            f"4j2b events: {n4:,} of {args.events:,} ({perms / max(n4, 1):.1f} permutations "
            "per event on average)"
        )
        print(
            f"inference alone:  {n4 / t_inf:>12,.0f} 4j2b events/s  "
            f"({perms / t_inf:,.0f} permutations/s; features {t_feat / t_inf:.0%} of the time, "
            f"XGBoost scoring {1 - t_feat / t_inf:.0%})"
        )
        print(
            f"                  {args.events / t_inf:>12,.0f} input events/s equivalent "
            "(nominal jets only)"
        )

        def stage_b():
            processing.process_events(events, "ttbar", "nominal", 1.0, 42)

        def stage_c():
            processing.process_events(events, "ttbar", "nominal", 1.0, 42, fillers=(filler,))

        t_b = best_time(stage_b, args.repeat)
        t_c = best_time(stage_c, args.repeat)
        print(
            f"(b) stage, no ML: {args.events / t_b:>12,.0f} events/s per core "
            "(in memory, every systematic)"
        )
        print(
            f"(c) stage + ML:   {args.events / t_c:>12,.0f} events/s per core "
            f"(ML in 3 jet-pT variations of 4j2b)   c/b = {t_b / t_c:.2f}"
        )


if __name__ == "__main__":
    main()
