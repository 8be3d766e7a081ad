"""Run a campaign: expand its points, skip those stored, run the rest on one Dask cluster.

:func:`plan_points` turns a campaign into :class:`Point` tasks keyed by content digest;
:func:`run_campaign` stores them (`store.py`), dispatches the ones not done through
`reinterpret.pool` (one cluster for the whole campaign) and commits each result as it arrives,
so a killed campaign resumes where it stopped and never completes a point twice. Workers report
when they start a point through a Dask event topic; the store counts those as attempts.

Two kinds of point: a patchset point patches the background workspace with one patch and runs
`statistics.limits.limit_record`; a signal point (recipe, files, histograms) calls
`reinterpret.signal_run.reinterpret_signal` on the analysis prepared once, before dispatch.
Workers read the workspace from its path (each worker process parses it once), so workers must
see the campaign's files: the same machine or a shared filesystem.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reanimate.errors import ReanimateError
from reanimate.reinterpret.campaign import Campaign, digest, expand, point_name
from reanimate.reinterpret.store import open_store

#: Bumped when what a point computes changes meaning (it is part of every point digest).
POINT_FORMAT = 1
EVENT_TOPIC = "reanimate-campaign"


@dataclass(frozen=True)
class Point:
    """One task, picklable: what a worker needs to compute the point, nothing more."""

    digest: str
    name: str
    labels: dict
    kind: str                   # "patch" | "signal"
    settings: Any               # statistics.limits.LimitSettings
    provenance: dict            # "analysis", "signal": stored with the record
    workspace: str = ""         # patch: the background workspace's path ...
    workspace_sha256: str = ""  # ... and the sha256 of its bytes
    patchset: dict = field(default_factory=dict)  # patch: a PatchSet holding this patch alone
    signal: str = ""            # signal: reinterpret_signal's SIGNAL argument
    prepared: Any = None        # signal: the PreparedAnalysis
    output: str = ""            # signal: the point's output folder ...
    workdir: str = ""           # ... and the engine's workdir, shared (its cache is content-keyed)
    topic: str = ""             # the Dask event topic for "started"

    def summary(self) -> dict:
        return {"digest": self.digest, "name": self.name, "labels": self.labels}


def limit_settings(campaign: Campaign, poi: str | None = None):
    from reanimate.statistics.limits import LimitSettings

    limits = campaign.limits
    return LimitSettings(poi=limits.poi or poi, cl=limits.cl, mu=limits.mu, toys=limits.toys,
                         seed=limits.seed)


def settings_payload(settings) -> dict:
    return {k: getattr(settings, k) for k in ("poi", "cl", "mu", "toys", "seed")}


# -- expansion -----------------------------------------------------------------------------------


def plan_points(campaign: Campaign, base: Path, output: Path, reporter=None) -> list[Point]:
    """The campaign's points in order, each with its content digest; the analysis is prepared
    (run or unpacked, once) for the signal routes. Two points with one digest: ReanimateError."""
    if campaign.signal.route == "patchset":
        points = _patch_points(campaign, base)
    else:
        points = _signal_points(campaign, base, output, reporter)
    seen: dict[str, str] = {}
    for point in points:
        if point.digest in seen:
            raise ReanimateError(f"points {seen[point.digest]} and {point.name} are the same "
                                 "computation (same analysis, signal and limit settings)")
        seen[point.digest] = point.name
    return points


def _resolve(base: Path, text: str, what: str) -> Path:
    path = (base / text).expanduser()
    if not path.exists():
        raise ReanimateError(f"{what} not found: {path}")
    return path.resolve()


def _patch_points(campaign: Campaign, base: Path) -> list[Point]:
    from reanimate.hashing import sha256_file
    from reanimate.statistics import jsonio

    if campaign.workspace is not None:
        workspace = _resolve(base, campaign.workspace, "workspace")
        analysis = {"kind": "workspace", "path": str(workspace)}
        poi = None
    else:
        prepared = _prepare(campaign, base, None, None)
        key = prepared.block.get("workspace", "")
        if key not in prepared.outputs:
            raise ReanimateError(f"{prepared.source}: the preserved workspace {key!r} is not "
                                 "among the analysis outputs")
        workspace = Path(prepared.outputs[key])
        analysis = {"kind": prepared.kind, "path": prepared.source, "name": prepared.name,
                    "version": prepared.version}
        poi = prepared.block.get("poi")
    workspace_sha = sha256_file(workspace)
    analysis["sha256"] = workspace_sha
    _check_schema(jsonio.read(workspace, "workspace"), workspace)
    if campaign.analysis is not None:
        analysis["digest"] = prepared.digest
    patchset_path = _resolve(base, campaign.signal.patchset, "patchset")
    patchset = jsonio.read(patchset_path, "patchset")
    settings = limit_settings(campaign, poi)
    topic = f"{EVENT_TOPIC}-{uuid.uuid4().hex[:8]}"
    points = []
    for name, labels, patch in selected_patches(patchset, patchset_path,
                                                campaign.signal.patches):
        signal = {"route": "patchset", "patchset": str(patchset_path), "patch": name,
                  "sha256": digest(patch["patch"])}
        key = digest({"format": POINT_FORMAT, "analysis": analysis.get("digest", workspace_sha),
                      "signal": signal["sha256"], "limits": settings_payload(settings)})
        single = {k: v for k, v in patchset.items() if k != "patches"} | {"patches": [patch]}
        points.append(Point(digest=key, name=name, labels=labels, kind="patch",
                            settings=settings, provenance={"analysis": analysis,
                                                           "signal": signal},
                            workspace=str(workspace), workspace_sha256=workspace_sha,
                            patchset=single, topic=topic))
    return points


def _check_schema(workspace: Any, path: Path) -> None:
    """pyhf's schema check of the base workspace, once here: each point then skips it (1.7 s
    a 1Lbb point). A background-only workspace need not build a model (its POI is a patch's)."""
    import pyhf

    try:
        pyhf.Workspace(workspace)
    except (pyhf.exceptions.InvalidSpecification, pyhf.exceptions.InvalidWorkspaceOperation,
            KeyError, TypeError, ValueError) as exc:
        raise ReanimateError(f"{path}: not a pyhf workspace: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                             ) from None


def selected_patches(patchset: Any, path: Path | str, wanted: list[str] | None
                     ) -> list[tuple[str, dict, dict]]:
    """(name, labels, patch) of the patches `wanted` (default: all), in the patchset's order
    (the `wanted` order when given); labels from the patchset's labels and the patch's values."""
    patches = _patches(patchset, Path(path))
    if wanted is not None:
        unknown = [n for n in wanted if n not in patches]
        if unknown:
            raise ReanimateError(f"{path}: no patch named {unknown[0]!r}")
        patches = {n: patches[n] for n in wanted}
    labels_of = list(patchset["metadata"].get("labels", []))
    return [(name, dict(zip(labels_of, patch["metadata"].get("values", []), strict=False))
             or {"patch": name}, patch) for name, patch in patches.items()]


def _patches(patchset: Any, path: Path) -> dict[str, dict]:
    """name -> patch, with the shape checked just enough to expand (limits checks the rest)."""
    if not isinstance(patchset, dict) or not isinstance(patchset.get("patches"), list) \
            or not isinstance(patchset.get("metadata"), dict):
        raise ReanimateError(f"{path}: not a pyhf PatchSet (expected metadata and patches)")
    out = {}
    for index, patch in enumerate(patchset["patches"]):
        name = patch.get("metadata", {}).get("name") if isinstance(patch, dict) else None
        if not isinstance(name, str) or not isinstance(patch.get("patch"), list):
            raise ReanimateError(f"{path}: patches[{index}] has no metadata.name or patch list")
        if name in out:
            raise ReanimateError(f"{path}: two patches named {name!r}")
        out[name] = patch
    if not out:
        raise ReanimateError(f"{path}: the patchset has no patches")
    return out


def _prepare(campaign: Campaign, base: Path, output: Path | None, reporter):
    from reanimate.reinterpret.analysis import prepare_analysis

    source = _resolve(base, campaign.analysis, "analysis")
    workdir = (output or base) / "analysis"
    return prepare_analysis(source, workdir, reporter=reporter)


def _signal_points(campaign: Campaign, base: Path, output: Path, reporter) -> list[Point]:
    prepared = _prepare(campaign, base, output, reporter)
    analysis = {"kind": prepared.kind, "path": prepared.source, "digest": prepared.digest,
                "name": prepared.name, "version": prepared.version}
    settings = limit_settings(campaign, prepared.block.get("poi"))
    route = campaign.signal.route
    topic = f"{EVENT_TOPIC}-{uuid.uuid4().hex[:8]}"
    points = []
    for labels in campaign.grid.labels():
        text = expand(campaign.signal.pattern, labels)
        if route == "recipe":
            signal = {"route": route, "recipe": text, "sha256": digest(text)}
            argument = text
        else:
            argument, signal = _signal_files(base, text, route)
        key = digest({"format": POINT_FORMAT, "analysis": prepared.digest,
                      "signal": signal["sha256"], "limits": settings_payload(settings)})
        name = point_name(labels)
        points.append(Point(digest=key, name=name, labels=labels, kind="signal",
                            settings=settings, provenance={"analysis": analysis,
                                                           "signal": signal},
                            signal=argument, prepared=prepared,
                            output=str(output / "points" / key[:16]),
                            workdir=str(output / "work"), topic=topic))
    return points


def _signal_files(base: Path, text: str, route: str) -> tuple[str, dict]:
    """reinterpret_signal's argument for a file pattern's expansion, and the signal's digest
    (of the files' bytes: a catalogue folder by its tree; `file@xsec_pb=X` keeps its suffix)."""
    from reanimate.hashing import sha256_path

    path_text, at, suffix = text.partition("@")
    paths = [_resolve(base, p, f"signal.{route}") for p in path_text.split(",") if p]
    digests = [sha256_path(p) for p in paths]
    argument = ",".join(map(str, paths)) + (at + suffix)
    if route == "histograms":
        argument = f"histograms:{argument}"
    signal = {"route": route, "files": [str(p) for p in paths], "suffix": suffix,
              "sha256": digest({"files": digests, "suffix": suffix, "route": route})}
    return argument, signal


# -- on a worker ---------------------------------------------------------------------------------


def _announce(point: Point) -> None:
    """Tell the client this worker started the point (outside Dask: nothing to tell)."""
    try:
        from distributed import get_worker

        get_worker().log_event(point.topic, {"digest": point.digest, "time": time.time()})
    except (ImportError, ValueError):
        pass


@functools.lru_cache(maxsize=4)
def _workspace(path: str, sha256: str) -> dict:
    """The background workspace, read and checked once per worker process."""
    from reanimate.hashing import sha256_file
    from reanimate.statistics import jsonio

    if sha256_file(path) != sha256:
        raise ReanimateError(f"{path} changed while the campaign ran (sha256 differs)")
    return jsonio.read(path, "workspace")


def compute_point(point: Point) -> dict:
    """The point's record: the limit record + provenance + timing (seconds per stage)."""
    _announce(point)
    start = time.perf_counter()
    if point.kind == "patch":
        from reanimate.statistics.limits import limit_record, load_patchset

        workspace = copy.deepcopy(_workspace(point.workspace, point.workspace_sha256))
        loaded = time.perf_counter()
        [(name, labels, patched)] = load_patchset(workspace, point.patchset, [point.name],
                                                  where=point.provenance["signal"]["patchset"])
        patched_at = time.perf_counter()
        record = limit_record(patched, name=name, labels=labels or point.labels,
                              settings=point.settings, validate=False)
        timing = {"loading": loaded - start, "patching": patched_at - loaded,
                  "limits": time.perf_counter() - patched_at}
    else:
        from reanimate.reinterpret.patchset import safe_name
        from reanimate.reinterpret.signal_run import reinterpret_signal

        output = Path(point.output)
        if output.exists():  # a point interrupted half-way: start it afresh
            shutil.rmtree(output)
        record = reinterpret_signal(point.prepared, point.signal, output=output,
                                    name=safe_name(point.name), settings=point.settings,
                                    workdir=Path(point.workdir), plots=False)
        record = dict(record)
        record["labels"] = point.labels
        timing = _signal_timing(record)
        timing["limits"] = float(record.get("seconds") or 0.0)
    record = dict(record)
    record.setdefault("analysis", point.provenance["analysis"])
    record["point"] = {"digest": point.digest, **point.provenance}
    timing["total"] = time.perf_counter() - start
    record["timing"] = {k: round(v, 4) for k, v in timing.items()}
    return record


def _signal_timing(record: dict) -> dict:
    """Seconds of each signal step the derived run executed (its provenance: start, end)."""
    from datetime import datetime

    timing: dict[str, float] = {}
    path = (record.get("run") or {}).get("provenance")
    try:
        steps = json.loads(Path(path).read_text()).get("steps", []) if path else []
    except (OSError, ValueError, AttributeError):
        steps = []
    for step in steps:
        if step.get("status") == "executed" and step.get("start") and step.get("end"):
            seconds = (datetime.fromisoformat(step["end"])
                       - datetime.fromisoformat(step["start"])).total_seconds()
            timing[step["name"]] = timing.get(step["name"], 0.0) + seconds
    return timing


# -- the client ----------------------------------------------------------------------------------


Progress = Callable[[int, int, dict | None], None]


def run_campaign(campaign: Campaign, campaign_file: Path, output: Path, *,
                 scheduler: str | None = None, workers: int | None = None,
                 retry_failed: bool = False, progress: Progress | None = None,
                 reporter=None) -> dict[str, int]:
    """Run every point not yet stored in `output`; returns the store's counts by status."""
    from filelock import FileLock, Timeout

    from reanimate.hashing import sha256_file
    from reanimate.reinterpret.pool import PointFailure, dask_client, map_unordered

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(output / "campaign.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ReanimateError(f"another `reanimate campaign run` is using {output}") from None
    try:
        points = plan_points(campaign, campaign_file.parent, output.resolve(), reporter)
        with open_store(output, create=True) as store:
            known = store.meta().get("name")
            if known not in (None, campaign.name):
                raise ReanimateError(f"{output} holds campaign {known!r}, not {campaign.name!r}; "
                                     "use another output folder")
            store.set_meta(name=campaign.name, file=str(campaign_file),
                           sha256=sha256_file(campaign_file),
                           campaign=campaign.model_dump(mode="json"),
                           points=[p.digest for p in points])
            store.add_points([p.summary() for p in points])
            status = {p["digest"]: p["status"] for p in store.current()}
            todo = [p for p in points if status[p.digest] == "pending"
                    or (retry_failed and status[p.digest] == "failed")]
            done = len(points) - len(todo)
            if progress:
                progress(done, len(points), None)
            if not todo:
                return store.counts()
            store.log("run", f"{len(todo)} to compute")
            with dask_client(scheduler, workers) as client:
                def started(event) -> None:
                    message = event[1] if isinstance(event, tuple) else event
                    if isinstance(message, dict) and "digest" in message:
                        store.started(message["digest"], message.get("time"))

                client.subscribe_topic(todo[0].topic, started)
                try:
                    for index, result in map_unordered(client, compute_point, todo,
                                                       prefix=f"campaign-{campaign.name}"):
                        point = todo[index]
                        if isinstance(result, PointFailure):
                            store.failed(point.digest, result.message)
                        else:
                            store.completed(point.digest, result)
                        done += 1
                        if progress:
                            progress(done, len(points), point.summary())
                finally:
                    client.unsubscribe_topic(todo[0].topic)
            store.log("end", None)
            return store.counts()
    finally:
        lock.release()
