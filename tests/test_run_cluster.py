"""One Dask cluster per local run: every dask: step gets its address in $DASK_SCHEDULER_URI.

Real LocalClusters and real step processes that connect to the address they were handed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import run_cli

# A step that connects to the scheduler it was handed and writes what it found there.
PROBE = (
    "import json, os, sys\\n"
    "address = os.environ.get('DASK_SCHEDULER_URI')\\n"
    "found = {'address': address, 'pid': os.getpid()}\\n"
    "if address:\\n"
    "    from distributed import Client\\n"
    "    with Client(address, timeout=20) as c:\\n"
    "        workers = c.scheduler_info()['workers'].values()\\n"
    "        found['workers'] = len(workers)\\n"
    "        found['threads'] = sum(w['nthreads'] for w in workers)\\n"
    "open(sys.argv[-1], 'w').write(json.dumps(found))\\n"
)

SPEC = f"""
metadata: {{name: run-cluster, version: "1"}}
steps:
  first:
    command: [python, -c, "{PROBE}", "{{outputs.out}}"]
    outputs: {{out: first.json}}
    dask: {{workers: 2, threads_per_worker: 1, memory_per_worker: 1Gi}}
  second:
    command: [python, -c, "{PROBE}", "{{inputs.up}}", "{{outputs.out}}"]
    inputs: {{up: steps.first.out}}
    outputs: {{out: second.json}}
    dask: {{workers: 1, threads_per_worker: 2, memory_per_worker: 1Gi}}
  single:
    command: [python, -c, "{PROBE}", "{{outputs.out}}"]
    outputs: {{out: single.json}}
    dask: {{workers: 1, threads_per_worker: 1}}
  plain:
    command: [python, -c, "{PROBE}", "{{inputs.up}}", "{{outputs.out}}"]
    inputs: {{up: steps.second.out}}
    outputs: {{out: plain.json}}
"""


def _run(tmp_path, *extra):
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_URI"}
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    work = tmp_path / "work"
    proc = subprocess.run([sys.executable, "-m", "reanimate.cli", "run", spec, "--workdir", work,
                           *extra], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    found = {name: json.loads((work / "results" / name / f"{name}.json").read_text())
             for name in ("first", "second", "single", "plain")}
    run_dir = json.loads(proc.stdout)["run"]
    found["provenance"] = json.loads((work / "runs" / run_dir.rsplit("/", 1)[-1] /
                                      "provenance.json").read_text())
    return found


def test_the_run_starts_one_cluster_for_its_dask_steps(tmp_path):
    found = _run(tmp_path)
    address = found["first"]["address"]
    assert address and address.startswith("tcp://127.0.0.1:")
    assert found["second"]["address"] == address  # the same cluster, not one per step
    # sized for the largest block: 2 workers (first), 2 threads per worker (second)
    assert found["first"]["workers"] == 2 and found["first"]["threads"] == 4
    assert found["single"]["address"] is None  # one worker, one thread: its own process
    assert found["plain"]["address"] is None  # no dask: block
    assert found["provenance"]["dask"] == {"scheduler": address, "started_by_run": True,
                                           "workers": 2, "threads_per_worker": 2,
                                           "steps": ["first", "second"]}
    from distributed import Client

    with pytest.raises((OSError, TimeoutError)):  # closed with the run
        Client(address, timeout=2)


def test_a_given_scheduler_serves_every_dask_step(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                      dashboard_address=":0") as cluster:
        found = _run(tmp_path, "--scheduler", cluster.scheduler_address)
        for name in ("first", "second", "single"):
            assert found[name]["address"] == cluster.scheduler_address
            assert found[name]["workers"] == 1
        assert found["plain"]["address"] is None
        assert found["provenance"]["dask"]["started_by_run"] is False
        with Client_of(cluster) as client:  # the user's cluster outlives the run
            assert len(client.scheduler_info()["workers"]) == 1


def Client_of(cluster):
    from distributed import Client

    return Client(cluster.scheduler_address, timeout=10)


def test_a_cached_run_starts_no_cluster(tmp_path):
    first = _run(tmp_path)
    assert first["provenance"]["dask"]["started_by_run"] is True
    again = _run(tmp_path)
    assert [s["status"] for s in again["provenance"]["steps"]] == ["cached"] * 4
    assert "dask" not in again["provenance"]  # nothing executed: no cluster was started
    assert {k: again[k] for k in ("first", "plain")} == {k: first[k] for k in ("first", "plain")}


def test_the_cwl_engine_refuses_a_scheduler(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent(SPEC))
    proc = run_cli("run", spec, "--engine", "cwl", "--scheduler", "tcp://127.0.0.1:1")
    assert proc.returncode == 2 and "--scheduler" in proc.stderr
    assert "Traceback" not in proc.stderr
