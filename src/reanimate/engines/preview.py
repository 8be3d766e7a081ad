"""`reanimate plan`: what a local run would do, without running anything.

Walks the plan in order against the work directory's cache, exactly as the local engine would:
a step whose key has a valid cache entry is served from it (its output digests feed the keys of
its dependants); a step without one would run, and the reason is named by comparing its key
payload with the one stored beside its most recent cache entry (which parameter, input, code or
package changed). Dependants of a step that would run cannot know their input digests yet: they
run "because upstream X runs". Nothing in the work directory is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reanimate.engines.cache import StepCache
from reanimate.engines.plan import (
    Plan,
    PlanStep,
    cache_key,
    key_changes,
)
from reanimate.hashing import HashMemo

PREVIEW_VERSION = 1


def preview(plan: Plan, workdir: Path, only: list[str] | None = None,
            from_step: str | None = None, force: bool = False) -> dict[str, Any]:
    workdir = Path(workdir).resolve()
    selected = plan.select(only, from_step)
    needed = plan.needed(selected)
    digests = plan.verify_inputs(needed, HashMemo(workdir / "hashes.json"))
    cache = StepCache(workdir)
    produced: dict[str, dict[str, tuple[str, str]]] = {}  # step -> output -> (path, sha256)
    steps = []
    for name in plan.order:
        planned = plan.steps[name]
        entry: dict[str, Any] = {"name": name, "status": "not-selected", "reasons": [],
                                 "key": None, "upstream": planned.upstream,
                                 "parameters": planned.parameters,
                                 "outputs": dict(planned.outputs)}
        steps.append(entry)
        if name not in needed:
            continue
        inputs, input_digests, waiting = _inputs(planned, digests, produced)
        entry["inputs"] = inputs
        entry["command"] = _command(planned, inputs)
        if planned.pin is not None:
            entry["status"] = "pinned"
            entry["reasons"] = [f"registered model {planned.pin.get('name')} "
                                f"version {planned.pin.get('version')}"]
            produced[name] = {out: (str((plan.base_dir / f["path"]).resolve()), f["sha256"])
                              for out, f in planned.pin.get("files", {}).items()}
            continue
        if waiting:
            entry["status"] = "run" if name in selected else "missing"
            entry["reasons"] = [f"upstream {step} runs" for step in waiting]
            old = (cache.latest(name) or {}).get("key_payload")
            if isinstance(old, dict):  # what else changed, the inputs aside
                own = planned.key_payload(old.get("inputs", {}))
                entry["reasons"] += [r for r in key_changes(old, own) if not r.startswith("input")]
            continue
        payload = planned.key_payload(input_digests)
        key = entry["key"] = cache_key(payload)
        meta = cache.lookup(name, key, planned.outputs)
        if meta is not None and not (force and name in selected):
            entry["status"] = "cached"
            folder = cache.entry_dir(name, key)
            produced[name] = {out: (str(folder / info["path"]), info["sha256"])
                              for out, info in meta["outputs"].items()}
            continue
        entry["status"] = "run" if name in selected else "missing"
        entry["reasons"] = _reasons(cache, name, payload, meta is not None)
    return {
        "preview_version": PREVIEW_VERSION,
        "spec": str(plan.loaded.path),
        "workdir": str(workdir),
        "parameters": plan.parameters,
        "steps": steps,
        "summary": {status: [s["name"] for s in steps if s["status"] == status]
                    for status in ("run", "cached", "pinned", "missing", "not-selected")},
    }


def _inputs(planned: PlanStep, digests: dict, produced: dict) -> tuple[dict, dict, list[str]]:
    inputs: dict[str, list[dict]] = {}
    input_digests: dict[str, list[str]] = {}
    waiting: list[str] = []
    for iname, items in planned.inputs.items():
        inputs[iname], input_digests[iname] = [], []
        for item in items:
            if item.external is not None:
                key = item.external.key
                path = str(item.external.path) if item.external.path else key
                digest = digests.get(key) or f"remote:{key}"
            elif item.producer.step in produced:
                path, digest = produced[item.producer.step][item.producer.output]
            else:
                path, digest = f"<{item.producer}>", None
                if item.producer.step not in waiting:
                    waiting.append(item.producer.step)
            inputs[iname].append({"ref": str(item.ref), "path": path, "sha256": digest})
            input_digests[iname].append(digest)
    return inputs, input_digests, waiting


def _command(planned: PlanStep, inputs: dict[str, list[dict]]) -> list[str]:
    return planned.argv({k: [i["path"] for i in v] for k, v in inputs.items()},
                        {k: v.rstrip("/") for k, v in planned.outputs.items()})


def _reasons(cache: StepCache, name: str, payload: dict, cached: bool) -> list[str]:
    if cached:
        return ["--force"]
    latest = cache.latest(name)
    if latest is None:
        return ["no cached result yet"]
    old = latest.get("key_payload")
    if not isinstance(old, dict):
        return ["no cached result for this key (the cached one predates key records)"]
    return key_changes(old, payload) or ["cached outputs were modified or removed"]
