"""Step program: the AGC histogramming stage, distributed on Dask.

    python -m reanimate.steps.histograms --samples DIR --histograms OUT.root
        [--dump_json OUT.json] [--seed 42] [--chunk_size 100000] [--max_files_per_sample N]
        [--dask_workers N] [--dask_threads_per_worker T] [--dask_memory_per_worker 2Gi]
        [--scheduler ADDRESS] [--processes P1,P2] [--no_progress]

Reads DIR/catalogue.json, runs the selection with every systematic on (file, entry range)
chunks on a Dask LocalCluster (or the scheduler at --scheduler / $DASK_SCHEDULER_URI), merges
in a fixed order and writes the AGC histograms (ROOT, optionally JSON). Same inputs and seed,
same bytes, whatever the workers or the chunk order. User errors: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys
import time

from reanimate.errors import ReanimateError
from reanimate.steps._program import one_line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        self.exit(2, f"error: {self.prog}: {message}\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m reanimate.steps.histograms", description=__doc__.split("\n")[0])
    p.add_argument("--samples", required=True, help="catalogue directory (or catalogue JSON)")
    p.add_argument("--histograms", required=True, help="output ROOT file")
    p.add_argument("--dump_json", help="also write the AGC reference JSON here")
    p.add_argument("--seed", type=int, default=42, help="seed of the jet smearing")
    p.add_argument("--chunk_size", type=int, default=100_000, help="entries per chunk")
    p.add_argument("--max_files_per_sample", type=int, default=None)
    p.add_argument("--dask_workers", type=int, default=1)
    p.add_argument("--dask_threads_per_worker", type=int, default=1)
    p.add_argument("--dask_memory_per_worker", default="2Gi")
    p.add_argument("--scheduler", default=None, help="existing Dask scheduler address")
    p.add_argument("--processes", default=None, help="comma-separated processes to histogram")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    p.add_argument("--histograms_ml", help="output ROOT file of the 20 ML feature histograms")
    p.add_argument("--model_even", help="BDT trained on even events (XGBoost JSON)")
    p.add_argument("--model_odd", help="BDT trained on odd events (XGBoost JSON)")
    p.add_argument("--model_pin", help="pin JSON or the train step's metrics JSON (digests)")
    p.add_argument("--model_even_sha256", help="pinned sha256 of --model_even")
    p.add_argument("--model_odd_sha256", help="pinned sha256 of --model_odd")
    return p


def run(args: argparse.Namespace) -> dict:
    from reanimate.steps.agc import distributed, output, processing, samples

    if args.chunk_size <= 0:
        raise ReanimateError(f"--chunk_size must be positive, got {args.chunk_size}")
    if args.max_files_per_sample is not None and args.max_files_per_sample <= 0:
        raise ReanimateError("--max_files_per_sample must be positive")
    if not 0 <= args.seed < 2**64:
        raise ReanimateError(f"--seed must be in [0, 2^64), got {args.seed}")
    processes = [p for p in args.processes.split(",") if p] if args.processes else None
    sample_list = samples.load_samples(args.samples, processes)
    plan = distributed.plan_chunks(
        sample_list, args.chunk_size, args.max_files_per_sample, args.seed
    )
    function = processing.process_chunk
    if args.histograms_ml:
        from reanimate.ml import stage as ml_stage

        if not (args.model_even and args.model_odd):
            raise ReanimateError("--histograms_ml needs --model_even and --model_odd")
        function = ml_stage.chunk_function(ml_stage.filler(
            args.model_even, args.model_odd, pin=args.model_pin,
            sha256_even=args.model_even_sha256, sha256_odd=args.model_odd_sha256,
        ))
    start = time.perf_counter()
    with distributed.dask_client(
        args.dask_workers, args.dask_threads_per_worker, args.dask_memory_per_worker,
        args.scheduler,
    ) as client:
        hists, events = distributed.run_chunks(
            client, plan.tasks, function=function, progress=not args.no_progress
        )
    elapsed = time.perf_counter() - start
    if args.histograms_ml:
        hists, ml_hists = ml_stage.split(hists)
        ml_stage.write(args.histograms_ml, ml_hists)
    output.add_pseudodata(hists)
    output.write_root(args.histograms, hists)
    if args.dump_json:
        output.write_json(args.dump_json, hists)
    return {
        "histograms": len(output.ordered(hists)),
        "chunks": len(plan.tasks),
        "events": events,
        "seconds": round(elapsed, 3),
    }


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        summary = run(args)
    except ReanimateError as exc:
        print(one_line(exc), file=sys.stderr)
        return exc.exit_code
    print(
        f"{summary['histograms']} histograms from {summary['events']} events "
        f"({summary['chunks']} chunks) in {summary['seconds']} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
