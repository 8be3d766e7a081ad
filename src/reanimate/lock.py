"""SPEC.lock.json: the sha256 of every input file a spec reads, model pins, image digests.

The lock is read once per command (read_lock) and handed to the plan; nothing else opens it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from reanimate.atomic import write_text
from reanimate.errors import DigestMismatch, ReanimateError
from reanimate.hashing import HashMemo
from reanimate.urls import is_remote

LOCK_VERSION = 1
IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class InputFile:
    """A file the spec reads from outside the workflow: a dataset file or a file: reference."""

    key: str  # the path as written in the spec (the lock is keyed by it)
    path: Path | None  # resolved local path; None for a remote URL
    declared_sha256: str | None = None


@dataclass(frozen=True)
class Lock:
    """SPEC.lock.json as read once: input digests (None: no lock file), model pins, images.

    ``images`` maps a container name of the spec to what `reanimate containers build` recorded:
    ``{"image": TAG, "id": "sha256:...", ...}`` and, once pushed, ``"pushed": {REPOSITORY:
    "sha256:MANIFEST"}`` (see :func:`image_by_digest`).
    """

    path: Path
    files: dict[str, dict] | None
    models: dict[str, dict]
    images: dict[str, dict] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.files is not None


def lock_path(spec_path: Path) -> Path:
    name = spec_path.name
    for suffix in (".yaml", ".yml"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return spec_path.with_name(name + ".lock.json")


def read_lock(spec_path: Path) -> Lock:
    """The lock of a spec (every field empty when there is none); a broken lock is an error."""
    path = lock_path(spec_path)
    if not path.exists():
        return Lock(path, None, {})
    try:
        payload = json.loads(path.read_text())
        files, models = dict(payload["files"]), dict(payload.get("models", {}))
        images = dict(payload.get("images", {}))
        for name, entry in images.items():
            if not (isinstance(entry, dict) and IMAGE_ID.fullmatch(str(entry.get("id", "")))):
                raise ValueError(f"images.{name} has no id of the form sha256:<64 hex digits>")
        for key, entry in files.items():
            if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)):
                raise ValueError(f"files.{key} is not an object with a sha256")
        for step, pin in models.items():
            if not (isinstance(pin, dict) and isinstance(pin.get("files", {}), dict)):
                raise ValueError(f"models.{step} is not an object with files")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReanimateError(
            f"{path}: not a valid lock file ({exc}); rerun reanimate lock"
        ) from None
    return Lock(path, files, models, images)


def external_input(base_dir: Path, key: str, sha: str | None = None) -> InputFile:
    if is_remote(key):
        return InputFile(key, None, sha)
    return InputFile(key, (base_dir / key).resolve(), sha)


def write_lock(inputs: dict[str, InputFile], spec_path: Path,
               memo: HashMemo | None = None) -> tuple[Path, int]:
    """Record the sha256 of every local input (keeping the model pins already there)."""
    memo = memo or HashMemo(None)
    files = {}
    for key, item in sorted(inputs.items()):
        if item.path is None:
            continue  # remote: pinned by the spec's own sha256 if any
        if not item.path.is_file():
            raise ReanimateError(f"cannot lock {key}: file not found ({item.path})")
        files[key] = {"sha256": memo.sha256(item.path), "size": item.path.stat().st_size}
    path = lock_path(spec_path)
    payload = {"lock_version": LOCK_VERSION, "spec": spec_path.name, "files": files}
    previous = read_lock(spec_path)
    if previous.models:
        payload["models"] = previous.models
    if previous.images:
        payload["images"] = previous.images
    write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path, len(files)


def verify_input(item: InputFile, lock: Lock, memo: HashMemo) -> str | None:
    """The input's sha256 after checking it against the lock and the spec; None if remote."""
    if item.path is None:
        return item.declared_sha256
    if not item.path.is_file():
        raise ReanimateError(f"input file {item.key} not found ({item.path})")
    actual = memo.sha256(item.path)
    expected = []
    if item.declared_sha256:
        expected.append(("the spec", item.declared_sha256))
    if lock.files is not None:
        if item.key not in lock.files:
            raise DigestMismatch(f"input {item.key} is not in the lock; run `reanimate lock`")
        expected.append(("the lock", lock.files[item.key]["sha256"]))
    for where, digest in expected:
        if digest != actual:
            raise DigestMismatch(
                f"input {item.key} does not match {where}: expected sha256 {digest}, "
                f"found {actual}; refusing to use it"
            )
    return actual


# -- model pins: a training step replaced by a registered model version ---------------------
def write_pin(spec_path: Path, step: str, pin: dict) -> Path:
    """Record `pin` for `step` in the lock, keeping the file digests already there."""
    path = lock_path(spec_path)
    payload = {"lock_version": LOCK_VERSION, "spec": spec_path.name, "files": {}}
    if path.exists():
        payload = json.loads(path.read_text())
    payload.setdefault("models", {})[step] = pin
    write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def verified_pin_outputs(base_dir: Path, step: str, pin: dict,
                         memo: HashMemo) -> dict[str, tuple[Path, str]]:
    """The pinned files of a step (output name -> (path, sha256)), each checked."""
    out = {}
    for output, entry in pin.get("files", {}).items():
        file = (base_dir / entry["path"]).resolve()
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


# -- container images: what `reanimate containers build` made, and where it was pushed -------
def write_images(spec_path: Path, images: dict[str, dict]) -> Path:
    """Record (replace) the given image entries in the lock, keeping everything else there."""
    path = lock_path(spec_path)
    payload = {"lock_version": LOCK_VERSION, "spec": spec_path.name, "files": {}}
    if path.exists():
        payload = json.loads(path.read_text())
    payload.setdefault("images", {}).update(images)
    write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def image_by_digest(entry: dict) -> str | None:
    """``REPOSITORY@sha256:MANIFEST`` of a pushed image (the latest push), else None.

    A local build has only its image id (the digest of its configuration), which a registry
    cannot serve; exports reference an image by digest once it is pushed.
    """
    pushed = entry.get("pushed") or {}
    if not pushed:
        return None
    repository = entry.get("pushed_last") or sorted(pushed)[0]
    return f"{repository}@{pushed[repository]}"
