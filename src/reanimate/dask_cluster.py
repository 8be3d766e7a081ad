"""One home for Dask clients and local clusters, shared by engines, reinterpretation and analyses.

The address of a scheduler comes from the caller, else ``$DASK_SCHEDULER_URI`` (REANA's
convention, which the local engine follows too: it starts one cluster per run and hands its
address to every ``dask:`` step), else a fresh LocalCluster is started for the caller alone.
dask and distributed are imported inside the functions (light start-up).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from reanimate.errors import ReanimateError

SCHEDULER_ENV = "DASK_SCHEDULER_URI"
CONNECT_TIMEOUT_S = 30
WAIT_FOR_WORKERS_S = 120
#: glibc malloc settings of our LocalClusters' workers. Dask's default (trim threshold 64 KiB)
#: returns every freed numpy temporary to the OS and page-faults it back on the next task:
#: +40 % CPU per chunk of the AGC stage. Large temporaries from the heap, free memory above
#: 128 MiB returned.
MALLOC = {"MALLOC_TRIM_THRESHOLD_": 128 * 2**20, "MALLOC_MMAP_THRESHOLD_": 32 * 2**20}


def default_workers() -> int:
    """One worker per core this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def given_scheduler(scheduler: str | None = None) -> str | None:
    """The scheduler to use: ``scheduler``, else ``$DASK_SCHEDULER_URI``, else None."""
    return scheduler or os.environ.get(SCHEDULER_ENV) or None


def parse_memory(memory: str | int | None) -> int | None:
    """'2Gi', '512MiB', '2GB' or bytes -> bytes (None: no limit)."""
    if memory in (None, "", "0", 0):
        return None
    from dask.utils import parse_bytes

    try:
        value = parse_bytes(memory)
    except (ValueError, TypeError):
        raise ReanimateError(f"invalid memory size {memory!r} (e.g. 2Gi, 512Mi)") from None
    if value <= 0:
        raise ReanimateError(f"invalid memory size {memory!r}: must be positive")
    return value


def start_local_cluster(workers: int | None = None, threads_per_worker: int = 1,
                        memory_per_worker: str | int | None = None, processes: bool = True):
    """A LocalCluster of ``workers`` (default: one per core) with our malloc settings; the caller
    closes it."""
    import dask
    from distributed import LocalCluster

    n = default_workers() if workers is None else workers
    if n < 1 or threads_per_worker < 1:
        raise ReanimateError(f"Dask workers and threads per worker must be at least 1, got "
                             f"{n} and {threads_per_worker}")
    memory = parse_memory(memory_per_worker) or 0
    environ = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in MALLOC.items()}
    with dask.config.set(environ):
        return LocalCluster(n_workers=n, threads_per_worker=threads_per_worker,
                            memory_limit=memory, processes=processes, dashboard_address=":0",
                            silence_logs=logging.ERROR)


def connect(address: str):
    """A Client on the scheduler at ``address``, once it has a worker."""
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise ReanimateError(f"cannot connect to the Dask scheduler {address}: {exc}") from None
    try:  # a scheduler without workers would make the caller wait forever
        client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
    except TimeoutError:
        client.close()
        raise ReanimateError(f"the Dask scheduler {address} has no workers (waited "
                             f"{WAIT_FOR_WORKERS_S} s)") from None
    return client


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None,
                threads_per_worker: int = 1, memory_per_worker: str | int | None = None,
                processes: bool = True) -> Iterator:
    """A Client on ``scheduler`` (or ``$DASK_SCHEDULER_URI``), else on a fresh LocalCluster of
    ``workers`` (default: one per core), closed on exit."""
    from distributed import Client

    address = given_scheduler(scheduler)
    if address:
        client = connect(address)
        try:
            yield client
        finally:
            client.close()
        return
    cluster = start_local_cluster(workers, threads_per_worker, memory_per_worker, processes)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
