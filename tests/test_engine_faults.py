"""Nothing lost, nothing stale: the local engine under concurrency, signals, edits and tampering.

Real processes throughout: `reanimate run` as a subprocess, killed with real signals, eight of
them at once on one work directory, inputs edited while a run is on.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from reanimate.engines.local import run_spec
from reanimate.engines.plan import write_spec_lock
from reanimate.spec import load_spec

VARYING = "import os, sys; open(sys.argv[-1], 'wb').write(os.urandom(64))"
DERIVE = ("import hashlib, sys; d = open(sys.argv[1], 'rb').read(); "
          "open(sys.argv[-1], 'w').write(hashlib.sha256(d).hexdigest() + sys.argv[2])")
COPY_LATE = ("import shutil, sys, time; time.sleep(float(sys.argv[2])); "
             "shutil.copy(sys.argv[1], sys.argv[-1])")
# a step that starts a grandchild which would sleep on long after it, then works a while
FAMILY = ("import subprocess, sys, time; "
          "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
          "time.sleep(float(sys.argv[1])); open(sys.argv[-1], 'w').write('family ' + sys.argv[1])")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reanimate(*args, env=None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reanimate.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, **kwargs)


def marked_processes(token: str) -> list[int]:
    """pids of live processes whose environment holds `token` (a run and all it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if token.encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


def wait_gone(token: str, seconds: float = 15.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (alive := marked_processes(token)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def runs_of(workdir: Path) -> list[Path]:
    return [p for p in (workdir / "runs").glob("*/provenance.json") if p.parent.name != "latest"]


def provenance_matches_cache(workdir: Path) -> int:
    """Every provenance record parses and each output it names holds the digest it records."""
    checked = 0
    for path in sorted(runs_of(workdir)):
        record = json.loads(path.read_text())
        for step in record["steps"]:
            for output in step["outputs"].values():
                file = Path(output["path"])
                if file.is_file():
                    assert sha256(file) == output["sha256"], (path, step["name"])
                    checked += 1
    return checked


CONCURRENT = f"""
metadata: {{name: concurrent, version: "1"}}
parameters: {{tag: a}}
datasets:
  raw: {{files: [{{path: data.txt}}]}}
steps:
  varying:
    command: [python, -c, "{VARYING}", "{{parameters.tag}}", "{{outputs.out}}"]
    parameters: {{tag: "${{parameters.tag}}"}}
    outputs: {{out: random.bin}}
  derive:
    command: [python, -c, "{DERIVE}", "{{inputs.src}}", "{{parameters.tag}}", "{{outputs.out}}"]
    inputs: {{src: steps.varying.out}}
    parameters: {{tag: "${{parameters.tag}}"}}
    outputs: {{out: derived.txt}}
  copy:
    command: [python, -c, "{COPY_LATE}", "{{inputs.src}}", "0.2", "{{outputs.out}}"]
    inputs: {{src: datasets.raw}}
    outputs: {{out: copy.txt}}
"""


def test_eight_concurrent_runs_on_one_workdir_five_times(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(CONCURRENT)
    (tmp_path / "data.txt").write_text("payload\n")
    workdir = tmp_path / "work"
    seen: set[Path] = set()
    for repetition in range(5):
        procs = [reanimate("run", spec, "--workdir", workdir, "--set", f"tag=r{repetition}")
                 for _ in range(8)]
        executed = 0
        for proc in procs:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err
            assert "Traceback" not in err
            summary = json.loads(out)
            assert not summary["failed"]
            executed += "varying" in summary["executed"]
        assert executed == 1  # one run made the random output, seven adopted it
        runs = set(runs_of(workdir)) - seen
        seen |= runs
        assert len(runs) == 8
        # the eight records agree on the random output's digest: what the cache holds
        digests = {step["outputs"]["out"]["sha256"] for run in runs
                   for step in json.loads(run.read_text())["steps"] if step["name"] == "varying"}
        assert len(digests) == 1
    assert provenance_matches_cache(workdir) >= 8 * 5 * 3
    assert not list((workdir / "tmp").iterdir())  # no scratch folder left behind


FAULTS = f"""
metadata: {{name: faults, version: "1"}}
datasets:
  raw: {{files: [{{path: data.txt}}]}}
steps:
  first:
    command: [python, -c, "{COPY_LATE}", "{{inputs.src}}", "0.3", "{{outputs.out}}"]
    inputs: {{src: datasets.raw}}
    outputs: {{out: first.txt}}
  family:
    command: [python, -c, "{FAMILY}", "2.0", "{{outputs.out}}"]
    outputs: {{out: family.txt}}
  last:
    command: [python, -c, "{COPY_LATE}", "{{inputs.src}}", "0.5", "{{outputs.out}}"]
    inputs: {{src: steps.family.out}}
    outputs: {{out: last.txt}}
"""


def test_sigkill_and_sigterm_at_random_points_leave_no_process_and_no_stale_cache(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(FAULTS)
    (tmp_path / "data.txt").write_text("data\n")
    clean = run_spec(load_spec(spec), tmp_path / "clean")
    assert not clean.failed
    expected = {p.name: sha256(p) for p in (tmp_path / "clean" / "results").glob("*/*.txt")}
    workdir = tmp_path / "work"
    rng = random.Random(20261201)
    for attempt in range(6):
        token = f"fault-{uuid.uuid4().hex}"
        env = dict(os.environ, REANIMATE_FAULT_TOKEN=token)
        proc = reanimate("run", spec, "--workdir", workdir, "--force", "--jobs", "2", env=env)
        time.sleep(rng.uniform(0.3, 3.0))
        sig = signal.SIGKILL if attempt % 2 == 0 else signal.SIGTERM
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert wait_gone(token) == [], f"processes of the run survive {sig!r}"
        assert "Traceback" not in err
        if sig == signal.SIGTERM and proc.returncode != 0:
            assert proc.returncode == 128 + signal.SIGTERM, err
            assert "terminated" in err and "provenance" in err
            latest = json.loads((workdir / "runs" / "latest" / "provenance.json").read_text())
            statuses = {s["name"]: s["status"] for s in latest["steps"]}
            assert "pending" not in {s for n, s in statuses.items()
                                     if any(r["name"] == n and r["end"] for r in latest["steps"])}
    token = f"fault-{uuid.uuid4().hex}"
    final = reanimate("run", spec, "--workdir", workdir, env=dict(os.environ,
                                                                 REANIMATE_FAULT_TOKEN=token))
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    assert wait_gone(token) == []
    got = {p.name: sha256(p) for p in (workdir / "results").glob("*/*.txt")}
    assert got == expected
    provenance_matches_cache(workdir)


EDITED = f"""
metadata: {{name: edited, version: "1"}}
datasets:
  raw: {{files: [{{path: data.txt}}]}}
steps:
  slow:
    command: [python, -c, "{COPY_LATE}", "{{inputs.src}}", "1.5", "{{outputs.out}}"]
    inputs: {{src: "file:seed.txt"}}
    outputs: {{out: slow.txt}}
  reader:
    command: [python, -c, "{COPY_LATE}", "{{inputs.src}}", "0", "{{outputs.out}}"]
    inputs: {{src: datasets.raw, after: steps.slow.out}}
    outputs: {{out: read.txt}}
"""


def test_an_input_edited_during_a_run_never_poisons_the_cache(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(EDITED.replace('"{inputs.src}", "0", "{outputs.out}"',
                                   '"{inputs.src}", "0", "{inputs.after}", "{outputs.out}"'))
    (tmp_path / "seed.txt").write_text("seed\n")
    data = tmp_path / "data.txt"
    data.write_text("original\n")
    workdir = tmp_path / "work"
    proc = reanimate("run", spec, "--workdir", workdir)
    time.sleep(0.8)  # the run hashed data.txt and is in the slow step
    data.write_text("EDITED!!\n")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "input data.txt changed since the run began" in err
    data.write_text("original\n")  # restored: the original digest again
    report = run_spec(load_spec(spec), workdir)
    assert report.executed == ["reader"]
    assert (workdir / "results" / "reader" / "read.txt").read_text() == "original\n"


TAMPER = f"""
metadata: {{name: tamper, version: "1"}}
datasets:
  raw: {{files: [{{path: data.txt}}]}}
steps:
  copy:
    command: [python, -c, "{COPY_LATE}", "{{inputs.src}}", "0", "{{outputs.out}}"]
    inputs: {{src: datasets.raw}}
    outputs: {{out: copy.txt}}
"""


def test_a_same_size_edit_with_restored_timestamps_is_refused_by_the_lock(tmp_path, cli):
    spec = tmp_path / "spec.yaml"
    spec.write_text(TAMPER)
    data = tmp_path / "data.txt"
    data.write_text("genuine\n")
    write_spec_lock(load_spec(spec))
    workdir = tmp_path / "work"
    assert run_spec(load_spec(spec), workdir).executed == ["copy"]
    stat = data.stat()
    data.write_text("forged!\n")  # same size
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # touch -r
    for extra in ([], ["--force"]):
        proc = cli("run", spec, "--workdir", workdir, *extra)
        assert proc.returncode == 2
        assert "does not match the lock" in proc.stderr
    assert (workdir / "results" / "copy" / "copy.txt").read_text() == "genuine\n"


def test_a_hand_edited_hash_memo_cannot_vouch_for_a_file(tmp_path, cli):
    spec = tmp_path / "spec.yaml"
    spec.write_text(TAMPER)
    data = tmp_path / "data.txt"
    data.write_text("genuine\n")
    write_spec_lock(load_spec(spec))
    workdir = tmp_path / "work"
    assert run_spec(load_spec(spec), workdir).executed == ["copy"]
    locked = json.loads((tmp_path / "spec.lock.json").read_text())["files"]["data.txt"]
    data.write_text("forged!\n")
    memo_path = workdir / "hashes.json"
    memo = json.loads(memo_path.read_text())
    stat = data.stat()
    for key, entry in memo.items():  # claim the forged file has the locked digest
        if key.endswith("data.txt"):
            memo[key] = [[stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns],
                         locked["sha256"], entry[2]]
    memo_path.write_text(json.dumps(memo))
    proc = cli("run", spec, "--workdir", workdir)
    assert proc.returncode == 2 and "does not match the lock" in proc.stderr


def test_undeclared_files_are_not_cached_and_outside_links_are_refused(tmp_path):
    spec = tmp_path / "spec.yaml"
    leave = ("import os, sys; open(sys.argv[-1], 'w').write('x'); "
             "open('stray.txt', 'w').write('not declared')")
    link = "import os, sys; os.symlink('/etc/hostname', sys.argv[-1])"
    spec.write_text(f"""
metadata: {{name: outputs, version: "1"}}
steps:
  tidy:
    command: [python, -c, "{leave}", "{{outputs.out}}"]
    outputs: {{out: out.txt}}
  link:
    command: [python, -c, "{link}", "{{outputs.out}}"]
    outputs: {{out: linked.txt}}
""")
    workdir = tmp_path / "work"
    report = run_spec(load_spec(spec), workdir)
    assert report.executed == ["tidy"] and report.failed == ["link"]
    entry = workdir / "results" / "tidy"
    assert sorted(p.name for p in entry.iterdir()) == [".reanimate-meta.json", "out.txt"]
    assert "outside the step's folder" in report.records["link"].message
    assert not list((workdir / "tmp").iterdir())


def test_a_cache_meta_of_the_wrong_shape_is_a_miss_not_a_crash(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(TAMPER)
    (tmp_path / "data.txt").write_text("genuine\n")
    workdir = tmp_path / "work"
    first = run_spec(load_spec(spec), workdir)
    meta = Path(first.records["copy"].outputs["out"]["path"]).parent / ".reanimate-meta.json"
    for broken in ("[1, 2]", '{"outputs": 5}', '{"outputs": {"out": {"path": 3}}}', "{"):
        meta.write_text(broken)
        again = run_spec(load_spec(spec), workdir)
        assert again.executed == ["copy"]
        meta = Path(again.records["copy"].outputs["out"]["path"]).parent / ".reanimate-meta.json"


def test_workdir_that_is_a_file_is_one_clear_error(tmp_path, cli):
    spec = tmp_path / "spec.yaml"
    spec.write_text(TAMPER)
    (tmp_path / "data.txt").write_text("x\n")
    (tmp_path / "afile").write_text("keep me\n")
    proc = cli("run", spec, "--workdir", tmp_path / "afile")
    assert proc.returncode == 2
    assert "exists and is not a folder" in proc.stderr
    assert (tmp_path / "afile").read_text() == "keep me\n"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_timeout_or_interrupt_ends_the_grandchildren_too(tmp_path, sig):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""
metadata: {{name: family, version: "1"}}
steps:
  family:
    command: [python, -c, "{FAMILY}", "30", "{{outputs.out}}"]
    outputs: {{out: family.txt}}
    resources: {{timeout_seconds: 2}}
""")
    token = f"timeout-{uuid.uuid4().hex}"
    env = dict(os.environ, REANIMATE_FAULT_TOKEN=token)
    proc = reanimate("run", spec, "--workdir", tmp_path / "work", env=env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "timed out after 2 s" in err
    assert wait_gone(token) == []
    # the interrupt: no step timeout to race with; signal once the step's family is up
    spec.write_text(spec.read_text().replace("timeout_seconds: 2", "timeout_seconds: 120"))
    token = f"interrupt-{uuid.uuid4().hex}"
    env = dict(os.environ, REANIMATE_FAULT_TOKEN=token)
    proc = reanimate("run", spec, "--workdir", tmp_path / "work2", env=env)
    deadline = time.monotonic() + 60
    # the run, the step's guardian, the step and its grandchild
    while len(marked_processes(token)) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig
    assert wait_gone(token) == []
    record = json.loads((tmp_path / "work2" / "runs" / "latest" / "provenance.json").read_text())
    assert record["steps"][0]["status"] == "interrupted"


FILL = ("import sys\n"
        "with open(sys.argv[-1], 'wb') as f:\n"
        "    try:\n"
        "        while True:\n"
        "            f.write(b'x' * 4096); f.flush()\n"
        "    except OSError:\n"
        "        pass\n")


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 1 MiB filesystem (tmpfs) under tmp_path, unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_fails_the_step_keeps_provenance_and_leaves_no_leftover(tmp_path,
                                                                             tiny_disk):
    (tmp_path / "fill.py").write_text(FILL)
    spec = tmp_path / "spec.yaml"
    spec.write_text("""
metadata: {name: full, version: "1"}
parameters: {size: 1}
steps:
  fill:
    command: [python, "{inputs.script}", "{parameters.size}", "{outputs.out}"]
    inputs: {script: "file:fill.py"}
    parameters: {size: "${parameters.size}"}
    outputs: {out: big.bin}
""")
    workdir = tiny_disk / "work"
    proc = subprocess.run([sys.executable, "-m", "reanimate.cli", "run", str(spec),
                           "--workdir", str(workdir)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "fill: failed" in proc.stderr
    record = json.loads((workdir / "runs" / "latest" / "provenance.json").read_text())
    assert record["steps"][0]["status"] == "failed"
    assert not list((workdir / "tmp").iterdir())
    assert not [p for p in (workdir / "cache").rglob("*") if p.is_file()
                and not p.name.endswith(".lock")]
    # the space is free again: a small step runs on the same disk
    small = tmp_path / "small.yaml"
    small.write_text(TAMPER)
    (tmp_path / "data.txt").write_text("fits\n")
    assert run_spec(load_spec(small), workdir).executed == ["copy"]
