"""The flagship's image, built from containers/ with the real Docker daemon (docker-py).

The image is built once per machine (the session fixture `analysis_image` in conftest.py) and
reused after that: a build whose context digest matches an image's label is skipped. Tests
refer to the image by its id, since another test may tag something else with the same name.
Pushes go to a real registry (Debian's docker-registry) started here on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from reanimate.containers import build_images, push_images
from reanimate.containers.requirements import (
    BUILD_REQUIREMENTS,
    build_text,
    parse,
    project_root,
    read_pins,
    runtime_text,
)
from reanimate.errors import ReanimateError
from reanimate.lock import image_by_digest, lock_path, read_lock
from reanimate.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "specs" / "agc-ttbar.yaml"
CONTEXT = REPO / "containers" / "analysis"

IN_IMAGE = r"""
import hashlib, json, os, sys
import importlib.metadata as md
import reanimate, numpy, awkward, uproot, xgboost, pyhf, iminuit, hist, dask, distributed
import mlflow, cwltool, docker, rocrate, XRootD, fsspec_xrootd, pydantic, yaml, typer, rich
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
plt.plot([0, 1], [1, 0]); plt.savefig("/tmp/plot.png")
package = os.path.dirname(reanimate.__file__)
files = {}
for folder, _, names in os.walk(package):
    for name in names:
        if name.endswith((".py", ".json")):
            path = os.path.join(folder, name)
            rel = "reanimate/" + os.path.relpath(path, package)
            files[rel] = hashlib.sha256(open(path, "rb").read()).hexdigest()
wheels = [os.path.join(folder, name) for folder, _, names in os.walk("/")
          if not folder.startswith(("/proc", "/sys", "/dev"))
          for name in names if name.endswith(".whl")]
print(json.dumps({"version": md.version("reanimate"), "numpy": numpy.__version__,
                  "files": files, "wheels": wheels, "context": os.path.exists("/context"),
                  "uid": os.getuid(), "executable": sys.executable,
                  "plot": os.path.getsize("/tmp/plot.png")}))
"""


def spec_copy(folder: Path) -> Path:
    """The flagship spec in `folder`, its build context pointing at the repository's."""
    text = SPEC.read_text().replace("build: ../containers/analysis", f"build: {CONTEXT}")
    assert str(CONTEXT) in text
    path = folder / "agc-ttbar.yaml"
    path.write_text(text)
    return path


def cached_wheel(entry: dict) -> Path:
    name, sha = entry["reanimate_wheel"]["name"], entry["reanimate_wheel"]["sha256"]
    from reanimate.containers.cache import cache_root

    for path in (cache_root() / "wheels" / "reanimate").glob(f"*/{name}"):
        if hashlib.sha256(path.read_bytes()).hexdigest() == sha:
            return path
    raise AssertionError(f"the wheel {name} sha256:{sha} is not in the cache")


# -- the image ---------------------------------------------------------------------------------
def test_the_image_is_built_with_its_digests(analysis_image, docker_daemon):
    entry = analysis_image
    assert entry["image"] == "reanimate/agc-analysis:0.1.0"
    assert entry["id"].startswith("sha256:") and len(entry["id"]) == 71
    image = docker_daemon.images.get(entry["id"])
    assert entry["size"] == image.attrs["Size"] > 100_000_000
    labels = image.labels
    assert labels["org.reanimate.context"] == entry["context_sha256"]
    assert labels["org.reanimate.requirements"] == entry["requirements_sha256"] == \
        hashlib.sha256((CONTEXT / "requirements.txt").read_bytes()).hexdigest()
    assert labels["org.reanimate.wheel"].endswith(entry["reanimate_wheel"]["sha256"])
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert entry["base"]["id"] == labels["org.reanimate.base.id"]
    base = docker_daemon.images.get(entry["base"]["id"])
    # the base plus one layer: the virtual environment (no layer holds a wheel)
    assert len(image.attrs["RootFS"]["Layers"]) == len(base.attrs["RootFS"]["Layers"]) + 1
    env = dict(item.split("=", 1) for item in image.attrs["Config"]["Env"])
    assert env["PATH"].startswith("/opt/reanimate/bin:")
    assert env["HOME"] == env["MPLCONFIGDIR"] == "/tmp"


def test_reanimate_and_its_libraries_run_inside_as_any_user(analysis_image, docker_daemon):
    """Read-only root, an arbitrary uid, no network: the image's reanimate is the wheel's."""
    out = docker_daemon.containers.run(
        analysis_image["id"],
        ["sh", "-c", 'reanimate --version && python -m reanimate.cli --version && '
                     'python -c "$0"', IN_IMAGE],
        user="4321:4321", read_only=True, tmpfs={"/tmp": ""}, network_mode="none",
        remove=True, stderr=True,
    ).decode()
    lines = out.strip().splitlines()
    assert lines[0] == lines[1] == "0.1.0"
    found = json.loads(lines[-1])
    assert found["uid"] == 4321 and found["plot"] > 0
    assert found["executable"].startswith("/opt/reanimate/")
    assert found["numpy"] == read_pins(REPO / "requirements" / "constraints.txt")["numpy"]
    wheel = cached_wheel(analysis_image)
    with zipfile.ZipFile(wheel) as zf:
        expected = {n: hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist()
                    if n.startswith("reanimate/") and n.endswith((".py", ".json"))}
        info = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
    assert found["version"] == info.split("/")[0].removesuffix(".dist-info").split("-")[1]
    assert found["files"] == expected  # exactly the wheel's code
    assert not found["context"]
    pinned = {pin.filename for pin in parse(CONTEXT / "requirements.txt")} | {wheel.name}
    assert not pinned & {os.path.basename(w) for w in found["wheels"]}


def test_a_second_build_is_a_cache_hit(analysis_image):
    lines: list[str] = []
    again = build_images(load_spec(SPEC), record=False, progress=lines.append)["analysis"]
    assert again["cached"] is True
    assert again["id"] == analysis_image["id"]
    assert again["context_sha256"] == analysis_image["context_sha256"]
    assert not any("docker build:" in line for line in lines), lines


def test_build_records_the_image_in_the_lock(analysis_image, tmp_path):
    """`reanimate containers build` (a cache hit here) writes the entry to the spec's lock."""
    spec = spec_copy(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "reanimate.cli", "containers", "build",
                           str(spec)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(lock_path(spec).read_text())
    entry = payload["images"]["analysis"]
    # the fixture's image, unless the sources changed since it was built
    assert f"analysis: reanimate/agc-analysis:0.1.0 {entry['id']} " in proc.stdout
    assert set(entry) == {"image", "id", "size", "context_sha256", "base",
                          "requirements_sha256", "reanimate_wheel"}
    assert entry["requirements_sha256"] == analysis_image["requirements_sha256"]
    assert read_lock(spec).images["analysis"] == entry
    listed = subprocess.run([sys.executable, "-m", "reanimate.cli", "containers", "list",
                             str(spec)], capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stderr
    assert f"lock={entry['id'][:19]}" in listed.stdout


# -- pushing to a real registry ----------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def registry(tmp_path):
    """Debian's docker-registry on 127.0.0.1:<free port>, storage in tmp; stopped after."""
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    if not Path(binary).exists():
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    port = free_port()
    storage = tmp_path / "registry"
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {storage}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    log = open(tmp_path / "registry.log", "wb")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "registry.log").read_text()[-500:]) from None
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(storage, ignore_errors=True)


def test_push_records_the_registry_digest(analysis_image, docker_daemon, registry, tmp_path):
    spec = spec_copy(tmp_path)
    built = build_images(load_spec(spec), record=True)["analysis"]  # the fixture's, as a rule
    repository = f"{registry}/reanimate/agc-analysis"
    try:
        entries = push_images(load_spec(spec), f"{registry}/reanimate")
        entry = entries["analysis"]
        digest = entry["pushed"][repository]
        assert entry["pushed_last"] == repository and digest.startswith("sha256:")
        locked = read_lock(spec).images["analysis"]
        assert locked["pushed"] == {repository: digest}
        assert locked["id"] == built["id"]
        assert image_by_digest(locked) == f"{repository}@{digest}"
        # the registry serves that manifest, and pulling it by digest gives the built image
        data = docker_daemon.images.get_registry_data(f"{repository}@{digest}")
        assert data.id == digest
        pulled = docker_daemon.images.pull(repository, tag=digest)
        assert pulled.id == built["id"]
        # a rebuild that finds the same image keeps the push record
        build_images(load_spec(spec), record=True)
        assert read_lock(spec).images["analysis"]["pushed"] == {repository: digest}
    finally:
        image = docker_daemon.images.get(built["id"])
        if f"{repository}:0.1.0" in image.tags and len(image.tags) > 1:
            docker_daemon.images.remove(f"{repository}:0.1.0")  # never the image's last name


def test_push_of_an_unbuilt_image_is_one_clear_error(tmp_path, docker_daemon):
    spec = spec_copy(tmp_path)
    with pytest.raises(ReanimateError, match="no built image .* run `reanimate containers build"):
        push_images(load_spec(spec), "127.0.0.1:1/reanimate")
    lock = lock_path(spec)
    lock.write_text(json.dumps({"lock_version": 1, "files": {}, "images": {"analysis": {
        "image": "reanimate/agc-analysis:0.1.0", "id": "sha256:" + "0" * 64}}}))
    with pytest.raises(ReanimateError, match="not in this daemon; rebuild it"):
        push_images(load_spec(spec), "127.0.0.1:1/reanimate")


# -- without a daemon --------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["build"], ["push", "--registry", "127.0.0.1:1/x"],
                                     ["list"]])
def test_no_docker_is_one_line_and_exit_2(command, tmp_path):
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"}
    proc = subprocess.run([sys.executable, "-m", "reanimate.cli", "containers", command[0],
                           str(spec_copy(tmp_path)), *command[1:]], env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: docker is not available"), lines
    assert not lock_path(tmp_path / "agc-ttbar.yaml").exists()


# -- what goes into the context ----------------------------------------------------------------
def test_requirements_txt_is_current():
    """The committed files are what the generator writes now (same bytes: sorted, no date)."""
    root = project_root()
    assert runtime_text(root) == (CONTEXT / "requirements.txt").read_text()
    assert build_text(root) == (root / BUILD_REQUIREMENTS).read_text()


def test_requirements_pin_the_constraints_with_wheel_hashes():
    pins = parse(CONTEXT / "requirements.txt")
    constraints = read_pins(REPO / "requirements" / "constraints.txt")
    assert [p.key for p in pins] == sorted(p.key for p in pins)
    assert all(constraints[p.key] == p.version for p in pins)
    assert all(p.filename.endswith(".whl") and len(p.sha256) == 64 for p in pins)
    names = {p.key for p in pins}
    assert {"reanimate", "pytest", "hypothesis", "ruff"}.isdisjoint(names)  # runtime only
    assert {"numpy", "awkward", "uproot", "xgboost", "docker", "xrootd"} <= names


def test_the_reanimate_wheel_is_reproducible(tmp_path, monkeypatch):
    """Two builds in two fresh caches give the same bytes, and leave the checkout clean."""
    from reanimate.containers.wheelhouse import reanimate_wheel

    root = project_root()
    before = sorted(p.name for p in root.iterdir()) + sorted(p.name for p in (root / "src")
                                                             .iterdir())
    digests = []
    for attempt in ("one", "two"):
        monkeypatch.setenv("REANIMATE_CACHE", str(tmp_path / attempt))
        path, sha = reanimate_wheel(root)
        assert path.is_relative_to(tmp_path / attempt)
        digests.append(sha)
    assert digests[0] == digests[1]
    after = sorted(p.name for p in root.iterdir()) + sorted(p.name for p in (root / "src")
                                                            .iterdir())
    assert after == before


def test_a_failed_debootstrap_leaves_no_half_made_root(tmp_path, monkeypatch):
    from reanimate.containers import base

    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        pytest.skip("needs root and debootstrap")
    monkeypatch.setattr(base, "MIRROR", f"http://127.0.0.1:{free_port()}/debian")
    target = tmp_path / "cache" / "base.tar"
    target.parent.mkdir()
    with pytest.raises(ReanimateError, match="debootstrap failed"):
        base.make_rootfs_tarball(target, lambda _line: None)
    assert list(target.parent.iterdir()) == []


def test_unknown_or_contextless_containers_are_refused(tmp_path):
    spec = spec_copy(tmp_path)
    with pytest.raises(ReanimateError, match="no container 'nope'"):
        build_images(load_spec(spec), ["nope"])
    text = spec.read_text().replace(f"    build: {CONTEXT}\n", "")
    spec.write_text(text)
    with pytest.raises(ReanimateError, match="no container with a build: context"):
        build_images(load_spec(spec))


def test_the_context_can_be_written_for_a_plain_docker_build(tmp_path):
    """`reanimate containers context` writes what `build` sends: its SHA256SUMS all check."""
    out = tmp_path / "ctx"
    proc = subprocess.run([sys.executable, "-m", "reanimate.cli", "containers", "context",
                           str(SPEC), "--out", str(out)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    context = out / "analysis"
    digest = hashlib.sha256((context / "SHA256SUMS").read_bytes()).hexdigest()
    assert f"(context {digest})" in proc.stdout
    check = subprocess.run(["sha256sum", "--check", "--strict", "--quiet", "SHA256SUMS"],
                           cwd=context, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    listed = {line.split("  ", 1)[1] for line in (context / "SHA256SUMS").read_text()
              .splitlines()}
    on_disk = {p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()}
    assert on_disk - listed == {"SHA256SUMS"}
    assert {"Dockerfile", "requirements.txt", "reanimate.txt", "base-image.txt"} <= listed
    assert (context / "base-image.txt").read_text() == "reanimate/base:bookworm-python3.11\n"
