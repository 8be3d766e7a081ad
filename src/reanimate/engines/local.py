"""The local engine: each step a process, in dependency order, cached by content.

Independent steps run concurrently (up to --jobs). A failing step stops its dependants; what
completed stays in the cache. Every run writes a provenance record.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from reanimate.engines.cache import StepCache
from reanimate.engines.container import ContainerSteps, check_mode
from reanimate.engines.guard import InputGuard
from reanimate.engines.plan import (
    Plan,
    PlanStep,
    cache_key,
    make_plan,
)
from reanimate.engines.process import StepProcess
from reanimate.engines.provenance import environment, new_run_dir, now, write_provenance
from reanimate.engines.records import (
    Interrupted,
    RunReport,
    StepError,
    StepRecord,
    interrupts_raised,
    mark_cached,
    report_summary,
)
from reanimate.engines.report import Reporter
from reanimate.engines.run_cluster import RunCluster
from reanimate.errors import ReanimateError
from reanimate.hashing import HashMemo, sha256_file
from reanimate.lock import verified_pin_outputs
from reanimate.spec.loader import LoadedSpec

STDERR_TAIL = 20
FACTS_FILE = ".reanimate-step-facts.json"  # in the scratch folder, never a declared output


def _read_facts(path: Path) -> dict | None:
    """The facts a step wrote to $REANIMATE_STEP_FACTS (a JSON object), else None."""
    import json

    try:
        facts = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return facts if isinstance(facts, dict) else None


class LocalRun:
    def __init__(self, plan: Plan, workdir: Path, jobs: int, force: bool,
                 reporter: Reporter, containers: ContainerSteps | None = None,
                 scheduler: str | None = None) -> None:
        self.plan = plan
        self.containers = containers  # --containers docker: each step inside its image
        self.workdir = workdir.resolve()
        self.jobs = jobs
        self.force = force
        self.reporter = reporter
        self.deps = plan.deps
        self.order = plan.order
        self.cache = StepCache(self.workdir)
        self.memo = HashMemo(self.workdir / "hashes.json")
        self.records = {name: StepRecord(name) for name in self.order}
        self.guard = InputGuard(plan, self.memo, self.cache)
        self.live: dict[str, StepProcess] = {}  # running steps, for interrupts
        self.stopping = False
        self.produced_keys: dict[str, str] = {}  # step -> cache key of its adopted outputs
        self.produced: dict[str, dict[str, tuple[Path, str]]] = {}  # step -> out -> (path, sha)
        self.payloads: dict[str, dict] = {}
        # one Dask cluster for the run's dask: steps (not for steps inside their images)
        self.cluster = RunCluster({n: plan.steps[n].step.dask for n in plan.order}, plan.deps,
                                  scheduler, enabled=containers is None)

    def verify_external_inputs(self, steps: set[str]) -> None:
        """Hash every dataset file and file: input the steps read; refuse lock mismatches."""
        self.guard.verify(steps)

    def resolve_inputs(self, name: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """(paths, digests) per input name."""
        paths: dict[str, list[str]] = {}
        digests: dict[str, list[str]] = {}
        for input_name, items in self.plan.steps[name].inputs.items():
            paths[input_name], digests[input_name] = [], []
            for item in items:
                if item.external is not None:
                    key = item.external.key
                    path = str(item.external.path) if item.external.path else key
                    digest = self.guard.digests.get(key) or f"remote:{key}"
                else:
                    producer = item.producer
                    if producer.output not in self.produced[producer.step]:
                        pin = self.plan.steps[producer.step].pin or {}
                        raise ReanimateError(
                            f"step {producer.step!r} is pinned to {pin.get('name')} version "
                            f"{pin.get('version')}, whose files do not include its output "
                            f"{producer.output!r}"
                        )
                    found, digest = self.produced[producer.step][producer.output]
                    path = str(found)
                paths[input_name].append(path)
                digests[input_name].append(digest)
        return paths, digests

    # -- execution ------------------------------------------------------------------------
    def prepare(self, name: str) -> tuple[str, dict, dict[str, list[str]]]:
        paths, digests = self.resolve_inputs(name)
        planned = self.plan.steps[name]
        record = self.records[name]
        record.parameters = planned.parameters
        record.inputs = {
            k: [{"path": p, "sha256": d} for p, d in zip(paths[k], digests[k], strict=True)]
            for k in paths
        }
        image = None
        if self.containers is not None:
            record.image = self.containers.image(name)
            image = self.containers.image_id(name)
        payload = planned.key_payload(digests, image)
        self.payloads[name] = payload
        return cache_key(payload), planned.parameters, paths

    def adopt(self, name: str, key: str, meta: dict) -> None:
        entry = self.cache.entry_dir(name, key)
        self.produced[name] = {
            out: (entry / info["path"], info["sha256"]) for out, info in meta["outputs"].items()
        }
        record = self.records[name]
        record.key = key
        self.produced_keys[name] = key
        record.outputs = {out: {"path": str(p), "sha256": d}
                          for out, (p, d) in self.produced[name].items()}
        self._link_result(name, entry)

    def adopt_pin(self, name: str) -> None:
        pin = self.plan.steps[name].pin
        self.produced[name] = verified_pin_outputs(self.plan.base_dir, name, pin, self.memo)
        record = self.records[name]
        record.status = "pinned"
        record.message = f"{pin.get('name')} version {pin.get('version')}"
        record.outputs = {out: {"path": str(p), "sha256": d}
                          for out, (p, d) in self.produced[name].items()}

    def _link_result(self, name: str, entry: Path) -> None:
        results = self.workdir / "results"
        results.mkdir(parents=True, exist_ok=True)
        tmp = results / f".{name}-{uuid.uuid4().hex[:8]}"
        tmp.symlink_to(os.path.relpath(entry, results))
        os.replace(tmp, results / name)

    def execute(self, name: str, key: str, paths: dict, run_dir: Path,
                forced: bool) -> tuple[dict, str]:
        """Produce (step, key) in a worker thread: (cache meta, "executed" or "cached").

        One run at a time produces a key (the cache's key lock); a run that waited for another
        finds the entry made and adopts it.
        """
        with self.cache.key_lock(name, key):
            meta = None if forced else self.cache.lookup(name, key, self.plan.steps[name].outputs)
            if meta is not None:
                return meta, "cached"
            return self._run_step(name, key, paths, run_dir), "executed"

    def _run_step(self, name: str, key: str, paths: dict, run_dir: Path) -> dict:
        planned = self.plan.steps[name]
        step = planned.step
        record = self.records[name]
        scratch = self.workdir / "tmp" / f"{name}-{uuid.uuid4().hex[:8]}"
        scratch.mkdir(parents=True)
        try:
            outputs = {out: str(scratch / rel) for out, rel in step.outputs.items()}
            for path in outputs.values():
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            python = sys.executable if self.containers is None else "python"  # the image's
            record.command = local_argv(planned, paths, outputs, python)
            stdout_path = run_dir / "logs" / f"{name}.stdout"
            stderr_path = run_dir / "logs" / f"{name}.stderr"
            record.logs = {"stdout": str(stdout_path), "stderr": str(stderr_path)}
            # a step may write facts of this run (identifiers, not outputs) for the provenance
            facts_path = scratch / FACTS_FILE
            env = dict(os.environ, PYTHONHASHSEED="0", REANIMATE_STEP=name,
                       REANIMATE_STEP_FACTS=str(facts_path))
            try:
                env.update(self.cluster.environment(name))
            except ReanimateError as exc:
                raise StepError(name, str(exc), []) from None
            timeout = step.resources.timeout_seconds if step.resources else None
            changed = self.guard.changed(name, self.produced_keys)
            if changed:
                raise StepError(name, f"input {changed} changed since the run began; "
                                "refusing to run on other bytes than were hashed", [])
            record.start = now()
            request = None
            if self.containers is not None:
                request = self.containers.request(name, record.command, paths, scratch,
                                                  timeout)
            try:
                self._run_command(name, record, scratch, stdout_path, stderr_path, env, timeout,
                                  request)
            finally:
                if request is not None:
                    self.containers.release(request)
            record.end = now()
            record.facts = _read_facts(facts_path)
            if record.exit_code == 0:
                missing = [o for o, p in outputs.items() if not Path(p).exists()]
                if missing:
                    record.exit_code = -1
                    record.message = f"exited 0 but did not write output(s): {', '.join(missing)}"
            if record.exit_code == 0:
                changed = self.guard.changed(name, self.produced_keys)
                if changed:
                    record.exit_code = -1
                    record.message = (f"input {changed} changed while the step ran; its result "
                                      "is not cached (rerun when the input is stable)")
            if record.exit_code != 0:
                tail = stderr_path.read_text(errors="replace").splitlines()[-STDERR_TAIL:]
                detail = record.message or f"exit code {record.exit_code}"
                raise StepError(name, detail, tail)
            try:
                return self.cache.store(name, key, scratch, step.outputs, record.as_dict(),
                                        self.memo, self.payloads.get(name))
            except ReanimateError as exc:
                raise StepError(name, str(exc), []) from None
            except OSError as exc:
                raise StepError(name, f"cannot store its outputs in the cache: {exc}", []) \
                    from None
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

    def _run_command(self, name, record, scratch, stdout_path, stderr_path, env, timeout,
                     request=None):
        argv = record.command if request is None else ContainerSteps.runner_argv(request)
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as errf:
            try:
                process = StepProcess(argv, scratch, out, errf, env)
            except OSError as exc:
                record.exit_code = -1
                record.message = f"cannot start {record.command[0]!r}: {exc}"
                return
            self.live[name] = process
            if self.stopping:
                process.end()
            try:  # a container step is timed by its runner (from the container's start)
                code = process.wait(timeout if request is None else None)
            finally:
                self.live.pop(name, None)
        if request is not None and ContainerSteps.timed_out(code, stderr_path):
            code = None
        if code is None:
            record.exit_code = -1
            record.message = f"timed out after {timeout} s"
        elif code == 127 and "cannot start" in stderr_path.read_text(errors="replace"):
            record.exit_code = -1
            record.message = stderr_path.read_text(errors="replace").strip().removeprefix(
                "error: ")
        else:
            record.exit_code = code

def local_argv(planned: PlanStep, inputs: dict[str, list[str]], outputs: dict[str, str],
               python: str = sys.executable) -> list[str]:
    """The plan's command line with local paths; `python` is this interpreter."""
    argv = planned.argv(inputs, outputs)
    if planned.step.program or (argv and argv[0] in ("python", "python3")):
        argv[0] = python
    return argv


def run_spec(
    loaded: LoadedSpec,
    workdir: Path,
    *,
    only: list[str] | None = None,
    from_step: str | None = None,
    jobs: int = 2,
    force: bool = False,
    overrides: dict[str, str] | None = None,
    reporter: Reporter | None = None,
    plan: Plan | None = None,
    containers: str = "none",
    scheduler: str | None = None,
) -> RunReport:
    """Run the spec; `containers="docker"` runs every step inside its image from the lock.

    The ``dask:`` steps share one cluster: the Dask scheduler at ``scheduler`` (or
    ``$DASK_SCHEDULER_URI``), else a LocalCluster the run starts when first needed
    (:mod:`reanimate.engines.run_cluster`)."""
    reporter = reporter or Reporter()
    check_mode(containers)
    plan = plan or make_plan(loaded, overrides)
    workdir = Path(workdir)
    selected = plan.select(only, from_step)
    needed = plan.needed(selected)
    if workdir.exists() and not workdir.is_dir() or any(
            p.exists() and not p.is_dir() for p in Path(workdir).absolute().parents):
        raise ReanimateError(f"--workdir {workdir}: exists and is not a folder (or lies "
                             "under a file)")
    steps_in = ContainerSteps(plan, needed) if containers == "docker" else None
    run = LocalRun(plan, workdir, jobs, force, reporter, steps_in, scheduler)
    try:
        run.workdir.mkdir(parents=True, exist_ok=True)
        run_dir = new_run_dir(run.workdir)
    except OSError as exc:
        raise ReanimateError(f"--workdir {workdir}: cannot write there ({exc})") from None
    started = now()
    interrupted: BaseException | None = None
    try:
        with interrupts_raised():
            try:
                run.verify_external_inputs(needed)
                _schedule(run, selected, needed, run_dir)
            except (KeyboardInterrupt, Interrupted) as exc:
                interrupted = exc
                for record in run.records.values():
                    if record.status == "pending" and record.start:
                        record.status, record.message = "interrupted", str(exc) or "interrupted"
    finally:
        _close_run(run, loaded, plan, needed, run_dir, started)
    if interrupted is not None:
        raise Interrupted(f"{interrupted or 'interrupted'}; provenance: "
                          f"{run_dir}/provenance.json",
                          getattr(interrupted, "signum", signal.SIGINT)) from None
    report = RunReport(run_dir, run.records)
    report_summary(reporter, report)
    return report


def _close_run(run: LocalRun, loaded: LoadedSpec, plan: Plan, needed: set[str], run_dir: Path,
               started: str) -> None:
    """End what still runs, then record what happened (whatever happened)."""
    for process in list(run.live.values()):
        process.end()
    dask = run.cluster.record()
    try:
        run.cluster.close()
    except Exception as exc:  # noqa: BLE001 - a cluster that will not close must not lose provenance
        run.reporter.step("failed", "dask", f"could not close the run's Dask cluster ({exc})")
    try:
        run.memo.save()
    except OSError as exc:  # the memo only saves time; a full disk must not lose provenance
        run.reporter.step("failed", "hashes", f"could not save the hash memo ({exc})")
    left = None
    if run.containers is not None:
        try:
            run.containers.close()  # no container outlives the run
        except ReanimateError as exc:
            left = exc
    records = run.records
    for name in run.order:
        if name not in needed:
            records[name].status = "not-selected"
    try:
        write_provenance(run_dir, {
            "run": run_dir.name,
            "spec": str(loaded.path),
            "spec_sha256": sha256_file(loaded.path),
            "workdir": str(run.workdir),
            "started": started,
            "ended": now(),
            "environment": environment(),
            **({"containers": run.containers.server} if run.containers else {}),
            **({"dask": dask} if dask else {}),
            "parameters": plan.parameters,
            "steps": [records[n].as_dict() for n in run.order],
        })
    except OSError as exc:
        raise ReanimateError(f"cannot write {run_dir}/provenance.json: {exc}") from None
    if left is not None:
        raise left


def _schedule(run: LocalRun, selected: set[str], needed: set[str], run_dir: Path) -> None:
    pending = [n for n in run.order if n in needed]
    running: dict[Future, str] = {}
    done: set[str] = set()
    blocked: set[str] = set()
    started_at: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=run.jobs) as pool, _ending_steps_on_exit(run):
        while pending or running:
            for name in list(pending):
                if any(d in blocked for d in run.deps[name]):
                    pending.remove(name)
                    blocked.add(name)
                    run.records[name].status = "skipped"
                    run.records[name].message = "an upstream step failed"
                    run.reporter.step("skipped", name, "skipped (upstream failed)")
                    continue
                if not all(d in done for d in run.deps[name]) or len(running) >= run.jobs:
                    continue
                if run.plan.steps[name].pin is not None:
                    pending.remove(name)
                    run.adopt_pin(name)
                    done.add(name)
                    run.reporter.step("pinned", name,
                                      f"pinned to registered model {run.records[name].message}")
                    continue
                key, params, paths = run.prepare(name)
                run.records[name].key = key
                meta = run.cache.lookup(name, key, run.plan.steps[name].outputs)
                use_cache = meta is not None and not (run.force and name in selected)
                if use_cache:
                    pending.remove(name)
                    run.adopt(name, key, meta)
                    mark_cached(run.records[name], meta)
                    done.add(name)
                    run.reporter.step("cached", name, "cached")
                    continue
                if name not in selected:
                    raise ReanimateError(
                        f"step {name!r} is needed by the selected steps but has no valid cached "
                        "result; run it first (without --only/--from)"
                    )
                pending.remove(name)
                run.reporter.step("running", name, "running")
                started_at[name] = time.monotonic()
                forced = run.force and name in selected
                run.cluster.warm(name)
                running[pool.submit(run.execute, name, key, paths, run_dir, forced)] = name
            if not running:
                if pending and not any(
                    all(d in done for d in run.deps[n]) for n in pending
                ):
                    break
                continue
            finished = _wait_showing_progress(run.reporter, running, started_at)
            for future in finished:
                name = running.pop(future)
                record = run.records[name]
                elapsed = time.monotonic() - started_at[name]
                try:
                    meta, how = future.result()
                except StepError as exc:
                    record.status = "failed"
                    record.message = exc.detail
                    blocked.add(name)
                    run.reporter.step("failed", name, f"failed ({exc.detail}) after "
                                      f"{elapsed:.1f} s; last lines of its stderr:", exc.tail)
                    continue
                run.adopt(name, record.key, meta)
                done.add(name)
                if how == "cached":  # a concurrent run produced it while this one waited
                    mark_cached(record, meta)
                    run.reporter.step("cached", name, "cached (made by a concurrent run)")
                else:
                    record.status = "executed"
                    run.reporter.step("executed", name, f"done in {elapsed:.1f} s")


@contextlib.contextmanager
def _ending_steps_on_exit(run: LocalRun):
    """On an interrupt, end the running steps before the pool waits for its threads."""
    try:
        yield
    except BaseException:
        run.stopping = True
        for process in list(run.live.values()):
            process.end()
        raise


def _wait_showing_progress(reporter: Reporter, running: dict[Future, str],
                           started_at: dict[str, float]) -> set[Future]:
    """Block until a step finishes, with a live line of what runs and for how long."""
    def text() -> str:
        now_ = time.monotonic()
        busy = ", ".join(f"{n} {now_ - started_at[n]:.0f}s" for n in running.values())
        return f"running: {busy} (logs in runs/latest/logs)"

    with reporter.waiting(text()) as update:
        while True:
            finished, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
            if finished:
                return finished
            update(text())
