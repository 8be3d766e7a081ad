"""One Dask cluster per local run, handed to every ``dask:`` step through $DASK_SCHEDULER_URI.

Without it each distributed step starts (and tears down) a LocalCluster of its own: a scheduler,
worker processes and their imports, ~2-3 s a step. The run starts one, in the background, as
soon as a step that leads to a distributed step begins to execute (so its start-up overlaps the
upstream work), sized for the largest ``dask:`` block, and closes it when the run ends. Steps
read the address from ``$DASK_SCHEDULER_URI``, REANA's convention, so a program is the same on
every engine; run on its own, a program still starts its own cluster.

No cluster is started when the user gave one (``reanimate run --scheduler`` or
``$DASK_SCHEDULER_URI``: the steps get that address), when the steps run inside their images
(their workers must run the image's code), or for a step whose block asks for one worker of one
thread: such a step runs its tasks in its own process, without a cluster (docs/engines.md shows
the trade-off).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from reanimate.dask_cluster import SCHEDULER_ENV, given_scheduler, parse_memory


def wants_cluster(block) -> bool:
    """A dask: block that asks for more than one worker thread."""
    return block is not None and block.workers * block.threads_per_worker > 1


class RunCluster:
    """The cluster of one run: started at most once, on first need, closed by :meth:`close`."""

    def __init__(self, blocks: Mapping[str, object], deps: Mapping[str, Iterable[str]],
                 scheduler: str | None = None, enabled: bool = True) -> None:
        self.given = given_scheduler(scheduler)
        self.steps = {n for n, b in blocks.items() if b is not None} if self.given else \
            {n for n, b in blocks.items() if wants_cluster(b)}
        if not enabled and not self.given:
            self.steps = set()
        self.blocks = {n: blocks[n] for n in self.steps}
        self.leading = self._ancestors(deps)  # steps whose execution means a cluster is needed
        self._lock = threading.Lock()
        self._started: threading.Thread | None = None
        self._cluster = None
        self._error: BaseException | None = None

    def _ancestors(self, deps: Mapping[str, Iterable[str]]) -> set[str]:
        found, todo = set(), list(self.steps)
        while todo:
            name = todo.pop()
            if name not in found:
                found.add(name)
                todo.extend(deps.get(name, ()))
        return found

    def warm(self, step: str) -> None:
        """``step`` is about to execute: start the cluster in the background if it leads to a
        distributed step (nothing to start when the user gave a scheduler)."""
        if self.given or step not in self.leading:
            return
        with self._lock:
            if self._started is None:
                self._started = threading.Thread(target=self._start, name="run-cluster",
                                                 daemon=True)
                self._started.start()

    def _start(self) -> None:
        from reanimate.dask_cluster import start_local_cluster

        blocks = self.blocks.values()
        memory = max((parse_memory(b.memory_per_worker) or 0 for b in blocks), default=0)
        try:
            self._cluster = start_local_cluster(
                max(b.workers for b in blocks), max(b.threads_per_worker for b in blocks),
                memory or None)
        except BaseException as exc:  # reported to the step that needs the address
            self._error = exc

    def environment(self, step: str) -> dict[str, str]:
        """What to add to ``step``'s environment: the scheduler address, for a distributed step."""
        if step not in self.steps:
            return {}
        if self.given:
            return {SCHEDULER_ENV: self.given}
        self.warm(step)
        self._started.join()
        if self._error is not None:
            from reanimate.errors import ReanimateError

            raise ReanimateError(f"cannot start the run's Dask cluster: {self._error}")
        return {SCHEDULER_ENV: self._cluster.scheduler_address}

    def record(self) -> dict | None:
        """For the provenance: the scheduler the run's steps used, and who started it."""
        if self.given:
            return {"scheduler": self.given, "started_by_run": False,
                    "steps": sorted(self.steps)}
        if self._cluster is None:
            return None
        workers = self._cluster.scheduler_info.get("workers", {})
        return {"scheduler": self._cluster.scheduler_address, "started_by_run": True,
                "workers": len(workers),
                "threads_per_worker": max((w["nthreads"] for w in workers.values()), default=0),
                "steps": sorted(self.steps)}

    def close(self) -> None:
        started = self._started
        if started is not None:
            started.join()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
