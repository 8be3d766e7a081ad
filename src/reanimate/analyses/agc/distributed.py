"""Chunking, submission to a Dask cluster, and the ordered merge of partial histograms.

The work is a list of (file, entry range) chunks in a fixed order (sample, file, chunk index).
Chunks run anywhere, in any order; their partial histograms are summed strictly in that fixed
order (a streaming prefix merge), so the floating-point result does not depend on scheduling,
worker count or submission order. A failing chunk cancels the rest and reports its file and
entry range.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from reanimate.analyses.agc.processing import ChunkTask, basket_starts, process_chunk
from reanimate.analyses.agc.samples import Sample, event_weight, verify_files
from reanimate.dask_cluster import dask_client, given_scheduler, parse_memory
from reanimate.datasets.reading import aligned_ranges
from reanimate.errors import ReanimateError

__all__ = ["ChunkTask", "Plan", "dask_client", "in_process", "parse_memory", "plan_chunks",
           "run_chunks", "run_chunks_here"]

@dataclass
class Plan:
    """The chunks in merge order, and N (entries processed) per (process, variation)."""

    tasks: list[ChunkTask] = field(default_factory=list)
    nevts: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def total_events(self) -> int:
        return sum(t.entry_stop - t.entry_start for t in self.tasks)


def plan_chunks(
    samples: Sequence[Sample], chunk_size: int, max_files: int | None, seed: int
) -> Plan:
    """The chunks of ``samples``, after checking every local file's sha256 (each file once).

    A chunk holds at most ``chunk_size`` entries and starts and ends where all the stage's
    branches start a basket, so no basket is decompressed twice (a basket larger than
    ``chunk_size`` is a chunk of its own)."""
    if chunk_size <= 0:
        raise ReanimateError(f"chunk size must be positive, got {chunk_size}")
    verify_files(samples, max_files)
    plan = Plan()
    for sample in samples:
        files = sample.files[:max_files] if max_files else sample.files
        entries, layouts = [], []
        for f in files:
            starts = basket_starts(f.path, f.sha256)  # a remote file with a digest: fetched here
            n = starts[-1]
            layouts.append(starts)
            if f.nevts is not None and f.nevts != n:
                raise ReanimateError(
                    f"{f.path}: the catalogue says {f.nevts} events, the file has {n} "
                    f"({sample.process}.{sample.variation})"
                )
            entries.append(n)
        nevts = sum(entries)
        plan.nevts[(sample.process, sample.variation)] = nevts
        weight = event_weight(sample, nevts)
        for f, starts in zip(files, layouts, strict=True):
            for start, stop in aligned_ranges(starts, chunk_size):
                plan.tasks.append(ChunkTask(sample.process, sample.variation, f.path, start,
                                            stop, weight, seed, f.sha256))
    return plan


def merge_into(total: dict[str, np.ndarray], part: dict[str, np.ndarray]) -> None:
    for name, arr in part.items():
        if name in total:
            total[name] += arr
        else:
            total[name] = np.array(arr, dtype=np.float64, copy=True)


@dataclass(frozen=True)
class ChunkFailure:
    """A user error raised by a chunk (an unreadable file...), returned as the task's value.

    Returning it rather than raising keeps Dask's worker from logging a "Compute Failed" block
    with a traceback on stderr: the stage reports the error in its one line. Other exceptions
    (bugs) still raise in the task, so Dask logs their traceback.
    """

    message: str


def guarded(function: Callable, task: ChunkTask):
    """Run ``function(task)`` on a worker; a ReanimateError comes back as a ChunkFailure."""
    try:
        return function(task)
    except ReanimateError as exc:
        return ChunkFailure(str(exc))


def run_chunks(
    client,
    tasks: Sequence[ChunkTask],
    function: Callable = process_chunk,
    progress: bool = True,
    submit_order: Sequence[int] | None = None,
) -> tuple[dict[str, np.ndarray], int]:
    """Run ``function`` on every task; merge results in task order. Returns (histograms, events)."""
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]  # unique keys on a shared scheduler; no effect on results
    order = range(len(tasks)) if submit_order is None else submit_order
    if sorted(order) != list(range(len(tasks))):
        raise ValueError("submit_order must be a permutation of the task indices")
    futures = {}
    for i in order:
        fut = client.submit(guarded, function, tasks[i], key=f"agc-chunk-{token}-{i}",
                            pure=False)
        futures[fut] = i
    total: dict[str, np.ndarray] = {}
    pending: dict[int, dict[str, np.ndarray]] = {}
    next_index, events = 0, 0
    with _Progress(len(tasks), enabled=progress) as bar:
        for fut in as_completed(list(futures)):
            i = futures[fut]
            result = fut.result() if fut.status == "finished" else None
            if result is None or isinstance(result, ChunkFailure):
                reason = result.message if isinstance(result, ChunkFailure) else _describe(fut)
                client.cancel(list(futures))
                t = tasks[i]
                raise ReanimateError(
                    f"chunk {i} failed: {t.path} entries [{t.entry_start}, {t.entry_stop}) "
                    f"({t.process}.{t.variation}): {reason}"
                )
            hists, n = result
            fut.release()
            events += n
            bar.advance(n)
            pending[i] = hists
            while next_index in pending:
                merge_into(total, pending.pop(next_index))
                next_index += 1
    return total, events


def run_chunks_here(
    tasks: Sequence[ChunkTask], function: Callable = process_chunk, progress: bool = True,
) -> tuple[dict[str, np.ndarray], int]:
    """:func:`run_chunks` without a cluster: the tasks one after the other in this process,
    merged in the same order, so the same bytes. For one local worker this saves the cluster's
    start-up (~2 s: a scheduler, a worker process, imports in it) at the price of no memory
    limit and no parallel decompression; the stage uses it when asked for one worker."""
    total: dict[str, np.ndarray] = {}
    events = 0
    with _Progress(len(tasks), enabled=progress) as bar:
        for i, task in enumerate(tasks):
            result = guarded(function, task)
            if isinstance(result, ChunkFailure):
                raise ReanimateError(
                    f"chunk {i} failed: {task.path} entries [{task.entry_start}, "
                    f"{task.entry_stop}) ({task.process}.{task.variation}): {result.message}")
            hists, n = result
            events += n
            bar.advance(n)
            merge_into(total, hists)
    return total, events


def in_process(workers: int, threads_per_worker: int, scheduler: str | None) -> bool:
    """One local worker of one thread, and no scheduler given: run the chunks right here."""
    return workers == 1 and threads_per_worker == 1 and not given_scheduler(scheduler)


def _describe(fut) -> str:
    """The exception of a failed (not finished) future, in one line."""
    if fut.status != "error":
        return f"the task was {fut.status}"
    exc = fut.exception()
    return f"{type(exc).__name__}: {exc}"


class _Progress:
    """Progress on stderr, one plain line at every tenth of the chunks (and at least every
    ``every_s`` seconds): chunks done / total and events/s. Plain lines, not a live bar: a step
    program's stderr is usually a log file, and a library stays free of terminal UI packages."""

    def __init__(self, total: int, enabled: bool = True, every_s: float = 10.0) -> None:
        self.total, self.enabled, self.every_s = total, enabled, every_s
        self.done, self.events = 0, 0
        self.start = self.last = time.perf_counter()
        self.step = max(1, total // 10)

    def __enter__(self):
        return self

    def _line(self, now: float) -> None:
        rate = self.events / max(now - self.start, 1e-9)
        print(f"histograms: {self.done}/{self.total} chunks, {rate:,.0f} events/s, "
              f"{now - self.start:.1f} s", file=sys.stderr, flush=True)
        self.last = now

    def advance(self, events: int) -> None:
        self.done += 1
        self.events += events
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.done == self.total or self.done % self.step == 0 or now - self.last >= self.every_s:
            self._line(now)

    def __exit__(self, *exc) -> None:
        return None
