"""The registry worker: leases queued campaign points and computes them on Dask.

`run_worker` keeps as many points in flight as the Dask cluster has worker threads (a
LocalCluster by default, an existing scheduler by address). Each point is leased in the database
(`registry/leases.py`) and its lease renewed by a heartbeat thread every third of its length;
a worker killed mid-point simply stops renewing, its lease expires and another worker (or the
restarted one) takes the point, which counts a second attempt. A point is stored once, only
while its lease is still this worker's.

Each campaign is materialised once per worker process, in its own folder
`WORK/campaign-ID/WORKER/`: the version's bundle (`bundle.crate.zip`, hard-linked from the blob
store), the uploaded files at their relative paths and the campaign file (`campaign.yaml`, its
analysis the bundle), planned with `reinterpret.campaign_run.plan_points` into `.run/`; claimed
points are matched to the plan by name; once the campaign is closed and the worker idle, the
folder is removed. An external Dask cluster must see WORK (a shared filesystem), as for
`reanimate campaign run`. SIGTERM (or SIGINT): stop claiming, give the leases of the points in
flight back (queued again) and return.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from reanimate.errors import ReanimateError

WAIT_S = 0.2  # how often finished futures are looked at while points are in flight


def _compute(point):
    """compute_point on a Dask worker; a user error comes back as a PointFailure value."""
    from reanimate.reinterpret.campaign_run import compute_point
    from reanimate.reinterpret.pool import PointFailure

    try:
        return compute_point(point)
    except ReanimateError as exc:
        return PointFailure(str(exc))


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "worker"


@dataclass
class Plan:
    """A campaign as this worker process planned it: its points by name, or why it cannot run."""

    points: dict = field(default_factory=dict)
    error: str = ""


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links refused: a copy
        shutil.copyfile(source, target)


def campaign_folder(settings, campaign_id: int, worker: str) -> Path:
    return settings.work / f"campaign-{campaign_id}" / _safe(worker)


def materialise(settings, campaign_id: int, worker: str) -> tuple[object, Path]:
    """The campaign's folder for this worker (made afresh) and its Campaign model."""
    from reanimate.atomic import write_text
    from reanimate.registry.blobs import BlobStore
    from reanimate.registry.campaigns import BUNDLE_FILE, CAMPAIGN_FILE, campaign_model
    from reanimate.registry.db import session
    from reanimate.registry.models import Campaign

    with session(settings.database_url) as s:
        row = s.get(Campaign, campaign_id)
        if row is None:
            raise ReanimateError(f"campaign {campaign_id} is not in the database")
        bundle_sha = row.version.bundle_sha256
        campaign_json = json.loads(row.campaign_json)
        files = json.loads(row.files_json or "{}")
    blobs = BlobStore(settings)
    folder = campaign_folder(settings, campaign_id, worker)
    if folder.exists():  # a previous process of this name: never trust a half-written folder
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for sha, target in [(bundle_sha, BUNDLE_FILE), *((v, k) for k, v in files.items())]:
        path = (folder / target).resolve()
        if not path.is_relative_to(folder.resolve()):
            raise ReanimateError(f"campaign {campaign_id}: file {target!r} leaves its folder")
        if not blobs.exists(sha):
            raise ReanimateError(f"campaign {campaign_id}: blob {sha} ({target}) is missing "
                                 f"from {settings.blobs}")
        _link(blobs.path(sha), path)
    campaign_json = {**campaign_json, "analysis": BUNDLE_FILE}
    write_text(folder / CAMPAIGN_FILE, json.dumps(campaign_json, indent=2) + "\n")
    return campaign_model(campaign_json, Path(BUNDLE_FILE)), folder


def plan_campaign(settings, campaign_id: int, worker: str) -> Plan:
    from reanimate.registry.campaigns import RUN_FOLDER
    from reanimate.reinterpret.campaign_run import plan_points

    try:
        campaign, folder = materialise(settings, campaign_id, worker)
        points = plan_points(campaign, folder, folder / RUN_FOLDER)
    except ReanimateError as exc:
        return Plan(error=" ".join(str(exc).split()))
    return Plan({p.name: p for p in points})


def _plot(settings) -> Callable:
    """The plot callback of `leases.close`: draw it, put it in the blob store."""
    def plot(campaign_json: dict, rows: list[dict]):
        import tempfile

        from reanimate.registry.blobs import BlobStore
        from reanimate.registry.campaigns import plot_kind, render_plot

        settings.tmp.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=settings.tmp) as tmp:
            kind = plot_kind(campaign_json, rows)
            made = render_plot(campaign_json, rows, Path(tmp) / "plot.png")
            return (BlobStore(settings).put_file(made), kind) if made else None
    return plot


class _Worker:
    def __init__(self, settings, client, name: str, lease: float, say: Callable) -> None:
        self.settings, self.client, self.name, self.lease, self.say = (
            settings, client, name, lease, say)
        self.plans: dict[int, Plan] = {}
        self.in_flight: dict[int, tuple] = {}  # point id -> (claim, future or None, digest)
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(("claimed", "done", "failed", "discarded", "released",
                                     "expired"), 0)

    # -- the heartbeat ---------------------------------------------------------------------

    def claims(self) -> list:
        with self.lock:
            return [entry[0] for entry in self.in_flight.values()]

    def heartbeat(self, stop: threading.Event) -> None:
        from reanimate.registry import leases

        while not stop.wait(self.lease / 3):
            try:
                for lost in leases.renew(self.settings, self.claims(), self.lease):
                    with self.lock:
                        if lost.point_id in self.in_flight:
                            self.say(f"{self.name}: lost the lease on campaign "
                                     f"{lost.campaign_id} point {lost.name}")
            except Exception as exc:  # the database away for a moment: try again next beat
                self.say(f"{self.name}: heartbeat failed: {type(exc).__name__}: {exc}")

    # -- claiming and dispatching --------------------------------------------------------------

    def capacity(self) -> int:
        return sum(self.client.nthreads().values())

    def claim(self) -> int:
        from reanimate.registry import leases

        for campaign_id in leases.expire(self.settings):
            self.counts["expired"] += 1
            self.close(campaign_id)
        free = self.capacity() - len(self.in_flight)
        claims = leases.claim(self.settings, self.name, free, self.lease)
        with self.lock:
            for c in claims:
                self.in_flight[c.point_id] = (c, None, None)
        self.counts["claimed"] += len(claims)
        for c in claims:
            self.dispatch(c)
        return len(claims)

    def dispatch(self, c) -> None:
        plan = self.plans.get(c.campaign_id)
        if plan is None:
            self.say(f"{self.name}: materialising campaign {c.campaign_id}")
            plan = self.plans[c.campaign_id] = plan_campaign(self.settings, c.campaign_id,
                                                             self.name)
        point = plan.points.get(c.name)
        if point is None:
            error = plan.error or (f"point {c.name} is not in the campaign's plan "
                                   f"({', '.join(plan.points)})")
            self.finished(c, None, error=error)
            return
        future = self.client.submit(_compute, point, pure=False,
                                    key=f"registry-{c.campaign_id}-{c.point_id}-{c.token[:8]}")
        with self.lock:
            self.in_flight[c.point_id] = (c, future, point.digest)

    def collect(self) -> int:
        from reanimate.reinterpret.pool import PointFailure

        with self.lock:
            ready = [e for e in self.in_flight.values() if e[1] is not None and e[1].done()]
        for c, future, digest in ready:
            try:
                result = future.result()
            except Exception as exc:  # a bug, or a Dask worker killed again and again
                result = PointFailure(f"{type(exc).__name__}: {exc}")
            future.release()
            if isinstance(result, PointFailure):
                self.finished(c, None, error=result.message, digest=digest)
            else:
                self.finished(c, result, digest=digest)
        return len(ready)

    def finished(self, c, record: dict | None, *, error: str | None = None,
                 digest: str | None = None) -> None:
        from reanimate.registry import leases

        stored = leases.finish(self.settings, c, self.name, record=record, error=error,
                               digest=digest)
        with self.lock:
            self.in_flight.pop(c.point_id, None)
        seconds = time.time() - c.started
        if not stored:
            self.counts["discarded"] += 1
            self.say(f"{self.name}: campaign {c.campaign_id} point {c.name}: discarded after "
                     f"{seconds:.1f} s (its lease was taken by another worker)")
            return
        outcome = "done" if record is not None else "failed"
        self.counts[outcome] += 1
        detail = f": {error}" if error else ""
        self.say(f"{self.name}: campaign {c.campaign_id} point {c.name}: {outcome} in "
                 f"{seconds:.1f} s (attempt {c.attempts}){detail}")
        self.close(c.campaign_id)

    def close(self, campaign_id: int) -> None:
        from reanimate.registry import leases

        try:
            status = leases.close(self.settings, campaign_id, _plot(self.settings))
        except ReanimateError as exc:  # no plot can be drawn: close it without one
            self.say(f"{self.name}: campaign {campaign_id}: no plot: {exc}")
            status = leases.close(self.settings, campaign_id, lambda *_: None)
        if status:
            self.say(f"{self.name}: campaign {campaign_id}: {status}")

    def forget_finished(self) -> None:
        """Drop the plans and folders of this worker's campaigns that are closed (idle only)."""
        from sqlalchemy import select

        from reanimate.registry.db import session
        from reanimate.registry.leases import FINAL
        from reanimate.registry.models import Campaign

        if not self.plans or self.in_flight:
            return
        with session(self.settings.database_url) as s:
            closed = s.scalars(select(Campaign.id).where(Campaign.id.in_(list(self.plans)),
                                                         Campaign.status.in_(FINAL))).all()
        for campaign_id in closed:
            self.plans.pop(campaign_id, None)
            shutil.rmtree(campaign_folder(self.settings, campaign_id, self.name),
                          ignore_errors=True)

    def release(self) -> None:
        from reanimate.registry import leases

        with self.lock:
            entries = list(self.in_flight.values())
            self.in_flight.clear()
        futures = [e[1] for e in entries if e[1] is not None]
        if futures:
            self.client.cancel(futures)
        released = leases.release(self.settings, [e[0] for e in entries])
        self.counts["released"] += released
        if released:
            self.say(f"{self.name}: gave back {released} point(s)")


@contextmanager
def _signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set `stop` (only the main thread can install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_worker(settings, *, scheduler: str | None = None, workers: int | None = None,
               lease_seconds: float | None = None, poll_seconds: float = 1.0,
               exit_when_idle: bool = False, name: str | None = None,
               say: Callable[[str], None] | None = None) -> dict:
    """Run campaign points until SIGTERM (or, with `exit_when_idle`, until no point is queued
    or running anywhere and none is in flight here); returns what it did, by count."""
    from reanimate.registry import leases
    from reanimate.registry.db import require_current
    from reanimate.reinterpret.pool import dask_client

    require_current(settings.database_url)
    lease = float(lease_seconds or settings.lease_seconds)
    if lease <= 0 or poll_seconds <= 0:
        raise ReanimateError("--lease and --poll must be positive")
    name = name or default_name()
    say = say or (lambda _line: None)
    stop, beat_stop = threading.Event(), threading.Event()
    with _signals(stop), dask_client(scheduler, workers) as client:
        worker = _Worker(settings, client, name, lease, say)
        beat = threading.Thread(target=worker.heartbeat, args=(beat_stop,), daemon=True,
                                name="registry-heartbeat")
        beat.start()
        say(f"{name}: taking points from {settings.database_url} with "
            f"{worker.capacity()} Dask worker thread(s), lease {lease:g} s")
        next_claim = 0.0
        try:
            while not stop.is_set():
                worker.collect()
                claimed = 0
                if time.monotonic() >= next_claim and len(worker.in_flight) < worker.capacity():
                    claimed = worker.claim()
                    if not claimed:
                        next_claim = time.monotonic() + poll_seconds
                if worker.in_flight or claimed:
                    stop.wait(WAIT_S)
                    continue
                for campaign_id in leases.unfinished(settings):
                    worker.close(campaign_id)
                worker.forget_finished()
                if exit_when_idle and not leases.open_points(settings):
                    break
                stop.wait(max(0.0, next_claim - time.monotonic()))
        finally:
            beat_stop.set()
            worker.release()
            beat.join(timeout=5)
    return {"name": name, **worker.counts}
