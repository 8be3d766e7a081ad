"""The registry round trip (issue 15's acceptance), on SQLite and on a real PostgreSQL server.

A module fixture runs the small AGC chain once and the same 3-point Z' campaign locally once
(`reanimate campaign run`, the bundle as its analysis). For each database a real `reanimate
registry serve` process on 127.0.0.1 (PostgreSQL: a throw-away cluster, migrations applied from
empty by `registry migrate`, the server started with --no-migrate), and everything through the
CLI: publish the run, list it, download it (same digest), verify it (identical; on SQLite
only, as it reruns the chain), submit the campaign, one `registry worker` process completes it,
and its results equal the local ones. No mocks.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml
from bundle_helpers import rewrite_bundle, small_run
from registry_helpers import Postgres, Server, cli, sha256

from reanimate.registry.client import RegistryClient, bundle_identity, referenced_files

MASSES = (750, 1000, 1500)
WORKER_TIMEOUT_S = 600


def campaign_file(folder: Path, analysis: Path) -> Path:
    path = folder / "zprime.yaml"
    path.write_text(textwrap.dedent(f"""\
        campaign_version: 1
        name: zprime-small
        analysis: {analysis}
        grid:
          axes: {{mass: [{", ".join(map(str, MASSES))}]}}
        signal:
          recipe: "zprime:mass={{mass}},events=2000"
        limits: {{cl: 0.95, mu: 1.0}}
        plot: {{x: mass}}
        """))
    return path


def ok(done: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"{what}: exit {done.returncode}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The small run, the campaign file and its local results (CSV text, JSON records)."""
    run = small_run(tmp_path_factory)
    folder = tmp_path_factory.mktemp("roundtrip")
    # bundled again now, as `publish` will: the same run and code give the same bytes (the
    # session's bundle predates any change of the source tree, whose wheel it holds)
    bundle = folder / "local.crate.zip"
    ok(cli("bundle", run.spec, "--workdir", run.workdir, "-o", bundle), "bundle")
    path = campaign_file(folder, bundle)
    out = folder / "local"
    started = time.monotonic()
    ok(cli("campaign", "run", path, "-o", out, "--workers", "1"), "campaign run")
    print(f"local campaign: {time.monotonic() - started:.1f} s")
    csv = ok(cli("campaign", "results", out, "--csv"), "campaign results").stdout
    records = json.loads(ok(cli("campaign", "results", out, "--json"), "results").stdout)
    name, version = bundle_identity(bundle)
    return {"run": run, "bundle": bundle, "campaign": path, "csv": csv, "records": records,
            "name": name, "version": version, "ref": f"{name}@{version}", "folder": folder}


class _Unmigrated(Server):
    """A server that must find the schema already migrated (`serve --no-migrate`)."""

    def args(self) -> list[str]:
        return [*super().args(), "--no-migrate"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def registry(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"registry-{request.param}")
    store, database, postgres = folder / "store", "", None
    if request.param == "postgresql":
        postgres = Postgres(folder / "pg").start()
        database = postgres.url
        ok(cli("registry", "migrate", "--database", database, "--store", store), "migrate")
        server = _Unmigrated(store, database)
    else:
        server = Server(store)
    server.start()
    try:
        yield {"server": server, "kind": request.param, "folder": folder,
               "publish": server.token("publish", owner="alice"),
               "campaign": server.token("campaign", owner="bob")}
    finally:
        server.stop()
        if postgres is not None:
            postgres.stop()


def test_round_trip(registry, local):
    server, url = registry["server"], registry["server"].url
    run, ref, folder = local["run"], local["ref"], registry["folder"]
    publish = {"REANIMATE_TOKEN": registry["publish"]}

    # publish (from the spec and work directory once; the bundle file on PostgreSQL): the run
    # bundled again gives the same bytes as `reanimate bundle` did
    first = registry["kind"] == "sqlite"
    source = (run.spec, "--workdir", run.workdir) if first else ("--bundle", local["bundle"])
    done = ok(cli("publish", *source, "--registry", url, env=publish), "publish")
    digest = sha256(local["bundle"])
    assert done.stdout.strip() == f"published {ref} (sha256 {digest})"
    again = ok(cli("publish", "--bundle", local["bundle"], "--registry", url, env=publish), "again")
    assert again.stdout.strip() == f"{ref} already published with the same content " \
                                   f"(sha256 {digest})"
    other = _other_bundle(local["bundle"], folder / "other.crate.zip")
    refused = cli("publish", "--bundle", other, "--registry", url, env=publish)
    assert refused.returncode == 2, refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and digest in errors[0] and sha256(other) in errors[0], errors
    assert cli("publish", "--bundle", other, "--registry", url).returncode == 2  # no token

    # list (the registry from the environment) and show
    listed = ok(cli("registry", "list", "--json", env={"REANIMATE_REGISTRY": url}), "list")
    entry = {a["name"]: a for a in json.loads(listed.stdout)}[local["name"]]
    assert entry["latest"] == local["version"] and entry["versions"] == 1
    table = ok(cli("registry", "list", "--registry", url), "list table").stdout
    assert local["name"] in table and local["version"] in table
    shown = json.loads(ok(cli("registry", "show", ref, "--json", "--registry", url),
                          "show").stdout)
    assert shown["bundle_sha256"] == digest
    with zipfile.ZipFile(local["bundle"]) as zf:
        members = set(zf.namelist()) - {"ro-crate-metadata.json"}
    assert {f["path"] for f in shown["metadata"]["files"]} >= members
    spec_doc = yaml.safe_load(Path(run.spec).read_text())
    assert shown["metadata"]["references"] == spec_doc["metadata"]["references"]
    assert shown["metadata"]["authors"] == [a["name"] for a in spec_doc["metadata"]["authors"]]
    with urllib.request.urlopen(f"{url}/analyses/{local['name']}/{local['version']}") as page:
        html = page.read().decode()  # the real bundle on its web page
    assert spec_doc["metadata"]["references"][0] in html and ".whl (version" in html

    if first:  # errors: one line naming the URL and the server's answer, exit 2
        missing = cli("registry", "show", "nope@1.0", "--registry", url)
        assert missing.returncode == 2 and missing.stderr.startswith(
            f"error: {url}/api/v1/analyses/nope/versions/1.0: 404: "), missing.stderr
        gone = cli("registry", "list", "--registry", "http://127.0.0.1:9")
        assert gone.returncode == 2 and "cannot reach the registry" in gone.stderr
        assert len(gone.stderr.strip().splitlines()) == 1, gone.stderr

    # download: the same bytes
    target = folder / "downloaded.crate.zip"
    ok(cli("registry", "download", ref, "-o", target, "--registry", url), "download")
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    if first:  # an interrupted download resumes (Range); a part that is not a prefix restarts
        data = local["bundle"].read_bytes()
        with RegistryClient(url) as client:
            for name, part in (("resumed", data[: len(data) // 2]), ("restarted", b"x" * 100)):
                dest = folder / f"{name}.crate.zip"
                (folder / f".{dest.name}.part").write_bytes(part)
                assert client.download(local["name"], local["version"], dest)[1] == digest
                assert dest.read_bytes() == data and not (folder / f".{dest.name}.part").exists()

    # verify NAME@VERSION: downloaded and rerun, identical (once: it reruns the chain)
    if first:
        started = time.monotonic()
        verified = ok(cli("verify", ref, "--registry", url), "verify")
        print(f"verify: {time.monotonic() - started:.1f} s")
        assert "identical" in verified.stdout, verified.stdout

    # a campaign, submitted with --wait (it prints the id, then follows the campaign until
    # done), run by one worker process started once it is queued
    log = folder / "submit.log"
    with open(log, "w") as stderr:
        submit = subprocess.Popen(
            [sys.executable, "-m", "reanimate.cli", "campaign", "submit", local["campaign"],
             "--registry", url, "--analysis", ref, "--wait", "--poll", "0.5"],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
            env={**os.environ, "REANIMATE_TOKEN": registry["campaign"]})
    try:
        campaign_id, page = submit.stdout.readline().split()[:2]
        assert page == f"{url}/campaigns/{campaign_id}"
        started = time.monotonic()
        worker = [sys.executable, "-m", "reanimate.cli", "registry", "worker", "--store",
                  str(server.store), "--workers", "1", "--exit-when-idle"]
        if server.database:
            worker += ["--database", server.database]
        done = subprocess.run(worker, capture_output=True, text=True,
                              timeout=WORKER_TIMEOUT_S)
        print(f"worker: {time.monotonic() - started:.1f} s")
        assert done.returncode == 0, done.stderr[-3000:]
        assert submit.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if submit.poll() is None:
            submit.kill()
        submit.stdout.close()
    assert f"zprime-small: done, {len(MASSES)} done" in log.read_text()
    status = ok(cli("campaign", "status", campaign_id, "--registry", url), "status").stdout
    assert f"{len(MASSES)} points" in status and f"{len(MASSES)} done" in status, status

    # the results equal the local campaign's: the CSV byte for byte, the records' limits
    csv = ok(cli("campaign", "results", campaign_id, "--registry", url, "--csv"), "csv")
    assert csv.stdout == local["csv"]
    plot = folder / "brazil.png"
    remote = ok(cli("campaign", "results", campaign_id, "--registry", url, "--json",
                    "--plot", plot), "json")
    assert _limits(json.loads(remote.stdout)) == _limits(local["records"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _limits(records: list[dict]) -> dict:
    keys = ("status", "limit_observed", "limit_expected", "cls_observed", "cls_expected", "cl")
    return {r["digest"]: (r["name"], r["status"], {k: (r["record"] or {}).get(k) for k in keys})
            for r in records}


def _other_bundle(bundle: Path, target: Path) -> Path:
    """The bundle with one output changed (its metadata following): same NAME@VERSION, other
    bytes."""
    with zipfile.ZipFile(bundle) as zf:
        member = next(n for n in zf.namelist() if n.startswith("outputs/stamp/"))
    return rewrite_bundle(bundle, target, {member: b"another digest\n"})


def test_a_campaign_s_referenced_files(tmp_path):
    """submit uploads what the signal names, by its path relative to the campaign file: a
    file pattern over the grid (a folder: its files; a catalogue: the files it lists), a
    patchset; a recipe names none; a path leaving the folder is refused."""
    for mass in (500, 750):
        folder = tmp_path / "signals" / str(mass)
        folder.mkdir(parents=True)
        (folder / "events.root").write_bytes(b"root")
        (folder / "catalogue.json").write_text(json.dumps(
            {"signal": {"nominal": {"files": [{"path": "events.root", "nevts": 1}]}}}))
    (tmp_path / "hists").mkdir()
    (tmp_path / "hists" / "a.json").write_text("{}")
    (tmp_path / "patchset.json").write_text("{}")
    head = "campaign_version: 1\nname: c\nanalysis: a.crate.zip\n"
    grid = "grid:\n  axes: {mass: [500, 750]}\n"

    def files(body: str) -> dict:
        path = tmp_path / "c.yaml"
        path.write_text(head + body)
        return {k: v.relative_to(tmp_path).as_posix() for k, v in referenced_files(path).items()}

    assert files(grid + "signal: {files: 'signals/{mass}/catalogue.json'}\n") == {
        f"signals/{m}/{n}": f"signals/{m}/{n}" for m in (500, 750)
        for n in ("catalogue.json", "events.root")}
    assert set(files(grid + "signal: {files: 'signals/{mass}@xsec_pb=1'}\n")) == {
        f"signals/{m}/{n}" for m in (500, 750) for n in ("catalogue.json", "events.root")}
    assert files("grid:\n  points: [{m: 1}]\nsignal: {histograms: 'hists/a.json'}\n") == {
        "hists/a.json": "hists/a.json"}
    assert files("signal: {patchset: patchset.json}\n") == {"patchset.json": "patchset.json"}
    assert files(grid + "signal: {recipe: 'zprime:mass={mass}'}\n") == {}
    from reanimate.errors import ReanimateError

    with pytest.raises(ReanimateError, match="no such file"):
        files(grid + "signal: {files: 'missing/{mass}.root@xsec_pb=1'}\n")
    with pytest.raises(ReanimateError, match=r"no '\.\.'"):
        files(grid + "signal: {files: '../{mass}.root@xsec_pb=1'}\n")
