"""One Dask cluster for many independent points, and their results as they finish.

Every user of many points (`reanimate limits` over a patchset, campaigns) goes through
:func:`~reanimate.dask_cluster.dask_client` and :func:`map_unordered`, so there is one cluster per
command, never one per point. The address comes from the caller (`--scheduler`), else
``$DASK_SCHEDULER_URI`` (REANA's convention, and the local engine's for the steps of a run), else a
fresh LocalCluster of single-threaded worker processes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from reanimate.dask_cluster import dask_client, default_workers
from reanimate.errors import ReanimateError

__all__ = ["PointFailure", "dask_client", "default_workers", "map_unordered"]


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
