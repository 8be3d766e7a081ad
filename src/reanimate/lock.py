"""SPEC.lock.json: the sha256 of every input file a spec reads, and its verification."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from reanimate.errors import DigestMismatch, ReanimateError
from reanimate.hashing import HashMemo
from reanimate.spec.graph import references
from reanimate.spec.loader import LoadedSpec

LOCK_VERSION = 1
REMOTE_PREFIXES = ("http://", "https://", "root://", "s3://")


@dataclass(frozen=True)
class InputFile:
    """A file the spec reads from outside the workflow: a dataset file or a file: reference."""

    key: str  # the path as written in the spec (the lock is keyed by it)
    path: Path | None  # resolved local path; None for a remote URL
    declared_sha256: str | None = None


def lock_path(spec_path: Path) -> Path:
    name = spec_path.name
    for suffix in (".yaml", ".yml"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return spec_path.with_name(name + ".lock.json")


def spec_inputs(loaded: LoadedSpec, steps: set[str] | None = None) -> dict[str, InputFile]:
    """Every external input file by its spec key: all of them, or those `steps` read."""
    out: dict[str, InputFile] = {}
    wanted: set[str] | None = None if steps is None else set()
    for name, step in loaded.spec.steps.items():
        if steps is not None and name not in steps:
            continue
        for value in step.inputs.values():
            for ref in references(value):
                if ref.startswith("file:"):
                    key = ref.removeprefix("file:")
                    out[key] = _input(loaded, key, None)
                elif ref.startswith("datasets.") and wanted is not None:
                    wanted.add(ref.removeprefix("datasets."))
    for name, dataset in loaded.spec.datasets.items():
        if wanted is None or name in wanted:
            for file in dataset.files:
                out[file.path] = _input(loaded, file.path, file.sha256)
    return out


def _input(loaded: LoadedSpec, key: str, sha: str | None) -> InputFile:
    if key.startswith(REMOTE_PREFIXES):
        return InputFile(key, None, sha)
    return InputFile(key, (loaded.base_dir / key).resolve(), sha)


def write_lock(loaded: LoadedSpec, memo: HashMemo | None = None) -> tuple[Path, int]:
    memo = memo or HashMemo(None)
    files = {}
    for key, item in sorted(spec_inputs(loaded).items()):
        if item.path is None:
            continue  # remote: pinned by the spec's own sha256 if any
        if not item.path.is_file():
            raise ReanimateError(f"cannot lock {key}: file not found ({item.path})")
        files[key] = {"sha256": memo.sha256(item.path), "size": item.path.stat().st_size}
    path = lock_path(loaded.path)
    payload = {"lock_version": LOCK_VERSION, "spec": loaded.path.name, "files": files}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path, len(files)


def read_lock(spec_path: Path) -> dict[str, dict] | None:
    path = lock_path(spec_path)
    if not path.exists():
        return None
    try:
        payload = json.loads(path.read_text())
        return dict(payload["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ReanimateError(
            f"{path}: not a valid lock file ({exc}); rerun reanimate lock"
        ) from None


def verify_input(item: InputFile, lock: dict[str, dict] | None, memo: HashMemo) -> str | None:
    """The input's sha256 after checking it against the lock and the spec; None if remote."""
    if item.path is None:
        return item.declared_sha256
    if not item.path.is_file():
        raise ReanimateError(f"input file {item.key} not found ({item.path})")
    actual = memo.sha256(item.path)
    expected = []
    if item.declared_sha256:
        expected.append(("the spec", item.declared_sha256))
    if lock is not None:
        if item.key not in lock:
            raise DigestMismatch(f"input {item.key} is not in the lock; run `reanimate lock`")
        expected.append(("the lock", lock[item.key]["sha256"]))
    for where, digest in expected:
        if digest != actual:
            raise DigestMismatch(
                f"input {item.key} does not match {where}: expected sha256 {digest}, "
                f"found {actual}; refusing to use it"
            )
    return actual


# -- model pins: a training step replaced by a registered model version ---------------------
def read_pins(spec_path: Path) -> dict[str, dict]:
    """Step name -> {name, version, files: {output: {path, sha256}}} from the lock."""
    path = lock_path(spec_path)
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text()).get("models", {}))
    except (ValueError, AttributeError) as exc:
        raise ReanimateError(f"{path}: not a valid lock file ({exc})") from None


def write_pin(loaded: LoadedSpec, step: str, pin: dict) -> Path:
    """Record `pin` for `step` in the lock, keeping the file digests already there."""
    path = lock_path(loaded.path)
    payload = {"lock_version": LOCK_VERSION, "spec": loaded.path.name, "files": {}}
    if path.exists():
        payload = json.loads(path.read_text())
    payload.setdefault("models", {})[step] = pin
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def verified_pin_outputs(loaded: LoadedSpec, step: str, pin: dict,
                         memo: HashMemo) -> dict[str, tuple[Path, str]]:
    """The pinned files of a step (output name -> (path, sha256)), each checked."""
    out = {}
    for output, entry in pin.get("files", {}).items():
        file = (loaded.base_dir / entry["path"]).resolve()
        if not file.is_file():
            raise ReanimateError(f"pinned model file {entry['path']} of step {step!r} not found; "
                                 "rerun `reanimate model pin`")
        actual = memo.sha256(file)
        if actual != entry["sha256"]:
            raise DigestMismatch(
                f"pinned model file {entry['path']} of step {step!r} ({pin.get('name')} version "
                f"{pin.get('version')}): expected sha256 {entry['sha256']}, found {actual}; "
                "refusing to use it"
            )
        out[output] = (file, actual)
    return out
