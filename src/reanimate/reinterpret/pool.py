"""One Dask cluster for many independent points, and their results as they finish.

Every user of many points (`reanimate limits` over a patchset, campaigns) goes through
:func:`dask_client` and :func:`map_unordered`, so there is one cluster per command, never one per
point. The address comes from the caller (`--scheduler`), else ``$DASK_SCHEDULER_URI`` (REANA's
convention), else a fresh LocalCluster of single-threaded worker processes.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from reanimate.errors import ReanimateError

SCHEDULER_ENV = "DASK_SCHEDULER_URI"
CONNECT_TIMEOUT_S = 30
WAIT_FOR_WORKERS_S = 120


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else (os.cpu_count() or 1))


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None,
                memory_per_worker: str | None = None) -> Iterator:
    """A distributed Client: on `scheduler`, else ``$DASK_SCHEDULER_URI``, else a LocalCluster
    of `workers` single-threaded processes (default: one per available core)."""
    from distributed import Client, LocalCluster

    address = scheduler or os.environ.get(SCHEDULER_ENV)
    if address:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise ReanimateError(f"cannot connect to the Dask scheduler {address}: {exc}") from None
        try:
            try:
                client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
            except TimeoutError:
                raise ReanimateError(f"the Dask scheduler {address} has no workers (waited "
                                     f"{WAIT_FOR_WORKERS_S} s)") from None
            yield client
        finally:
            client.close()
        return
    n = workers if workers is not None else default_workers()
    if n < 1:
        raise ReanimateError(f"--workers must be at least 1, got {n}")
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           memory_limit=memory_per_worker or 0, dashboard_address=":0",
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@dataclass(frozen=True)
class PointFailure:
    """A user error raised by a point, returned as its value (Dask logs no traceback)."""

    message: str


def _guarded(function: Callable, item):
    try:
        return function(item)
    except ReanimateError as exc:
        return PointFailure(str(exc))


def map_unordered(client, function: Callable, items: Iterable, *, prefix: str = "point",
                  ) -> Iterator[tuple[int, object]]:
    """``(index, function(item))`` for every item, in the order they finish.

    A :class:`~reanimate.errors.ReanimateError` inside a point comes back as a
    :class:`PointFailure` value rather than ending the whole map; any other exception (a bug,
    a killed worker after Dask's retries) is raised here.
    """
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]  # unique keys on a shared scheduler
    futures = {client.submit(_guarded, function, item, key=f"{prefix}-{token}-{i}", pure=False): i
               for i, item in enumerate(items)}
    try:
        for future in as_completed(list(futures)):
            index = futures[future]
            result = future.result()
            future.release()
            yield index, result
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
