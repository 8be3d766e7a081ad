"""Campaigns: the file model (located errors, schema), grid expansion and point digests, the
store, the patchset route end to end (CLI, results, plots) and an external Dask scheduler."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from reanimate.errors import SpecError
from reanimate.reinterpret.campaign import (
    Campaign,
    digest,
    load_campaign,
    schema_text,
)

REPO = Path(__file__).resolve().parents[1]


# -- a small synthetic background workspace and signal patchset ---------------------------------


def synthetic(folder: Path, points: int = 6, labels: tuple[str, ...] = ("m1", "m2"),
              bins: int = 4) -> tuple[Path, Path]:
    """BkgOnly.json and patchset.json (pyhf formats): one channel, a background with a normsys
    and staterror, and per point a signal sample scaled by mu_SIG whose size falls with mass."""
    import pyhf

    background = [50.0 + 10 * i for i in range(bins)]
    observed = [b + (2.0 if i % 2 else -1.0) for i, b in enumerate(background)]
    workspace = {
        "channels": [{"name": "SR", "samples": [{
            "name": "background", "data": background,
            "modifiers": [
                {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.05, "lo": 0.95}},
                {"name": "staterror_SR", "type": "staterror",
                 "data": [0.05 * b for b in background]},
            ]}]}],
        "observations": [{"name": "SR", "data": observed}],
        "measurements": [{"name": "meas", "config": {
            "poi": "mu_SIG", "parameters": [{"name": "mu_SIG", "bounds": [[0.0, 10.0]],
                                             "inits": [1.0]}]}}],
        "version": "1.0.0",
    }
    patches = []
    for index in range(points):
        m1 = 200 + 100 * (index % 3)
        m2 = 50 * (index // 3)
        values = (m1, m2)[: len(labels)] if len(labels) == 2 else (200 + 100 * index,)
        strength = 40.0 * (200.0 / values[0]) ** 2 * (1.0 - 0.002 * (values[-1] if
                                                                       len(labels) == 2 else 0))
        signal = [round(strength * (0.4 + 0.2 * i) + 1e-3 * index, 6) for i in range(bins)]
        name = "sig_" + "_".join(str(v) for v in values)
        patches.append({
            "metadata": {"name": name, "values": list(values)},
            "patch": [{"op": "add", "path": "/channels/0/samples/1", "value": {
                "name": "signal", "data": signal,
                "modifiers": [{"name": "mu_SIG", "type": "normfactor", "data": None},
                              {"name": "sig_syst", "type": "normsys",
                               "data": {"hi": 1.1, "lo": 0.9}}]}}],
        })
    patchset = {"metadata": {"description": "synthetic", "labels": list(labels),
                             "references": {"hepdata": "ins0000000"},
                             "digests": {"sha256": pyhf.utils.digest(workspace)}},
                "patches": patches, "version": "1.0.0"}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "BkgOnly.json").write_text(json.dumps(workspace))
    (folder / "patchset.json").write_text(json.dumps(patchset))
    return folder / "BkgOnly.json", folder / "patchset.json"


def patchset_campaign(folder: Path, points: int = 6, labels=("m1", "m2"), extra: str = "",
                      name: str = "synthetic") -> Path:
    synthetic(folder, points, labels)
    path = folder / "campaign.yaml"
    path.write_text(textwrap.dedent(f"""\
        campaign_version: 1
        name: {name}
        workspace: BkgOnly.json
        signal:
          patchset: patchset.json
        limits: {{cl: 0.95, mu: 1.0}}
        """) + extra)
    return path


def cli(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "reanimate.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, **kwargs)


# -- the model -----------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_campaign(path)
    return [str(p) for p in info.value.problems]


def test_errors_are_located(tmp_path):
    path = write(tmp_path, """
        campaign_version: 1
        name: zp
        analysis: spec.yaml
        grid:
          axes: {mass: [500, 750]}
        signal:
          recipe: "zprime:mass={mass}"
        limits: {cl: 1.5, toys: true, bogus: 1}
        """)
    found = problems(path)
    assert any(p.startswith(f"{path}:8:") and "limits.cl" in p for p in found), found
    assert any(f"{path}:8:" in p and "limits.bogus: unknown key 'bogus'" in p for p in found)
    assert any("limits.toys" in p for p in found)


def test_whole_campaign_rules(tmp_path):
    base = """
        campaign_version: 1
        name: zp
        analysis: spec.yaml
        grid:
          axes: {mass: [500, 750], width: [0.01, 0.03]}
        signal:
          recipe: "zprime:mass={mass}"
        """
    assert any("grid axis 'width' is not used" in p for p in problems(write(tmp_path, base)))
    wrong = base.replace("{mass}\"", "{mas}\"")
    assert any("uses {mas}, not a grid label" in p for p in problems(write(tmp_path, wrong)))
    both = base.replace("analysis: spec.yaml", "analysis: a.yaml\n        workspace: w.json")
    assert any("exactly one of analysis or workspace" in p
               for p in problems(write(tmp_path, both)))
    nosignal = "campaign_version: 1\nname: zp\nanalysis: a.yaml\n"
    assert any(p.startswith(f"{tmp_path / 'c.yaml'}:1:1: signal: missing required key")
               for p in problems(write(tmp_path, nosignal)))
    bad_yaml = "campaign_version: 1\nname: [zp\n"
    assert problems(write(tmp_path, bad_yaml))[0].startswith(f"{tmp_path / 'c.yaml'}:2:")


def test_grid_expansion_and_digests(tmp_path):
    campaign = Campaign.model_validate({
        "campaign_version": 1, "name": "zp", "analysis": "a.yaml",
        "grid": {"axes": {"mass": [500, 750], "width": [0.01, 0.03]}},
        "signal": {"recipe": "zprime:mass={mass},width={width}"}})
    labels = campaign.grid.labels()
    assert labels == [{"mass": 500, "width": 0.01}, {"mass": 500, "width": 0.03},
                      {"mass": 750, "width": 0.01}, {"mass": 750, "width": 0.03}]
    explicit = Campaign.model_validate({
        "campaign_version": 1, "name": "zp", "analysis": "a.yaml",
        "grid": {"points": [{"mass": 500}, {"mass": 2000.0}]},
        "signal": {"files": "signals/{mass}/catalogue.json"}})
    from reanimate.reinterpret.campaign import expand

    assert [expand(explicit.signal.pattern, p) for p in explicit.grid.labels()] == \
        ["signals/500/catalogue.json", "signals/2000/catalogue.json"]
    assert digest({"a": 1, "b": [1.5]}) == digest({"b": [1.5], "a": 1})


def test_patch_points_digest_by_content(tmp_path):
    from reanimate.reinterpret.campaign_run import plan_points

    path = patchset_campaign(tmp_path / "a")
    campaign, resolved = load_campaign(path)
    points = plan_points(campaign, resolved.parent, tmp_path / "out")
    assert [p.labels for p in points][:2] == [{"m1": 200, "m2": 0}, {"m1": 300, "m2": 0}]
    again = plan_points(campaign, resolved.parent, tmp_path / "out")
    assert [p.digest for p in points] == [p.digest for p in again]  # stable
    other = Campaign.model_validate({**campaign.model_dump(), "limits": {"cl": 0.9}})
    changed = plan_points(other, resolved.parent, tmp_path / "out")
    assert not {p.digest for p in points} & {p.digest for p in changed}
    chosen = Campaign.model_validate({**campaign.model_dump(), "signal": {
        "patchset": "patchset.json", "patches": ["sig_300_0"]}})
    [one] = plan_points(chosen, resolved.parent, tmp_path / "out")
    assert one.digest == points[1].digest and len(one.patchset["patches"]) == 1


def test_schema_is_current_and_campaigns_validate():
    assert (REPO / "specs" / "campaign.schema.json").read_text() == schema_text()
    files = sorted((REPO / "specs" / "campaigns").glob("*.yaml"))
    assert len(files) >= 2
    for path in files:
        load_campaign(path)
    proc = cli("campaign", "schema")
    assert proc.returncode == 0 and json.loads(proc.stdout)["title"] == "Campaign"


# -- the store -----------------------------------------------------------------------------------


def test_store_counts_attempts_and_refuses_a_second_completion(tmp_path):
    from reanimate.reinterpret.store import open_store

    with open_store(tmp_path, create=True) as store:
        store.set_meta(points=["a", "b"])
        assert store.add_points([{"digest": "a", "name": "A", "labels": {"x": 1}},
                                 {"digest": "b", "name": "B", "labels": {"x": 2}}]) == 2
        store.started("a")
        assert store.completed("a", {"status": "ok"})
        assert not store.completed("a", {"status": "ok"})  # never stored twice
        store.completed("b", {"status": "ok"})  # its start event had not arrived yet
        store.started("b")  # ... and arrives late: not a second attempt
        store.started("x")  # unknown: only logged
    with open_store(tmp_path) as store:
        points = {p["digest"]: p for p in store.current()}
        assert [points[d]["attempts"] for d in "ab"] == [1, 1]
        assert len(store.events("completed")) == 2
        assert store.counts() == {"pending": 0, "running": 0, "done": 2, "failed": 0}
    with pytest.raises(Exception, match="no campaign store"):
        with open_store(tmp_path / "nothing"):
            pass


# -- the patchset route, end to end --------------------------------------------------------------


def test_patchset_campaign_cli(tmp_path):
    path = patchset_campaign(tmp_path / "c", points=6)
    out = tmp_path / "out"
    proc = cli("campaign", "run", path, "-o", out, "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert "6 done" in proc.stderr
    status = cli("campaign", "status", out)
    assert status.returncode == 0 and "6 points, 6 done" in status.stdout
    table = cli("campaign", "results", out, "--csv")
    lines = table.stdout.splitlines()
    assert lines[0].startswith("name,m1,m2,status,limit_observed,limit_expected_m2")
    assert len(lines) == 7 and all(",ok," in line or ",success," in line or line
                                   for line in lines[1:])
    records = json.loads(cli("campaign", "results", out, "--json").stdout)
    record = records[0]["record"]
    assert record["point"]["analysis"]["kind"] == "workspace"
    assert record["point"]["analysis"]["sha256"] and record["point"]["signal"]["sha256"]
    assert {"pyhf", "reanimate"} <= set(record["software"])
    assert set(record["timing"]) >= {"patching", "limits", "total"}
    assert len(record["limit_expected"]) == 5
    # a rerun computes nothing
    again = cli("campaign", "run", path, "-o", out, "--workers", "2")
    assert again.returncode == 0 and "6 done" in again.stderr
    from reanimate.reinterpret.store import open_store

    with open_store(out) as store:
        assert len(store.events("completed")) == 6
        assert all(p["attempts"] == 1 for p in store.current())
    plot = cli("campaign", "plot", out)
    assert plot.returncode == 0, plot.stderr
    assert (out / "contour.png").stat().st_size > 1000


def test_brazil_plot_with_theory(tmp_path):
    """One label: the Brazil band, in pb once the theory cross section is given."""
    from reanimate.reinterpret.campaign_plots import plot_campaign
    from reanimate.reinterpret.store import open_store

    with open_store(tmp_path, create=True) as store:
        masses = [500, 750, 1000]
        store.set_meta(points=[str(m) for m in masses], campaign={
            "name": "zp", "limits": {"cl": 0.95}, "plot": {"x": "mass"},
            "theory": {"cross_section_pb": {"500": 3.0, "750": 1.0, "1000": 0.3}}})
        store.add_points([{"digest": str(m), "name": f"mass={m}", "labels": {"mass": m}}
                          for m in masses])
        for m in masses:
            limit = m / 500
            store.completed(str(m), {"status": "ok", "limit_observed": limit * 1.1,
                                     "limit_expected": [limit * f for f in
                                                        (0.5, 0.7, 1.0, 1.4, 1.9)]})
    target = plot_campaign(tmp_path)
    assert target.name == "brazil.png" and target.stat().st_size > 1000


# -- an external Dask scheduler ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_external_scheduler(tmp_path):
    """A 2-point campaign on a `dask scheduler` + `dask worker` started here, torn down after;
    the address comes once from --scheduler, once from $DASK_SCHEDULER_URI."""
    path = patchset_campaign(tmp_path / "c", points=2, labels=("mass",))
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    bindir = Path(sys.executable).parent
    logs = (tmp_path / "scheduler.log").open("w")
    scheduler = subprocess.Popen([str(bindir / "dask"), "scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--dashboard-address", ":0",
                                  "--no-show"], stdout=logs, stderr=logs,
                                 start_new_session=True)
    worker = subprocess.Popen([str(bindir / "dask"), "worker", address, "--nworkers", "1",
                               "--nthreads", "1", "--no-dashboard", "--memory-limit", "0"],
                              stdout=logs, stderr=logs, start_new_session=True)
    try:
        proc = cli("campaign", "run", path, "-o", tmp_path / "out", "--scheduler", address,
                   timeout=240)
        assert proc.returncode == 0, proc.stderr
        assert "2 done" in proc.stderr
        env = {**os.environ, "DASK_SCHEDULER_URI": address}
        other = patchset_campaign(tmp_path / "d", points=2, labels=("mass",), name="again")
        proc = cli("campaign", "run", other, "-o", tmp_path / "out2", env=env, timeout=240)
        assert proc.returncode == 0, proc.stderr
        from reanimate.reinterpret.store import open_store

        with open_store(tmp_path / "out2") as store:
            assert store.counts()["done"] == 2
    finally:
        for process in (worker, scheduler):
            os.killpg(process.pid, 15)
        deadline = time.time() + 20
        for process in (worker, scheduler):
            try:
                process.wait(timeout=max(1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
        logs.close()


# -- the recipe route (the small AGC chain, ~25 s) ----------------------------------------------


def test_recipe_campaign_through_the_small_flagship(tmp_path):
    """Two generated Z' signals through the small AGC chain, prepared once; each record names
    the spec digest, the recipe and the software, and the derived run's steps are timed."""
    import yaml
    from engine_specs import small_flagship

    from reanimate.hashing import sha256_file
    from reanimate.reinterpret.campaign_run import run_campaign
    from reanimate.reinterpret.store import open_store

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(small_flagship(events=5000), sort_keys=False))
    path = tmp_path / "zp.yaml"
    path.write_text(yaml.safe_dump({
        "campaign_version": 1, "name": "zp", "analysis": "spec.yaml",
        "grid": {"axes": {"mass": [600, 1000]}},
        "signal": {"recipe": "zprime:mass={mass},events=2000"},
        "theory": {"cross_section_pb": {600: 16.56, 1000: 2.5}}, "plot": {"x": "mass"}}))
    campaign, resolved = load_campaign(path)
    out = tmp_path / "out"
    assert run_campaign(campaign, resolved, out, workers=2)["done"] == 2
    with open_store(out) as store:
        points = store.current()
    for point in points:
        record = point["record"]
        assert record["point"]["analysis"]["digest"] == sha256_file(spec)
        assert record["point"]["signal"]["recipe"] == \
            f"zprime:mass={point['labels']['mass']},events=2000"
        assert record["signal"]["sha256"] and "pyhf" in record["software"]
        assert "histograms" in record["timing"] and record["limit_observed"] is not None
    assert run_campaign(campaign, resolved, out, workers=1)["done"] == 2  # nothing to do
    with open_store(out) as store:
        assert len(store.events("completed")) == 2
    proc = cli("campaign", "plot", out)
    assert proc.returncode == 0 and (out / "brazil.png").is_file()
