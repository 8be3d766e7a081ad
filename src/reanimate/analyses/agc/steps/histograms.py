"""Step program: the AGC histogramming stage, distributed on Dask.

    python -m reanimate.analyses.agc.steps.histograms --samples DIR --histograms OUT.root
        [--histograms_ml OUT_ML.root --model_even M.json --model_odd M.json [--model_pin PIN]]
        [--dump_json OUT.json] [--seed 42] [--chunk_size 100000] [--max_files_per_sample N]
        [--dask_workers 2] [--dask_threads_per_worker 1] [--dask_memory_per_worker 2Gi]
        [--scheduler ADDRESS] [--processes P1,P2] [--no_progress true]

Reads DIR/catalogue.json (refusing non-finite numbers, empty catalogues, unknown variations and
any local file whose sha256 differs from the catalogue's, before any event is read), runs the
selection with every systematic on (file, entry range) chunks on a Dask LocalCluster (or the
scheduler at --scheduler / $DASK_SCHEDULER_URI; with one worker of one thread and no scheduler,
in this process), merges in a fixed order and writes the AGC
histograms (ROOT, optionally JSON). Same inputs and seed, same bytes, whatever the workers or
the chunk order. User errors, a corrupt file's included: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys
import time

from reanimate.errors import ReanimateError
from reanimate.steps.interface import Flag, Interface, program_main

INTERFACE = Interface(
    prog="python -m reanimate.analyses.agc.steps.histograms",
    description=__doc__.split("\n")[0],
    flags=(
        Flag("samples", "directory", "input", help="catalogue directory (or catalogue JSON)"),
        Flag("model_even", "file", "input", default=None,
             help="BDT trained on even events (XGBoost JSON); with --histograms_ml"),
        Flag("model_odd", "file", "input", default=None,
             help="BDT trained on odd events (XGBoost JSON); with --histograms_ml"),
        Flag("model_pin", "file", "input", default=None,
             help="pin JSON or the train step's metrics JSON (digests of the models)"),
        Flag("seed", "int", "parameter", default=42, help="seed of the jet smearing"),
        Flag("chunk_size", "int", "parameter", default=100_000, help="entries per chunk"),
        Flag("max_files_per_sample", "int", "parameter", default=None,
             help="read at most this many files per sample"),
        Flag("processes", "str", "parameter", default=None,
             help="comma-separated processes to histogram (default: all)"),
        Flag("scheduler", "str", "parameter", default=None,
             help="existing Dask scheduler address (default: $DASK_SCHEDULER_URI, else a "
                  "LocalCluster)"),
        Flag("model_even_sha256", "str", "parameter", default=None,
             help="pinned sha256 of --model_even"),
        Flag("model_odd_sha256", "str", "parameter", default=None,
             help="pinned sha256 of --model_odd"),
        Flag("no_progress", "bool", "parameter", default=False, help="no progress lines on stderr"),
        Flag("histograms", "file", "output", help="the AGC histograms (ROOT)"),
        Flag("histograms_ml", "file", "output", default=None,
             help="the 20 ML feature histograms (ROOT); needs --model_even and --model_odd"),
        Flag("dump_json", "file", "output", default=None,
             help="also write the histograms as the AGC reference JSON"),
        Flag("dask_workers", "int", "engine", default=2, help="Dask workers (dask: workers)"),
        Flag("dask_threads_per_worker", "int", "engine", default=1,
             help="threads per Dask worker (dask: threads_per_worker)"),
        Flag("dask_memory_per_worker", "str", "engine", default="2Gi",
             help="memory limit per Dask worker (dask: memory_per_worker)"),
    ),
)


def histogram(args: argparse.Namespace) -> dict:
    """Run the stage; its summary as a dict (histograms, chunks, events, seconds)."""
    from reanimate.analyses.agc import distributed, output, processing, samples

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
        from reanimate.analyses.agc.ml import stage as ml_stage

        if not (args.model_even and args.model_odd):
            raise ReanimateError("--histograms_ml needs --model_even and --model_odd")
        function = ml_stage.chunk_function(ml_stage.filler(
            args.model_even, args.model_odd, pin=args.model_pin,
            sha256_even=args.model_even_sha256, sha256_odd=args.model_odd_sha256,
        ))
    start = time.perf_counter()
    if distributed.in_process(args.dask_workers, args.dask_threads_per_worker, args.scheduler):
        hists, events = distributed.run_chunks_here(
            plan.tasks, function=function, progress=not args.no_progress)
    else:
        with distributed.dask_client(
            args.scheduler, args.dask_workers, args.dask_threads_per_worker,
            args.dask_memory_per_worker,
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


def run(args: argparse.Namespace) -> str:
    summary = histogram(args)
    return (
        f"{summary['histograms']} histograms from {summary['events']} events "
        f"({summary['chunks']} chunks) in {summary['seconds']} s"
    )


def main(argv: list[str] | None = None) -> int:
    return program_main(INTERFACE, run, argv)


if __name__ == "__main__":
    sys.exit(program_main(INTERFACE, run))
