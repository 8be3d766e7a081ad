"""Campaign faults: SIGKILL and resume (no point completed twice, the same table as an
uninterrupted run), a second run on the same folder, failing points, a foreign store."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from test_campaign import cli, patchset_campaign

from reanimate.reinterpret.campaign import load_campaign
from reanimate.reinterpret.campaign_plots import results_csv
from reanimate.reinterpret.campaign_run import run_campaign
from reanimate.reinterpret.store import open_store

POINTS = 12


def _done(out: Path) -> int:
    try:
        with sqlite3.connect(out / "campaign.sqlite", timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM points WHERE status = 'done'").fetchone()[0]
    except sqlite3.Error:
        return 0  # not created yet


def test_sigkill_then_resume(tmp_path):
    path = patchset_campaign(tmp_path / "c", points=POINTS)
    out = tmp_path / "killed"
    run = subprocess.Popen([sys.executable, "-m", "reanimate.cli", "campaign", "run", path,
                            "-o", out, "--workers", "2"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        while _done(out) < 2:
            assert run.poll() is None, run.stderr.read()
            assert time.time() < deadline, "no point finished in 120 s"
            time.sleep(0.05)
        os.killpg(run.pid, signal.SIGKILL)  # the CLI, its local cluster, its workers
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    before = {p["digest"]: p for p in _points(out)}
    stored = {d for d, p in before.items() if p["status"] == "done"}
    assert 2 <= len(stored) < POINTS, f"killed too late: {len(stored)} done"

    resumed = cli("campaign", "run", path, "-o", out, "--workers", "2", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{POINTS} done" in resumed.stderr

    with open_store(out) as store:
        points = {p["digest"]: p for p in store.current()}
        completed = [e["digest"] for e in store.events("completed")]
        runs = [e for e in store.events() if e["event"] == "run"]
        started_after = {e["digest"] for e in store.events("started") if e["id"] > runs[-1]["id"]}
    assert sorted(completed) == sorted(points), "every point completed exactly once"
    assert not stored & started_after, "points stored before the kill were started again"
    assert all(p["status"] == "done" and p["attempts"] >= 1 for p in points.values())
    for digest in stored:  # untouched by the resume
        assert points[digest]["record"] == before[digest]["record"]
        assert points[digest]["attempts"] == 1
    interrupted = [d for d, p in before.items() if p["status"] == "running"]
    print(f"killed with {len(stored)} stored, {len(interrupted)} running")
    assert all(points[d]["attempts"] >= 2 for d in interrupted), "restarts are counted"

    campaign, resolved = load_campaign(path)
    clean = tmp_path / "clean"
    counts = run_campaign(campaign, resolved, clean, workers=2)
    assert counts["done"] == POINTS
    assert results_csv(out) == results_csv(clean)


def _points(out: Path) -> list[dict]:
    with open_store(out) as store:
        return store.current()


def test_failing_point_is_stored_and_retried_on_request(tmp_path):
    path = patchset_campaign(tmp_path / "c", points=3, labels=("mass",))
    patchset = json.loads((tmp_path / "c" / "patchset.json").read_text())
    patchset["patches"][1]["patch"][0]["path"] = "/channels/7/samples/1"  # does not apply
    (tmp_path / "c" / "patchset.json").write_text(json.dumps(patchset))
    out = tmp_path / "out"
    proc = cli("campaign", "run", path, "-o", out, "--workers", "1")
    assert proc.returncode == 1 and "2 done, 1 failed" in proc.stderr, proc.stderr
    status = cli("campaign", "status", out)
    assert "failed sig_300" in status.stdout, status.stdout
    csv_text = cli("campaign", "results", out, "--csv").stdout
    assert ",failed," in csv_text
    # not rerun by default ...
    again = cli("campaign", "run", path, "-o", out, "--workers", "1")
    assert again.returncode == 1
    with open_store(out) as store:
        assert len(store.events("failed")) == 1
    # ... but on request (still failing: it is the input's fault)
    retry = cli("campaign", "run", path, "-o", out, "--workers", "1", "--retry-failed")
    assert retry.returncode == 1
    with open_store(out) as store:
        assert len(store.events("failed")) == 2
        assert len(store.events("completed")) == 2


def test_foreign_and_broken_stores(tmp_path):
    first = patchset_campaign(tmp_path / "a", points=1, labels=("mass",), name="first")
    second = patchset_campaign(tmp_path / "b", points=1, labels=("mass",), name="second")
    out = tmp_path / "out"
    assert cli("campaign", "run", first, "-o", out, "--workers", "1").returncode == 0
    proc = cli("campaign", "run", second, "-o", out, "--workers", "1")
    assert proc.returncode == 2 and "holds campaign 'first'" in proc.stderr
    from filelock import FileLock

    with FileLock(str(out / "campaign.lock")):  # a run in progress holds it
        proc = cli("campaign", "run", first, "-o", out, "--workers", "1")
    assert proc.returncode == 2 and "another `reanimate campaign run`" in proc.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "campaign.sqlite").write_bytes(b"not a database" * 100)
    proc = cli("campaign", "status", broken)
    assert proc.returncode == 2 and "not a campaign store" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = cli("campaign", "status", tmp_path / "none")
    assert proc.returncode == 2 and "no campaign store" in proc.stderr


def test_missing_inputs_are_one_line(tmp_path):
    path = patchset_campaign(tmp_path / "c", points=1)
    (tmp_path / "c" / "patchset.json").unlink()
    proc = cli("campaign", "run", path, "-o", tmp_path / "out")
    assert proc.returncode == 2 and "patchset not found" in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("campaign_version: 2\nname: x\n")
    proc = cli("campaign", "run", bad)
    assert proc.returncode == 2 and f"{bad}:1:" in proc.stderr
