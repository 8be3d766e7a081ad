"""The base image, made here: no registry is needed to build reanimate's images.

A Debian bookworm root file system from debootstrap (variant minbase, plus python3 and
python3-venv) from deb.debian.org, tarred and imported into the daemon as
``reanimate/base:bookworm-python3.11``. The tarball is kept in the cache
(``containers/bookworm-python3.11.tar``) and the import is done once per daemon; a file lock
keeps two makers from racing. A facility that can pull images uses an official
``python:3.11-slim-bookworm`` instead (the Dockerfile's BASE build argument).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from reanimate.containers.cache import cache_dir, file_lock
from reanimate.errors import ReanimateError

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv")
REPOSITORY, TAG = "reanimate/base", "bookworm-python3.11"
BASE_IMAGE = f"{REPOSITORY}:{TAG}"
#: Dockerfile instructions applied on import (docker import --change)
CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
]
#: what debootstrap leaves that an image does not need
PRUNE = ("var/cache/apt/archives", "var/lib/apt/lists", "var/cache/debconf", "var/log")

PER_PACKAGE = re.compile(r"I: \w+ \S+\.\.\.$")

Progress = Callable[[str], None]


def tarball_path() -> Path:
    return cache_dir("containers") / f"{SUITE}-python3.11.tar"


def ensure_base(client, progress: Progress | None = None) -> dict:
    """``{"image": TAG, "id": "sha256:..."}`` of the base image, made and imported if missing."""
    from docker.errors import ImageNotFound

    say = progress or (lambda _line: None)
    with file_lock("base"):
        try:
            image = client.images.get(BASE_IMAGE)
            say(f"base: {BASE_IMAGE} is in the daemon ({image.id[:19]})")
        except ImageNotFound:
            tarball = tarball_path()
            if tarball.exists():
                say(f"base: importing the cached root file system {tarball}")
            else:
                make_rootfs_tarball(tarball, say)
            client.api.import_image_from_file(str(tarball), repository=REPOSITORY, tag=TAG,
                                              changes=CHANGES)
            image = client.images.get(BASE_IMAGE)
            say(f"base: imported {BASE_IMAGE} ({image.id[:19]}, "
                f"{image.attrs.get('Size', 0) / 1e6:.0f} MB)")
    return {"image": BASE_IMAGE, "id": image.id}


def make_rootfs_tarball(target: Path, say: Progress) -> None:
    """debootstrap a minimal bookworm with python3 and tar it to `target` (atomically)."""
    if not shutil.which("debootstrap"):
        raise ReanimateError("debootstrap is not installed (apt-get install debootstrap); it "
                             "makes the base image, since no image is pulled from a registry")
    if os.geteuid() != 0:
        raise ReanimateError("making the base root file system needs root (debootstrap); run "
                             "`reanimate containers build` as root once, or import a base image "
                             f"tagged {BASE_IMAGE}")
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=target.parent))
    rootfs = work / "rootfs"
    partial = work / target.name
    try:
        say(f"base: debootstrap --variant=minbase {SUITE} from {MIRROR} (a few minutes)")
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
               SUITE, str(rootfs), MIRROR]
        _run_logged(cmd, say, "debootstrap")
        for rel in PRUNE:
            folder = rootfs / rel
            if folder.is_dir():
                for child in folder.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        say("base: packing the root file system")
        _run_logged(["tar", "--numeric-owner", "--xattrs", "--sort=name", "-C", str(rootfs),
                     "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
                     "-cf", str(partial), "."], say, "tar")
        os.replace(partial, target)
    finally:
        _remove_rootfs(work)


def _run_logged(cmd: list[str], say: Progress, what: str) -> None:
    """Run `cmd`, passing its lines to `say`; its last lines in the error when it fails."""
    tail: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace") as proc:
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                tail = [*tail[-4:], line]
                # debootstrap's milestones, not its lines per package ("I: Unpacking tar...")
                if line.startswith(("E:", "W:")) or (
                        line.endswith(("...", "successfully.")) and not PER_PACKAGE.match(line)):
                    say(f"base: {what}: {line}")
    if proc.returncode != 0:
        raise ReanimateError(f"{what} failed (exit {proc.returncode}): {'; '.join(tail)}")


def _remove_rootfs(work: Path) -> None:
    """Remove a (half-made) root file system: unmount what debootstrap left mounted first."""
    prefix = str(work.resolve()) + "/"
    try:
        with open("/proc/self/mounts") as mounts:
            points = [line.split()[1] for line in mounts]
    except OSError:
        points = []
    for point in sorted((p for p in points if p.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
