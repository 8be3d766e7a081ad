"""Shared fixtures: paths to the repository, the shared data, and a CLI runner."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REAL_NANOAOD = SHARED / "data" / "nanoAOD_2015_CMS_Open_Data_ttbar.root"


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def real_nanoaod() -> Path:
    if not REAL_NANOAOD.exists():
        pytest.skip(f"shared data not found at {REAL_NANOAOD}")
    return REAL_NANOAOD


def run_cli(*args: str, cwd: Path | None = None, check: bool = False):
    """Run `reanimate ARGS` in a subprocess, as a user would; return the CompletedProcess."""
    proc = subprocess.run(
        [sys.executable, "-m", "reanimate.cli", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"reanimate {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def write_spec(tmp_path):
    """Write dedented YAML text to tmp_path/spec.yaml (or another name) and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


@pytest.fixture(scope="session")
def docker_daemon():
    """A real Docker daemon, started by the test set-up when none is running."""
    from docker_helpers import ensure_dockerd

    ensure_dockerd()
    from reanimate.containers.daemon import docker_client

    return docker_client()


@pytest.fixture(scope="session")
def analysis_image(docker_daemon):
    """The flagship's `analysis` image, built once per machine (a cache hit after that).

    The entry `reanimate.containers.build_images` returns: image tag, id, size, context digest.
    Run it by its "id": other tests may move the tag.
    """
    from reanimate.containers import build_images
    from reanimate.spec import load_spec

    built = build_images(load_spec(REPO / "specs" / "agc-ttbar.yaml"), record=False)
    return built["analysis"]


@pytest.fixture(scope="session")
def python_image(docker_daemon):
    """A small image (the debootstrap base, 167 MB, with `python`): for tests of how a step
    runs in a container (timeouts, signals), not of what the analysis image holds. On the vfs
    driver a container of it starts in a few seconds, one of the 2 GB analysis image in 20-40."""
    import io

    from reanimate.containers.base import ensure_base

    base = ensure_base(docker_daemon)
    dockerfile = f"FROM {base['id']}\nRUN ln -sf /usr/bin/python3 /usr/local/bin/python\n"
    image, _ = docker_daemon.images.build(fileobj=io.BytesIO(dockerfile.encode()),
                                          tag="reanimate-test/python:1", rm=True)
    return {"image": "reanimate-test/python:1", "id": image.id}
