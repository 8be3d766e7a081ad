"""The registry's campaigns and workers: submission checks, real `reanimate registry worker`
processes on the small AGC chain's bundle (results equal to a local `campaign run`), a worker
SIGKILLed mid-point (its lease expires, another takes the point: nothing lost, nothing stored
twice), two workers on one campaign, and a point the analysis refuses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from bundle_helpers import small_run

from reanimate.errors import ReanimateError, SpecError
from reanimate.registry.campaigns import check_submission, results_csv, results_rows

MASSES = [600, 800, 1000, 1200]
CAMPAIGN = textwrap.dedent("""\
    campaign_version: 1
    name: zp-registry
    grid:
      axes: {{mass: {masses}}}
    signal:
      recipe: "zprime:mass={{mass}},events=2000"
    plot: {{x: mass}}
    """)
WORKER_TIMEOUT_S = 240


def campaign_text(masses=MASSES) -> str:
    return CAMPAIGN.format(masses=json.dumps(masses))


# -- submissions (no analysis needed) -------------------------------------------------------------


def test_submission_checks(tmp_path):
    good = check_submission(campaign_text(), {}, max_points=10)
    assert good.campaign_json["analysis"] == "bundle.crate.zip"
    assert [(p["position"], p["name"], p["labels"]) for p in good.points] == \
        [(i, f"mass={m}", {"mass": m}) for i, m in enumerate(MASSES)]
    with pytest.raises(SpecError) as info:
        check_submission(campaign_text() + "limits: {cl: 1.5}\n", {}, where="zp.yaml",
                         max_points=10)
    assert str(info.value.problems[0]).startswith("zp.yaml:8:")
    assert "limits.cl" in str(info.value)
    with pytest.raises(SpecError, match="workspace: a registry campaign runs on the version"):
        check_submission(campaign_text() + "workspace: BkgOnly.json\n", {}, max_points=10)
    with pytest.raises(ReanimateError, match="4 points: more than this registry's limit of 3"):
        check_submission(campaign_text(), {}, max_points=3)
    files = campaign_text().replace('recipe: "zprime:mass={mass},events=2000"',
                                    'files: "signals/{mass}.root@xsec_pb=1.0"')
    signal_file = tmp_path / "s.root"
    signal_file.write_bytes(b"x")
    uploads = {f"signals/{m}.root": signal_file for m in MASSES[:3]}
    with pytest.raises(ReanimateError, match="signals/1200.root is not among the uploaded"):
        check_submission(files, uploads, max_points=10)
    uploads["signals/1200.root"] = signal_file
    assert len(check_submission(files, uploads, max_points=10).references) == 4
    with pytest.raises(ReanimateError, match="is reserved"):
        check_submission(campaign_text(), {"bundle.crate.zip": signal_file}, max_points=10)


def test_patchset_points_are_named_as_plan_points_names_them(tmp_path):
    from test_campaign import patchset_campaign

    from reanimate.reinterpret.campaign import load_campaign
    from reanimate.reinterpret.campaign_run import plan_points

    path = patchset_campaign(tmp_path, points=4)
    campaign, resolved = load_campaign(path)
    planned = plan_points(campaign, resolved.parent, tmp_path / "out")
    text = "campaign_version: 1\nname: s\nsignal:\n  patchset: patchset.json\n"
    submitted = check_submission(text, {"patchset.json": tmp_path / "patchset.json"},
                                 max_points=10)
    assert [(p["name"], p["labels"]) for p in submitted.points] == \
        [(p.name, p.labels) for p in planned]
    chosen = text + "  patches: [sig_300_0]\n"
    [one] = check_submission(chosen, {"patchset.json": tmp_path / "patchset.json"},
                             max_points=10).points
    assert one["name"] == "sig_300_0" and one["position"] == 0
    with pytest.raises(ReanimateError, match="no patch named 'nope'"):
        check_submission(text + "  patches: [nope]\n",
                         {"patchset.json": tmp_path / "patchset.json"}, max_points=10)


# -- leases, on the database alone -------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request, tmp_path_factory):
    """A migrated registry database: SQLite in a store, or a throw-away PostgreSQL cluster."""
    from registry_helpers import Postgres, postgres_binaries

    from reanimate.registry import db

    folder = tmp_path_factory.mktemp(request.param)
    server = None
    if request.param == "postgresql":
        if postgres_binaries() is None:
            pytest.skip("Debian's postgresql is not installed (make system-packages)")
        server = Postgres(folder / "pg").start()
    url = server.url if server else ""
    from reanimate.registry.config import Settings

    settings = Settings(store=folder / "store", database_url=url, max_attempts=2)
    db.migrate(settings.database_url)
    yield settings
    if server:
        db.get_engine.cache_clear()
        server.stop()


def fake_campaign(settings, points: int) -> int:
    """A campaign row with `points` queued points (no bundle: for the lease tests)."""
    from reanimate.registry import db
    from reanimate.registry.models import Analysis, Campaign, Point, Version

    now = time.time()
    with db.session(settings.database_url) as s:
        analysis = Analysis(name=f"a{time.monotonic_ns()}", owner="o", public=True,
                            created_at=now)
        s.add(analysis)
        s.flush()
        version = Version(analysis_id=analysis.id, version="1", bundle_sha256="0" * 64,
                          bundle_size=0, metadata_json="{}", publisher="o", published_at=now)
        s.add(version)
        s.flush()
        campaign = Campaign(version_id=version.id, name="c", submitter="o", campaign_text="",
                            campaign_json="{}", files_json="{}", created_at=now)
        s.add(campaign)
        s.flush()
        for i in range(points):
            s.add(Point(campaign_id=campaign.id, position=i, name=f"p{i}", labels_json="{}"))
        return campaign.id


def test_concurrent_claims_never_share_a_point(database):
    """8 threads claim and finish 60 points: each point leased once, stored once."""
    import threading

    from reanimate.registry import leases

    campaign = fake_campaign(database, 60)
    taken: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    start = threading.Barrier(8)

    def claimer(index: int) -> None:
        try:
            start.wait(timeout=60)  # all eight claim at once (a lost race returns no claim)
            while leases.open_points(database):
                claims = leases.claim(database, f"t{index}", 2, 30.0)
                for c in claims:
                    assert leases.finish(database, c, f"t{index}", record={"i": c.name})
                    taken.append((c.name, f"t{index}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    names = sorted(n for n, _ in taken)
    assert names == sorted(f"p{i}" for i in range(60)), "each point claimed exactly once"
    assert leases.open_points(database) == 0 and campaign in leases.unfinished(database)
    assert leases.close(database, campaign, lambda *_: None) == "done"
    assert campaign not in leases.unfinished(database)


def test_expired_leases_are_taken_over_then_failed(database):
    from reanimate.registry import leases

    campaign = fake_campaign(database, 1)
    [first] = leases.claim(database, "a", 5, 0.05)
    assert leases.claim(database, "b", 5, 30.0) == []  # still leased
    time.sleep(0.1)
    [second] = leases.claim(database, "b", 5, 0.05)  # expired: b takes it
    assert (second.name, second.attempts) == (first.name, 2)
    assert leases.renew(database, [first], 30.0) == [first]  # a's lease is gone
    assert not leases.finish(database, first, "a", record={"late": True})  # discarded
    time.sleep(0.1)
    assert leases.claim(database, "c", 5, 30.0) == []  # max_attempts (2) leases expired
    assert leases.expire(database) == [campaign]
    assert leases.close(database, campaign, lambda *_: None) == "failed"
    from reanimate.registry import db
    from reanimate.registry.models import Point, Result

    with db.session(database.database_url) as s:
        point = s.get(Point, first.point_id)
        assert point.status == "failed" and point.error == \
            "lease expired 2 times: the worker died"
        assert s.query(Result).filter(Result.point_id == point.id).count() == 0
    fresh = fake_campaign(database, 1)
    [claim] = leases.claim(database, "d", 1, 30.0)
    assert claim.campaign_id == fresh and leases.release(database, [claim]) == 1
    [again] = leases.claim(database, "e", 1, 30.0)
    assert again.attempts == 1  # a lease given back is not an attempt
    assert leases.finish(database, again, "e", error="refused")


# -- the small AGC chain's bundle in a registry ---------------------------------------------------


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """The bundle, and the CSV of the same campaign run locally with `run_campaign`."""
    from reanimate.reinterpret.campaign import load_campaign
    from reanimate.reinterpret.campaign_plots import results_csv as local_csv
    from reanimate.reinterpret.campaign_run import run_campaign

    bundle = small_run(tmp_path_factory).bundle
    local = tmp_path_factory.mktemp("local")
    (local / "bundle.crate.zip").write_bytes(bundle.read_bytes())
    path = local / "zp.yaml"
    path.write_text(campaign_text() + "analysis: bundle.crate.zip\n")
    campaign, resolved = load_campaign(path)
    assert run_campaign(campaign, resolved, local / "out", workers=2)["done"] == len(MASSES)
    return {"bundle": bundle, "csv": local_csv(local / "out")}


def registry(tmp_path: Path, bundle: Path):
    """A migrated store with the bundle published (blob + rows) as agc-small@1.0.0."""
    from reanimate.registry import db
    from reanimate.registry.blobs import BlobStore
    from reanimate.registry.config import Settings
    from reanimate.registry.models import Analysis, Version

    settings = Settings(store=tmp_path / "store", lease_seconds=4.0)
    db.migrate(settings.database_url)
    sha = BlobStore(settings).put_file(bundle)
    now = time.time()
    with db.session(settings.database_url) as s:
        analysis = Analysis(name="agc-small", owner="alice", public=True, created_at=now)
        s.add(analysis)
        s.flush()
        version = Version(analysis_id=analysis.id, version="1.0.0", bundle_sha256=sha,
                          bundle_size=bundle.stat().st_size, metadata_json="{}",
                          publisher="alice", published_at=now)
        s.add(version)
        s.flush()
        return settings, version.id


def submit(settings, version_id: int, text: str) -> int:
    from reanimate.registry import crud, db
    from reanimate.registry.models import Version

    submission = check_submission(text, {}, max_points=settings.max_points)
    with db.session(settings.database_url) as s:
        return crud.create_campaign(s, s.get(Version, version_id), "alice", text, submission,
                                    {}).id


def worker(settings, *extra: str, wait: bool = True):
    args = [sys.executable, "-m", "reanimate.cli", "registry", "worker", "--store",
            str(settings.store), "--workers", "1", "--lease", "4", "--poll", "0.2", *extra]
    if wait:
        done = subprocess.run(args, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
        assert done.returncode == 0, done.stderr
        return done
    path = settings.store.parent / f"worker-{time.monotonic_ns()}.log"
    with open(path, "w") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
    process.log = path
    return process


def state(settings, campaign_id: int) -> dict:
    from sqlalchemy import select

    from reanimate.registry import db
    from reanimate.registry.models import Campaign, Point, Result

    with db.session(settings.database_url) as s:
        campaign = s.get(Campaign, campaign_id)
        points = s.scalars(select(Point).where(Point.campaign_id == campaign_id)
                           .order_by(Point.position)).all()
        results = s.scalars(select(Result.point_id)).all()
        rows = results_rows(s, campaign_id)
        return {"status": campaign.status, "plot": campaign.plot_sha256,
                "kind": campaign.plot_kind, "json": json.loads(campaign.campaign_json),
                "points": {p.name: {"status": p.status, "attempts": p.attempts,
                                    "owner": p.lease_owner, "error": p.error,
                                    "started": p.started_at, "id": p.id} for p in points},
                "results": results, "rows": rows}


def assert_complete(settings, campaign_id: int, chain) -> dict:
    found = state(settings, campaign_id)
    assert found["status"] == "done"
    assert all(p["status"] == "done" for p in found["points"].values()), found["points"]
    ids = sorted(p["id"] for p in found["points"].values())
    assert sorted(found["results"]) == ids, "every point stored exactly once"
    assert results_csv(found["json"], found["rows"]) == chain["csv"]
    plot = settings.blobs / found["plot"][:2] / found["plot"][2:4] / found["plot"]
    assert found["kind"] == "brazil" and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return found


def test_a_worker_completes_a_campaign_as_a_local_run(tmp_path, chain):
    settings, version = registry(tmp_path, chain["bundle"])
    campaign = submit(settings, version, campaign_text())
    done = worker(settings, "--exit-when-idle", "--name", "w1")
    assert done.stderr.count(": done in ") == len(MASSES), done.stderr
    found = assert_complete(settings, campaign, chain)
    assert all(p["attempts"] == 1 and p["owner"] == "w1" for p in found["points"].values())


def test_sigkill_mid_point_then_another_worker(tmp_path, chain):
    settings, version = registry(tmp_path, chain["bundle"])
    campaign = submit(settings, version, campaign_text())
    first = worker(settings, "--name", "doomed", wait=False)
    try:
        wait_running(settings, campaign, first, done=1)
        os.killpg(first.pid, signal.SIGKILL)  # the worker, its cluster, its Dask workers
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    before = state(settings, campaign)["points"]
    killed = [n for n, p in before.items() if p["status"] == "running"]
    stored = [n for n, p in before.items() if p["status"] == "done"]
    assert killed and stored and len(stored) < len(MASSES)
    second = worker(settings, "--exit-when-idle", "--name", "rescuer")
    found = assert_complete(settings, campaign, chain)
    for name in killed:
        assert found["points"][name]["attempts"] == 2
        assert found["points"][name]["owner"] == "rescuer"
    for name in stored:  # not computed again
        assert found["points"][name]["attempts"] == 1
        assert found["points"][name]["owner"] == "doomed"
    assert second.stderr.count(": done in ") == len(MASSES) - len(stored)


def wait_running(settings, campaign: int, process, done: int = 0) -> None:
    """Until `done` points are done and one has been running for a second."""
    deadline = time.time() + WORKER_TIMEOUT_S
    while True:
        assert process.poll() is None, "the worker exited"
        assert time.time() < deadline, "no point ran in time"
        points = state(settings, campaign)["points"].values()
        running = [p for p in points if p["status"] == "running"
                   and time.time() - p["started"] > 1.0]
        if sum(p["status"] == "done" for p in points) >= done and running:
            return
        time.sleep(0.1)


def test_sigterm_gives_back_then_two_workers_share_a_campaign(tmp_path, chain):
    settings, version = registry(tmp_path, chain["bundle"])
    campaign = submit(settings, version, campaign_text())
    first = worker(settings, "--name", "stopped", wait=False)
    try:
        wait_running(settings, campaign, first)
        first.send_signal(signal.SIGTERM)  # the worker alone: it closes its own cluster
        assert first.wait(timeout=60) == 0
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert "gave back 1 point(s)" in first.log.read_text()
    points = state(settings, campaign)["points"].values()
    assert all((p["status"], p["attempts"]) in (("queued", 0), ("done", 1)) for p in points)
    workers = [worker(settings, "--exit-when-idle", "--name", f"w{i}", wait=False)
               for i in (1, 2)]
    for process in workers:
        assert process.wait(timeout=WORKER_TIMEOUT_S) == 0
    found = assert_complete(settings, campaign, chain)
    owners = {p["owner"] for p in found["points"].values()}
    print(f"points by worker: {sorted(owners)}")
    assert all(p["attempts"] == 1 for p in found["points"].values())


def test_a_point_the_analysis_refuses_fails_alone(tmp_path, chain):
    """In-process run_worker: mass 300 GeV is outside the generator's range (400-10000)."""
    from reanimate.registry.worker import run_worker

    settings, version = registry(tmp_path, chain["bundle"])
    campaign = submit(settings, version, campaign_text([300, 700]))
    lines: list[str] = []
    counts = run_worker(settings, workers=1, lease_seconds=4, poll_seconds=0.2,
                        exit_when_idle=True, name="inproc", say=lines.append)
    assert counts["done"] == 1 and counts["failed"] == 1, lines
    found = state(settings, campaign)
    bad, good = found["points"]["mass=300"], found["points"]["mass=700"]
    assert bad["status"] == "failed" and "signal step signal_events failed" in bad["error"]
    assert "outside the supported 400-10000 GeV" in bad["error"]  # the reason, not only a log
    assert good["status"] == "done" and found["status"] == "done"
    assert found["results"] == [good["id"]]
    table = results_csv(found["json"], found["rows"]).splitlines()
    assert table[1].startswith("mass=300,300,failed,") and "signal_events failed" in table[1]
    assert table[2].startswith("mass=700,700,")
