"""Steps inside their images: `reanimate run --containers docker` (and cwltool with containers).

The AGC chain on a small generated dataset (datasets, histograms on a Dask LocalCluster,
statmodel, fit) run inside the flagship's `analysis` image gives the bytes of the same chain run
natively; the image id lands in the provenance and in the cache key; a container runs as the
invoking uid, with no network, read-only inputs and a read-only root; no container outlives a
timeout or a SIGTERM of the run; a missing daemon or image is one line and exit 2. The REANA
exports reference images by digest and leave pinned steps out. Everything runs against the real
Docker daemon (tests/conftest.py: docker_daemon, analysis_image); nothing is mocked.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from engine_specs import small_flagship

from reanimate.engines.cwl import export_cwl, run_cwl
from reanimate.engines.local import run_spec
from reanimate.engines.plan import key_changes, make_plan, write_spec_lock
from reanimate.engines.preview import preview
from reanimate.engines.reana import export_reana
from reanimate.hashing import sha256_file
from reanimate.lock import write_images, write_pin
from reanimate.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
FLAGSHIP = REPO / "specs" / "agc-ttbar.yaml"
LABEL = "io.reanimate.step"


def cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "reanimate.cli", *map(str, args)],
                          capture_output=True, text=True, check=False, cwd=cwd,
                          env=env or dict(os.environ))


def lock_image(spec: Path, entry: dict, name: str = "analysis") -> None:
    """The spec's lock (input digests) with `entry` as the image of container `name`."""
    write_spec_lock(load_spec(spec))
    write_images(spec, {name: dict(entry)})


def tree_bytes(root: Path) -> dict[str, bytes]:
    if root.is_file():
        return {"": root.read_bytes()}
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def outputs(loaded, results: Path) -> dict[str, dict[str, bytes]]:
    """STEP/OUTPUT -> {file in it: bytes} under a work dir's results/."""
    return {f"{name}/{oname}": tree_bytes(results / name / path.rstrip("/"))
            for name, step in loaded.spec.steps.items() for oname, path in step.outputs.items()}


def containers_of(client, step: str) -> list:
    return client.containers.list(all=True, filters={"label": f"{LABEL}={step}"})


# -- the AGC chain, natively and inside the image ----------------------------------------------
@pytest.fixture(scope="module")
def small_agc(tmp_path_factory, analysis_image):
    """The flagship without training and plots, on 10,000 ttbar events, with its image locked."""
    root = tmp_path_factory.mktemp("agc-containers")
    doc = small_flagship()
    spec = root / "agc-small.yaml"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    lock_image(spec, analysis_image)
    return spec


@pytest.fixture(scope="module")
def native_and_docker(small_agc):
    root, loaded = small_agc.parent, load_spec(small_agc)
    native = run_spec(loaded, root / "native")
    assert not native.failed, native.records
    docker = run_spec(loaded, root / "docker", containers="docker")
    assert not docker.failed, {n: (r.message, r.logs) for n, r in docker.records.items()}
    return loaded, native, docker


def test_every_output_inside_the_image_has_the_native_bytes(native_and_docker):
    loaded, native, docker = native_and_docker
    assert docker.executed == ["datasets", "histograms", "statmodel", "fit"]
    mine = outputs(loaded, native.run_dir.parents[1] / "results")
    theirs = outputs(loaded, docker.run_dir.parents[1] / "results")
    assert set(mine) == {"datasets/samples", "histograms/histograms", "statmodel/workspace",
                         "statmodel/hs3", "statmodel/report", "fit/results"}
    for key in mine:
        assert mine[key] and mine[key] == theirs[key], key
    fit = json.loads(theirs["fit/results"][""])
    assert fit["converged"] and fit["poi"]["name"] == "ttbar_norm"


def test_provenance_records_the_image_and_the_key_differs_only_by_it(native_and_docker,
                                                                     analysis_image):
    loaded, native, docker = native_and_docker
    record = json.loads((docker.run_dir / "provenance.json").read_text())
    assert record["containers"]["runtime"] == "docker" and record["containers"]["server"]
    plain = json.loads((native.run_dir / "provenance.json").read_text())
    assert "containers" not in plain
    for step, native_step in zip(record["steps"], plain["steps"], strict=True):
        assert step["image"] == {"name": analysis_image["image"], "id": analysis_image["id"]}
        assert "image" not in native_step
        assert step["command"][:2] == ["python", "-m"]  # the image's python, not ours
        assert native_step["command"][0] == sys.executable
        assert step["key"] != native_step["key"]
        name = step["name"]
        cached = native.run_dir.parents[1] / "cache" / name / native_step["key"]
        a = json.loads((cached / ".reanimate-meta.json").read_text())["key_payload"]
        in_image = docker.run_dir.parents[1] / "cache" / name / step["key"]
        b = json.loads((in_image / ".reanimate-meta.json").read_text())["key_payload"]
        assert b.pop("image") == analysis_image["id"]
        assert a == b, name  # same definition, parameters, input digests, code, packages
    assert key_changes(a, {**a, "image": analysis_image["id"]}) == [
        f"image none -> {analysis_image['id'].removeprefix('sha256:')[:12]}"]


def test_a_second_container_run_is_served_from_the_cache(native_and_docker, analysis_image):
    loaded, _, docker = native_and_docker
    workdir = docker.run_dir.parents[1]
    again = run_spec(loaded, workdir, containers="docker")
    assert again.executed == [] and again.with_status("cached") == list(loaded.spec.steps)
    # a native run in that work dir would not take the container results for its own
    steps = {s["name"]: s for s in preview(make_plan(loaded), workdir)["steps"]}
    short = analysis_image["id"].removeprefix("sha256:")[:12]
    assert steps["datasets"]["status"] == "run"
    assert steps["datasets"]["reasons"] == [f"image {short} -> none"]


def test_cwltool_inside_the_image_gives_the_same_bytes(native_and_docker, analysis_image):
    loaded, native, _ = native_and_docker
    root = loaded.path.parent
    cwl = run_cwl(loaded, root / "cwl-docker", container=True)
    log = (root / "cwl-docker" / "cwltool.log").read_text()
    # cwltool ran every tool in a container of the locked image, without network
    assert log.count(f"    {analysis_image['id']} \\") == len(loaded.spec.steps)
    assert log.count("--net=none") == len(loaded.spec.steps)
    mine = outputs(loaded, native.run_dir.parents[1] / "results")
    assert len(cwl) == len(mine) == 6
    for key, info in cwl.items():
        step, oname = key.split("__")
        assert tree_bytes(Path(info["path"])) == mine[f"{step}/{oname}"], key


# -- what a container may and may not do --------------------------------------------------------
PROBE = r"""
import json, os, socket, sys
facts = {"uid": os.getuid(), "gid": os.getgid(), "python": sys.executable, "cwd": os.getcwd(),
         "env": {k: os.environ.get(k) for k in ("PATH", "VIRTUAL_ENV", "HOME", "PYTHONHASHSEED",
                                                 "REANIMATE_STEP")},
         "repository visible": os.path.exists(sys.argv[3])}
def attempt(what, action):
    try:
        action()
        facts[what] = "ok"
    except OSError as exc:
        facts[what] = type(exc).__name__ + ":" + str(exc.errno)
attempt("write input", lambda: open(sys.argv[1], "a").write("tampered"))
attempt("write root", lambda: open("/reanimate-probe", "w").write("x"))
attempt("write tmp", lambda: open("/tmp/reanimate-probe", "w").write("x"))
attempt("internet", lambda: socket.create_connection(("1.1.1.1", 53), timeout=5).close())
attempt("host loopback", lambda: socket.create_connection(("127.0.0.1", int(sys.argv[2])),
                                                          timeout=5).close())
attempt("own loopback", lambda: socket.socket().bind(("127.0.0.1", 0)))
open(sys.argv[-1], "w").write(json.dumps(facts))
"""


def probe_spec(root: Path, image: str, port: int, name: str = "probe") -> Path:
    (root / "data.txt").write_text("abc\n")
    doc = {"metadata": {"name": "probe", "version": "1"},
           "containers": {"env": {"image": image}},
           "datasets": {"raw": {"files": [{"path": "data.txt"}]}},
           "steps": {name: {"container": "env",
                            "command": ["python", "-c", PROBE, "{inputs.src}",
                                        "{parameters.port}", str(REPO / "src"),
                                        "{outputs.out}"],
                            "inputs": {"src": "datasets.raw"},
                            "parameters": {"port": port},
                            "outputs": {"out": "facts.json"}}}}
    spec = root / "probe.yaml"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    return spec


@pytest.fixture
def host_server():
    """A TCP server on the host's 127.0.0.1: a container must not reach it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    yield server
    server.close()


def test_a_container_has_no_network_read_only_inputs_and_root_and_the_callers_uid(
        tmp_path, python_image, docker_daemon, host_server):
    # an image whose own user is someone else: the step must still run as the invoking user.
    # The small Python image (what a container may do does not depend on the image; on vfs a
    # derived 2 GB analysis image costs ~100 s); the analysis image's own Python and
    # environment are tested in test_containers_build.py
    other, _ = docker_daemon.images.build(
        fileobj=io.BytesIO(f"FROM {python_image['id']}\nUSER 4321:4321\n".encode()),
        tag="reanimate-test/other-user:1", rm=True)
    assert other.attrs["Config"]["User"] == "4321:4321"
    port = host_server.getsockname()[1]
    spec = probe_spec(tmp_path, "reanimate-test/other-user:1", port)
    lock_image(spec, {"image": "reanimate-test/other-user:1", "id": other.id}, "env")
    try:
        report = run_spec(load_spec(spec), tmp_path / "w", containers="docker")
    finally:
        docker_daemon.images.remove(other.id, force=True)  # only a tag and a USER line
    assert not report.failed, report.records["probe"].message
    out = tmp_path / "w" / "results" / "probe" / "facts.json"
    facts = json.loads(out.read_text())
    assert (facts["uid"], facts["gid"]) == (os.getuid(), os.getgid())
    assert out.resolve().stat().st_uid == os.getuid()
    assert facts["write input"] == "OSError:30"  # EROFS: the input is mounted read-only
    assert (tmp_path / "data.txt").read_text() == "abc\n"
    assert facts["write root"] == "OSError:30" and facts["write tmp"] == "ok"
    assert facts["internet"].startswith("OSError:101")  # ENETUNREACH: no network at all
    assert facts["host loopback"] == "ConnectionRefusedError:111"  # its own loopback only
    assert facts["own loopback"] == "ok"
    with pytest.raises(BlockingIOError):
        host_server.accept()  # nothing ever connected to the host's server
    assert facts["python"].startswith("/usr/") and not facts["repository visible"]
    assert facts["cwd"].startswith(str(tmp_path / "w" / "tmp"))
    env = facts["env"]
    assert env["PYTHONHASHSEED"] == "0" and env["REANIMATE_STEP"] == "probe"
    assert env["HOME"] == "/tmp" and str(Path(sys.executable).parent) not in env["PATH"]
    assert env.get("VIRTUAL_ENV") != os.environ.get("VIRTUAL_ENV", "-")
    assert containers_of(docker_daemon, "probe") == []


SLEEP = "import sys, time; print('started', flush=True); time.sleep(600)"


def sleep_spec(root: Path, image: str, name: str, timeout: int | None = None) -> Path:
    step = {"container": "env", "command": ["python", "-c", SLEEP, "{outputs.out}"],
            "outputs": {"out": "never.txt"}}
    if timeout:
        step["resources"] = {"timeout_seconds": timeout}
    doc = {"metadata": {"name": "sleep", "version": "1"},
           "containers": {"env": {"image": image}}, "steps": {name: step}}
    spec = root / "sleep.yaml"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    return spec


def test_a_timeout_kills_and_removes_the_container(tmp_path, python_image, docker_daemon):
    spec = sleep_spec(tmp_path, python_image["image"], "sleepy_timeout", timeout=3)
    lock_image(spec, python_image, "env")
    report = run_spec(load_spec(spec), tmp_path / "w", containers="docker")
    record = report.records["sleepy_timeout"]
    assert report.failed == ["sleepy_timeout"] and record.message == "timed out after 3 s"
    assert Path(record.logs["stdout"]).read_text() == "started\n"
    assert containers_of(docker_daemon, "sleepy_timeout") == []


def wait_for(condition, what: str, limit: float = 300.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_no_container_outlives_an_ended_run(tmp_path, python_image, docker_daemon, sig):
    step = f"sleepy_{sig.name.lower()}"
    spec = sleep_spec(tmp_path, python_image["image"], step)
    lock_image(spec, python_image, "env")
    proc = subprocess.Popen([sys.executable, "-m", "reanimate.cli", "run", str(spec),
                             "--containers", "docker", "--workdir", str(tmp_path / "w")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # runs/latest points to a run once it has ended: look for the log of the running one
        def started():
            assert proc.poll() is None, proc.communicate()[1]
            return any("started" in log.read_text()
                       for log in (tmp_path / "w" / "runs").glob(f"*/logs/{step}.stdout"))

        wait_for(started, "the step to start", 900)
        assert [c.status for c in containers_of(docker_daemon, step)] == ["running"]
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == (128 + sig if sig == signal.SIGTERM else -sig), stderr
    # SIGKILL: the step's guardian sees the engine gone and ends the runner, which removes it
    wait_for(lambda: containers_of(docker_daemon, step) == [], "the container to go", 60)


# -- refusals: one line, exit 2 -------------------------------------------------------------------
def tiny_spec(root: Path, container: bool = True) -> Path:
    doc = {"metadata": {"name": "tiny", "version": "1"},
           "containers": {"env": {"image": "reanimate-test/tiny:1"}},
           "steps": {"hello": {"command": ["python", "-c", "print(1)", "{outputs.out}"],
                               "outputs": {"out": "out.txt"}}}}
    if container:
        doc["steps"]["hello"]["container"] = "env"
    spec = root / "tiny.yaml"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    return spec


def one_line(proc) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("engine", ["local", "cwl"])
def test_docker_not_running_is_one_line(tmp_path, engine):
    spec = tiny_spec(tmp_path)
    lock_image(spec, {"image": "reanimate-test/tiny:1", "id": "sha256:" + "0" * 64}, "env")
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent.sock")
    proc = cli("run", spec, "--engine", engine, "--containers", "docker", "-w", tmp_path / "w",
               env=env)
    line = one_line(proc) if engine == "local" else proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2
    assert line.startswith("error: docker is not available") and "--containers" in line


def test_an_image_the_lock_does_not_record_is_one_line(tmp_path, docker_daemon):
    spec = tiny_spec(tmp_path)
    write_spec_lock(load_spec(spec))
    line = one_line(cli("run", spec, "--containers", "docker", "-w", tmp_path / "w"))
    assert "records no image for container 'env'" in line
    assert f"reanimate containers build {spec}" in line
    assert not (tmp_path / "w").exists()  # refused before anything ran or was written


def test_an_image_the_daemon_does_not_have_is_one_line(tmp_path, docker_daemon):
    spec = tiny_spec(tmp_path)
    missing = "sha256:" + "e" * 64
    lock_image(spec, {"image": "reanimate-test/tiny:1", "id": missing}, "env")
    for engine in ("local", "cwl"):
        proc = cli("run", spec, "--engine", engine, "--containers", "docker", "-w", tmp_path / "w")
        line = one_line(proc) if engine == "local" else proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 2 and line.startswith("error: --containers docker: image ")
        assert missing in line and "not in the Docker daemon" in line
        assert "reanimate containers build" in line


def test_a_step_without_a_container_and_an_unknown_mode_are_refused(tmp_path, docker_daemon):
    spec = tiny_spec(tmp_path, container=False)
    lock_image(spec, {"image": "reanimate-test/tiny:1", "id": "sha256:" + "1" * 64}, "env")
    line = one_line(cli("run", spec, "--containers", "docker", "-w", tmp_path / "w"))
    assert line.startswith("error: step 'hello' has no container")
    line = one_line(cli("run", spec, "--containers", "podman", "-w", tmp_path / "w"))
    assert line == "error: --containers 'podman': expected one of none, docker"


# -- exports: images by digest, pinned steps left out ---------------------------------------------
TRAIN = "import sys; open(sys.argv[-1], 'w').write('trained ' + open(sys.argv[1]).read())"
USE = "import sys; open(sys.argv[-1], 'w').write(open(sys.argv[1]).read().upper())"
PINNED = f"""
metadata: {{name: pinned, version: "1"}}
containers:
  env: {{image: "reanimate/env:1"}}
datasets:
  raw:
    files: [{{path: data.txt}}]
steps:
  train:
    container: env
    command: [python, -c, "{TRAIN}", "{{inputs.src}}", "{{outputs.model}}"]
    inputs: {{src: datasets.raw}}
    outputs: {{model: models/model.json}}
  use:
    container: env
    command: [python, -c, "{USE}", "{{inputs.model}}", "{{outputs.out}}"]
    inputs: {{model: steps.train.model}}
    outputs: {{out: used/out.txt}}
"""
ENTRY = {"image": "reanimate/env:1", "id": "sha256:" + "a" * 64,
         "pushed": {"registry.example.org/env": "sha256:" + "b" * 64}}
BY_DIGEST = "registry.example.org/env@sha256:" + "b" * 64


@pytest.fixture
def pinned(tmp_path: Path) -> Path:
    (tmp_path / "data.txt").write_text("abc\n")
    (tmp_path / "pinned").mkdir()
    (tmp_path / "pinned" / "model.json").write_text("registered model v3\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(PINNED)
    write_spec_lock(load_spec(spec))
    write_images(spec, {"env": ENTRY})
    write_pin(spec, "train", {"name": "env-model", "version": "3", "files": {
        "model": {"path": "pinned/model.json",
                  "sha256": sha256_file(tmp_path / "pinned" / "model.json")}}})
    return spec


def test_reana_serial_export_leaves_a_pinned_step_out_and_reads_its_files(pinned):
    root = pinned.parent
    written = export_reana(load_spec(pinned), root / "reana.yaml", "serial")
    doc = yaml.safe_load(written["reana"].read_text())
    steps = doc["workflow"]["specification"]["steps"]
    assert [s["name"] for s in steps] == ["use"]
    assert steps[0]["environment"] == BY_DIGEST
    assert "../../pinned/model.json" in steps[0]["commands"][0]
    assert "pinned/model.json" in doc["inputs"]["files"]
    assert doc["outputs"]["files"] == ["results/use/used/out.txt"]
    assert "train" not in written["feature"].read_text()
    # run it as REANA would: inputs uploaded at the workspace root, each command under bash
    workspace = root / "workspace"
    for rel in doc["inputs"]["files"]:
        (workspace / rel).parent.mkdir(parents=True, exist_ok=True)
        (workspace / rel).write_bytes((root / rel).read_bytes())
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["bash", "-c", f"cd {workspace} && {steps[0]['commands'][0]}"],
                          env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    local = run_spec(load_spec(pinned), root / "local")
    assert local.records["train"].status == "pinned"
    assert (workspace / "results/use/used/out.txt").read_bytes() == \
        (root / "local/results/use/used/out.txt").read_bytes() == b"REGISTERED MODEL V3\n"


def test_reana_cwl_export_and_cwl_reference_images_by_digest_and_upload_pins(pinned):
    root = pinned.parent
    written = export_reana(load_spec(pinned), root / "reana.yaml", "cwl")
    doc = yaml.safe_load(written["reana"].read_text())
    assert "pinned/model.json" in doc["inputs"]["files"]
    assert doc["outputs"]["files"] == ["outputs/out.txt"]
    main = yaml.safe_load((root / "workflow" / "main.cwl").read_text())
    assert list(main["steps"]) == ["use"]
    assert not (root / "workflow" / "steps" / "train.cwl").exists()
    tool = yaml.safe_load((root / "workflow" / "steps" / "use.cwl").read_text())
    assert tool["hints"]["DockerRequirement"] == {"dockerPull": BY_DIGEST,
                                                  "dockerImageId": ENTRY["id"]}
    job = yaml.safe_load((root / "job.yml").read_text())
    assert job["pinned_train_model"]["location"] == "pinned/model.json"


def test_an_image_built_but_not_pushed_keeps_its_tag_and_adds_its_id(tmp_path):
    spec = tmp_path / "spec.yaml"
    (tmp_path / "data.txt").write_text("abc\n")
    spec.write_text(PINNED)
    write_images(spec, {"env": {"image": "reanimate/env:1", "id": ENTRY["id"]}})
    written = export_cwl(load_spec(spec), tmp_path / "cwl")
    tool = yaml.safe_load(written["steps/use"].read_text())
    assert tool["hints"]["DockerRequirement"] == {"dockerPull": "reanimate/env:1",
                                                  "dockerImageId": ENTRY["id"]}
    assert "InlineJavascriptRequirement" not in tool["requirements"]
    serial = export_reana(load_spec(spec), tmp_path / "reana.yaml", "serial")
    steps = yaml.safe_load(serial["reana"].read_text())["workflow"]["specification"]["steps"]
    assert [s["environment"] for s in steps] == ["reanimate/env:1"] * 2
