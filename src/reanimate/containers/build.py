"""Build the images a spec declares (`containers: NAME: {image: TAG, build: CONTEXT}`).

For each container with a `build:` folder (a Dockerfile and, for reanimate's images, the
generated requirements.txt) the build context is assembled in a temporary folder:

    Dockerfile, requirements.txt, ...   the files of the spec's build folder
    reanimate.txt                       the pin of the reanimate wheel (name==version, sha256)
    wheels/                             every pinned wheel (from the wheelhouse) and reanimate's
    SHA256SUMS                          sha256 and path of every other file, sorted

The context digest is the sha256 of SHA256SUMS (a wheel's digest is its pin, which pip checks
during the build). An image labelled ``org.reanimate.context=DIGEST`` in the daemon is the same
build: it is reused (tagged again if needed) unless ``no_cache``. Otherwise the base image and
the wheels are made ready and the daemon builds (no network, BASE build argument = the base).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from reanimate.containers.cache import cache_dir, file_lock
from reanimate.containers.requirements import REQUIREMENTS, Pin, build_contexts, parse, project_root
from reanimate.errors import ReanimateError

Progress = Callable[[str], None]
LABEL = "org.reanimate"
CONTEXT_LABEL = f"{LABEL}.context"
IMAGE_LABEL = f"{LABEL}.image"  # the tag an image was built for
KEEP_STALE = 2
SUMS = "SHA256SUMS"
BASE_FILE = "base-image.txt"
GENERATED = ("reanimate.txt", BASE_FILE, SUMS, "wheels")
#: an image to build FROM instead of the debootstrapped one (e.g. python:3.11-slim-bookworm)
BASE_ENV = "REANIMATE_BASE_IMAGE"
STEP_LINE = re.compile(r"Step \d+/\d+ : (.*)")
IMAGE_LINE = re.compile(r" ---> ([0-9a-f]{12})")
#: entry fields that describe this call, not the image (never written to the lock)
TRANSIENT = ("cached",)


class Context:
    """A container's build context before it is written: file → (sha256, source or text)."""

    def __init__(self, folder: Path, pins: list[Pin], wheel: Path, wheel_sha: str,
                 base: str) -> None:
        self.folder, self.pins, self.wheel, self.wheel_sha = folder, pins, wheel, wheel_sha
        self.base = base
        self.base_text = f"{base}\n"  # the BASE build argument, so the digest covers it
        self.version = wheel.name.split("-")[1]
        self.pin_text = f"reanimate=={self.version} --hash=sha256:{wheel_sha}\n"
        self.files: dict[str, str] = {}  # relative path → sha256
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = file.relative_to(folder).as_posix()
            if rel.split("/")[0] in GENERATED:
                raise ReanimateError(f"{folder}: {rel} is made by the build; remove it")
            self.files[rel] = _sha256(file.read_bytes())
        self.files["reanimate.txt"] = _sha256(self.pin_text.encode())
        self.files[BASE_FILE] = _sha256(self.base_text.encode())
        for pin in pins:
            self.files[f"wheels/{pin.filename}"] = pin.sha256
        self.files[f"wheels/{wheel.name}"] = wheel_sha
        self.sums = "".join(f"{sha}  {rel}\n" for rel, sha in sorted(self.files.items()))
        self.digest = _sha256(self.sums.encode())
        requirements = folder / REQUIREMENTS
        self.requirements_sha256 = self.files.get(REQUIREMENTS) if requirements.exists() else None

    def write(self, target: Path, wheels: dict[str, Path], link: bool = True) -> None:
        """Lay the context out in `target` (wheels hard-linked from the caches if `link`)."""
        for rel in self.files:
            if rel.startswith("wheels/") or rel in GENERATED:
                continue
            dst = target / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.folder / rel, dst)
        (target / "reanimate.txt").write_text(self.pin_text)
        (target / BASE_FILE).write_text(self.base_text)
        (target / "wheels").mkdir()
        for name, src in [*wheels.items(), (self.wheel.name, self.wheel)]:
            try:
                if not link:
                    raise OSError
                os.link(src, target / "wheels" / name)
            except OSError:
                shutil.copyfile(src, target / "wheels" / name)
        (target / SUMS).write_text(self.sums)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_images(loaded, names=None, *, record: bool = True, no_cache: bool = False,
                 progress: Progress | None = None) -> dict[str, dict]:
    """Build (or find already built) every container of the spec that has a build context.

    Returns, per container name, ``{"image", "id", "size", "context_sha256", "base",
    "requirements_sha256", "reanimate_wheel", "cached"}``; with `record`, the entries (less
    "cached") go to the spec's lock, keeping the push records of an unchanged image.
    """
    from reanimate.containers.daemon import docker_client
    from reanimate.containers.wheelhouse import reanimate_wheel

    say = progress or (lambda _line: None)
    contexts = build_contexts(loaded, names)
    if not contexts:
        raise ReanimateError(f"{loaded.path}: no container with a build: context")
    client = docker_client(timeout=3600, hint="")
    root = project_root()
    wheel, wheel_sha = reanimate_wheel(root, say)
    base = base_image()
    entries = {}
    for name, folder in contexts.items():
        requirements = folder / REQUIREMENTS
        pins = parse(requirements) if requirements.exists() else []
        context = Context(folder, pins, wheel, wheel_sha, base)
        tag = loaded.spec.containers[name].image
        entries[name] = _build_one(client, name, tag, context, no_cache, root, say)
    if record:
        _record(loaded, entries)
    return entries


def _build_one(client, name: str, tag: str, context: Context, no_cache: bool, root: Path,
               say: Progress) -> dict:
    if not no_cache and (image := _find(client, tag, context.digest)) is not None:
        say(f"{name}: {tag} is up to date (context {context.digest[:12]}, {image.short_id})")
        return _entry(image, tag, context, cached=True)
    with file_lock(f"build-{context.digest[:16]}"):
        if not no_cache and (image := _find(client, tag, context.digest)) is not None:
            return _entry(image, tag, context, cached=True)  # another process just built it
        from reanimate.containers.wheelhouse import ensure_wheels

        base = _ensure_base(client, context.base, say)
        wheels = ensure_wheels(context.pins, say)
        args = {
            "BASE": base["image"],
            "REANIMATE_IMAGE": tag,
            "REANIMATE_VERSION": context.version,
            "REANIMATE_CONTEXT": context.digest,
            "REANIMATE_BASE_ID": base["id"],
            "REANIMATE_REQUIREMENTS": context.requirements_sha256 or "",
            "REANIMATE_WHEEL": f"{context.wheel.name} sha256:{context.wheel_sha}",
            "REANIMATE_REVISION": _git_revision(root) or "",
            "IMAGE_CREATED": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        with tempfile.TemporaryDirectory(prefix="context-", dir=cache_dir("containers")) as tmp:
            context.write(Path(tmp), wheels)
            say(f"{name}: docker build {tag} (context {context.digest[:12]}, "
                f"{len(context.files)} files)")
            image_id, stages = _docker_build(client, Path(tmp), tag, args, no_cache, name, say)
        _remove_quietly(client, stages)  # the install stage: its layers hold the wheels
        image = client.images.get(image_id)
        _remove_stale(client, tag)
        return _entry(image, tag, context, cached=False)


def base_image() -> str:
    """The image the builds start FROM: ours (made by debootstrap) unless $REANIMATE_BASE_IMAGE."""
    from reanimate.containers.base import BASE_IMAGE

    return os.environ.get(BASE_ENV, "").strip() or BASE_IMAGE


def _ensure_base(client, name: str, say: Progress) -> dict:
    """``{"image", "id"}`` of the base: made here if it is ours, else found or pulled."""
    from docker.errors import APIError, ImageNotFound

    from reanimate.containers.base import BASE_IMAGE, ensure_base

    if name == BASE_IMAGE:
        return ensure_base(client, say)
    try:
        image = client.images.get(name)
    except ImageNotFound:
        say(f"base: pulling {name} (${BASE_ENV})")
        try:
            image = client.images.pull(name)
        except APIError as exc:
            raise ReanimateError(f"base image {name} (${BASE_ENV}) is not in the daemon and "
                                 f"could not be pulled: {str(exc)[:200]}") from None
    return {"image": name, "id": image.id}


def export_context(loaded, out: Path, names=None, progress: Progress | None = None) -> dict:
    """Write each container's complete build context to OUT/NAME/ (for a plain docker build)."""
    from reanimate.containers.wheelhouse import ensure_wheels, reanimate_wheel

    say = progress or (lambda _line: None)
    contexts = build_contexts(loaded, names)
    if not contexts:
        raise ReanimateError(f"{loaded.path}: no container with a build: context")
    wheel, wheel_sha = reanimate_wheel(project_root(), say)
    written = {}
    for name, folder in contexts.items():
        requirements = folder / REQUIREMENTS
        pins = parse(requirements) if requirements.exists() else []
        context = Context(folder, pins, wheel, wheel_sha, base_image())
        target = out / name
        if target.exists() and any(target.iterdir()):
            raise ReanimateError(f"{target} exists and is not empty")
        target.mkdir(parents=True, exist_ok=True)
        context.write(target, ensure_wheels(pins, say), link=False)
        written[name] = {"path": target, "context_sha256": context.digest}
    return written


def _docker_build(client, path: Path, tag: str, args: dict, no_cache: bool, name: str,
                  say: Progress) -> tuple[str, list[str]]:
    """Run the build, passing its steps to `say`; (image id, ids of the earlier stages' ends)."""
    from docker.errors import APIError, BuildError

    image_id, last, stages, tail = None, None, [], []
    try:
        # build arguments, not the API's labels: those become one instruction per label at
        # the end, each a copy of the whole file system with the classic builder and vfs
        stream = client.api.build(path=str(path), tag=tag, buildargs=args, rm=True,
                                  forcerm=True, nocache=no_cache, pull=False,
                                  network_mode="none", decode=True)
        for chunk in stream:
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise ReanimateError(f"{name}: docker build failed: {detail.strip()[:300]}; "
                                     f"last output: {' | '.join(tail)[-500:]}")
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            for line in chunk.get("stream", "").splitlines():
                if not line.strip():
                    continue
                tail = [*tail[-5:], line.strip()]
                if step := STEP_LINE.match(line):
                    if step[1].upper().startswith("FROM") and last:
                        stages.append(last)  # the previous stage ends here
                    say(f"{name}: docker build: {line.strip()}")
                elif match := IMAGE_LINE.fullmatch(line.rstrip()):
                    last = match[1]
    except (APIError, BuildError) as exc:
        raise ReanimateError(f"{name}: docker build failed: {exc}") from None
    if not image_id:
        raise ReanimateError(f"{name}: docker build gave no image id; last output: "
                             f"{' | '.join(tail)[-500:]}")
    return image_id, stages


def _find(client, tag: str, digest: str):
    """An image labelled with the context digest (the one tagged `tag` first), tagged `tag`."""
    images = client.images.list(filters={"label": f"{CONTEXT_LABEL}={digest}"})
    if not images:
        return None
    images.sort(key=lambda im: im.attrs.get("Created", ""), reverse=True)  # newest first
    images.sort(key=lambda im: tag not in im.tags)  # then the one already tagged `tag`
    image = images[0]
    if tag not in image.tags:
        repository, _, version = tag.rpartition(":")
        image.tag(repository, version)
        image.reload()
        _remove_stale(client, tag)
    return image


def _tagged(client, tag: str):
    from docker.errors import ImageNotFound

    try:
        return client.images.get(tag)
    except ImageNotFound:
        return None


def _remove_stale(client, tag: str) -> None:
    """Remove older builds for `tag` that lost every name, all but the newest KEEP_STALE.

    A rebuild moves the tag; the image it leaves may still be in use by a session that was
    handed its id (a test fixture, a run between two steps), hence the grace of a few; an
    image a container uses, or one with another name, is never removed.
    """
    images = client.images.list(filters={"label": f"{IMAGE_LABEL}={tag}", "dangling": True})
    images = [im for im in images if not im.tags]
    images.sort(key=lambda im: im.attrs.get("Created", ""), reverse=True)
    _remove_quietly(client, [im.id for im in images[KEEP_STALE:]])


def _remove_quietly(client, ids: list[str]) -> None:
    from docker.errors import APIError

    for image_id in ids:
        try:
            client.images.remove(image_id, noprune=False)
        except APIError:
            pass  # in use by a container, or a parent of another image: leave it


def _entry(image, tag: str, context: Context, cached: bool) -> dict:
    labels = image.labels or {}
    return {
        "image": tag,
        "id": image.id,
        "size": int(image.attrs.get("Size", 0)),
        "context_sha256": context.digest,
        "base": {"image": labels.get("org.opencontainers.image.base.name"),
                 "id": labels.get(f"{LABEL}.base.id")},
        "requirements_sha256": context.requirements_sha256,
        "reanimate_wheel": {"name": context.wheel.name, "sha256": context.wheel_sha},
        "cached": cached,
    }


def _git_revision(root: Path) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=False, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _record(loaded, entries: dict[str, dict]) -> None:
    from reanimate.lock import read_lock, write_images

    recorded = read_lock(loaded.path).images
    out = {}
    for name, entry in entries.items():
        kept = {k: v for k, v in entry.items() if k not in TRANSIENT}
        old = recorded.get(name) or {}
        if old.get("id") == entry["id"]:
            for key in ("pushed", "pushed_last"):
                if key in old:
                    kept[key] = old[key]
        out[name] = kept
    write_images(loaded.path, out)


def image_status(loaded) -> list[dict]:
    """Per container: the image id the lock records, the one its tag names in the daemon."""
    from docker.errors import ImageNotFound

    from reanimate.containers.daemon import docker_client
    from reanimate.lock import image_by_digest, read_lock

    recorded = read_lock(loaded.path).images
    client = docker_client(hint="")
    rows = []
    for name, container in loaded.spec.containers.items():
        entry = recorded.get(name) or {}
        locked = entry.get("id")
        tagged = _tagged(client, container.image)
        present = False
        if locked:
            try:
                client.images.get(locked)
                present = True
            except ImageNotFound:
                pass
        if not locked:
            state = "not built" if container.build else "no build context"
        elif not present:
            state = "recorded image missing from the daemon"
        elif tagged is not None and tagged.id == locked:
            state = "current"
        else:
            state = f"present, but {container.image} names another image"
        rows.append({"name": name, "image": container.image, "locked": locked and locked[:19],
                     "daemon": tagged.id[:19] if tagged is not None else None, "state": state,
                     "pushed": image_by_digest(entry) if entry else None})
    return rows
