"""Events generated per second per core, with and without writing ROOT files.

    python benchmarks/generate.py [--events N] [--compression zlib|lzma] [--repeat R]

Runs in one process (one core): "generate" times the physics alone (truth, detector, GenPart
columns); "generate + write" times ``reanimate.analyses.agc.generate.generate`` end to end (files,
sha256, catalogue) with the default compression. Prints the best of R repeats, as wall-clock
and CPU (process) time; numpy runs single-threaded here, so CPU time is time on one core.
Goal ≥ 100k events/s/core for generation.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from reanimate.analyses.agc.generate import (
    DEFAULT_EVENTS,
    DEFAULT_SIGNAL_MASSES,
    generate,
    generate_columns,
    plan_samples,
    split,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--compression", default="zlib")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    samples = plan_samples(args.events, DEFAULT_SIGNAL_MASSES)
    total = sum(s.nevts for s in samples)

    def physics() -> None:
        for s in samples:
            for n in split(s.nevts, 20_000):
                generate_columns(s, n, np.random.Generator(np.random.Philox(1)))

    def end_to_end() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            generate(tmp, events=args.events, compression=args.compression)

    print(f"{total:,} events ({len(samples)} samples, --events {args.events}), one core")
    for label, fn in (
        ("generate", physics),
        (f"generate + write ({args.compression})", end_to_end),
    ):
        wall, cpu = min(_timed(fn) for _ in range(args.repeat))
        print(
            f"{label:28s} wall {wall:5.2f} s {total / wall / 1e3:7.1f} k/s   "
            f"cpu {cpu:5.2f} s {total / cpu / 1e3:7.1f} k events/s/core"
        )


def _timed(fn) -> tuple[float, float]:
    """(wall, CPU) seconds; the CPU figure is robust on a machine shared with other work."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


if __name__ == "__main__":
    main()
