"""The histogramming stage on Dask: determinism, ordered merge, outputs, errors, the step CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import uproot
from _agc_reference import histograms, random_events, read

from reanimate.analyses.agc import distributed, output, samples
from reanimate.analyses.agc.steps import histograms as step
from reanimate.errors import ReanimateError

SAMPLES = [
    ("ttbar", "nominal"), ("ttbar", "scaledown"), ("ttbar", "scaleup"), ("ttbar", "ME_var"),
    ("ttbar", "PS_var"), ("single_top_s_chan", "nominal"), ("single_top_t_chan", "nominal"),
    ("single_top_tW", "nominal"), ("wjets", "nominal"),
]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Path:
    """Every AGC sample, two small random files each (one absolute, one relative path)."""
    root = tmp_path_factory.mktemp("samples")
    doc: dict = {}
    for k, (process, variation) in enumerate(SAMPLES):
        files = []
        for i, n in enumerate((260, 140)):
            path = root / f"{process}__{variation}_{i}.root"
            random_events(path, n, seed=100 * k + i, first_event=1 + 1000 * i)
            files.append({"path": path.name if i else str(path), "nevts": n, "sha256": None})
        doc.setdefault(process, {})[variation] = {"nevts_total": 400, "files": files}
    doc["zprime_1000"] = {"nominal": {"nevts_total": 140, "xsec_pb": 1.0, "files": [
        {"path": "ttbar__nominal_1.root", "nevts": 140}]}}
    (root / "catalogue.json").write_text(json.dumps(doc))
    return root


@pytest.fixture(scope="module")
def client():
    with distributed.dask_client(workers=2, threads_per_worker=1, memory_per_worker="1Gi",
                                 processes=False) as c:
        yield c


@pytest.fixture(scope="module")
def reference(client, catalogue):
    return _run(client, catalogue)


def _run(client, catalogue, chunk_size=100, order=None, processes=None):
    plan = distributed.plan_chunks(samples.load_samples(catalogue, processes), chunk_size, None, 42)
    if order == "reverse":
        order = list(reversed(range(len(plan.tasks))))
    elif order == "shuffle":
        order = list(np.random.default_rng(7).permutation(len(plan.tasks)))
    hists, events = distributed.run_chunks(client, plan.tasks, progress=False, submit_order=order)
    output.add_pseudodata(hists)
    return hists, events, plan


def test_matches_the_per_event_loop_and_has_124_histograms(reference, catalogue):
    hists, events, plan = reference
    assert events == 400 * len(SAMPLES)
    names = output.ordered(hists)
    assert len(names) == 124 and sum(n.startswith("4j1b_") for n in names) == 62
    assert not any("zprime" in n for n in names)
    want: dict[str, np.ndarray] = {}
    for process, variation in SAMPLES:
        weight = samples.XSEC_PB[process] * samples.LUMINOSITY_PB / 400
        assert plan.nevts[(process, variation)] == 400
        for i in range(2):
            evs = read(catalogue / f"{process}__{variation}_{i}.root")
            distributed.merge_into(want, histograms(evs, process, variation, weight))
    for name, h in want.items():
        if h[0].sum() != 0:
            np.testing.assert_allclose(hists[name], h, rtol=1e-12, err_msg=name)
        else:
            assert name not in names
    pseudo = (want["4j2b_ttbar_ME_var"][0] + want["4j2b_ttbar_PS_var"][0]) / 2
    np.testing.assert_allclose(hists["4j2b_pseudodata"][0], pseudo + want["4j2b_wjets"][0])


def test_bit_identical_whatever_the_order_and_workers(client, reference, catalogue, tmp_path):
    ref = reference[0]
    other, _, _ = _run(client, catalogue, order="reverse")
    assert ref.keys() == other.keys()
    for name in ref:
        assert ref[name].tobytes() == other[name].tobytes(), name
    with distributed.dask_client(workers=1, threads_per_worker=1, memory_per_worker="1Gi",
                                 processes=False) as one:
        single, _, _ = _run(one, catalogue, order="shuffle")
    for name in ref:
        assert ref[name].tobytes() == single[name].tobytes(), name
    # a different chunk size: same bin contents within float rounding
    coarse, _, _ = _run(client, catalogue, chunk_size=1000)
    for name in ref:
        np.testing.assert_allclose(coarse[name], ref[name], rtol=1e-12, atol=0, err_msg=name)
    # the ROOT and JSON outputs are byte-identical for the same histograms
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = tmp_path / "a" / "h.root", tmp_path / "b" / "h.root"
    output.write_root(a, ref)
    output.write_root(b, single)
    assert a.read_bytes() == b.read_bytes()
    output.write_json(tmp_path / "a.json", ref)
    output.write_json(tmp_path / "b.json", single)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    with uproot.open(a) as f:
        h = f["4j2b_ttbar"]
        np.testing.assert_array_equal(h.values(flow=True), ref["4j2b_ttbar"][0])
        np.testing.assert_array_equal(h.variances(flow=True), ref["4j2b_ttbar"][1])
        np.testing.assert_array_equal(h.axis().edges(), np.linspace(50, 550, 26))
        assert len(f.keys()) == 124


def test_signal_is_selected_only_on_request(client, catalogue):
    hists, _, _ = _run(client, catalogue, processes=["zprime_1000"])
    names = output.ordered(hists)
    assert "4j2b_zprime_1000" in names and "4j1b_zprime_1000_btag_var_0_up" in names
    assert not any("ttbar" in n for n in names)


def test_failing_chunk_names_file_and_range(client, tmp_path):
    bad = tmp_path / "bad.root"
    with uproot.recreate(bad) as f:
        f.mktree("Events", {"run": np.uint32}).extend({"run": np.ones(250, np.uint32)})
    (tmp_path / "catalogue.json").write_text(json.dumps(
        {"wjets": {"nominal": {"nevts_total": 250, "files": [{"path": "bad.root", "nevts": 250}]}}}
    ))
    plan = distributed.plan_chunks(samples.load_samples(tmp_path), 100, None, 42)
    with pytest.raises(ReanimateError, match=r"bad\.root entries \[\d+, \d+\)"):
        distributed.run_chunks(client, plan.tasks, progress=False)


def test_catalogue_errors(tmp_path):
    with pytest.raises(ReanimateError, match="catalogue not found"):
        samples.load_samples(tmp_path)
    (tmp_path / "catalogue.json").write_text(json.dumps(
        {"wjets": {"ME_var": {"nevts_total": 1, "files": [{"path": "x.root", "nevts": 1}]}}}
    ))
    with pytest.raises(ReanimateError, match="unknown variation"):
        samples.load_samples(tmp_path)
    (tmp_path / "catalogue.json").write_text(json.dumps(
        {"wjets": {"nominal": {"nevts_total": 1, "files": [{"path": "x.root", "nevts": 1}]}}}
    ))
    with pytest.raises(ReanimateError, match="x.root: file not found"):
        distributed.plan_chunks(samples.load_samples(tmp_path), 10, None, 42)
    with pytest.raises(ReanimateError, match="not in the catalogue"):
        samples.load_samples(tmp_path, ["zprime_500"])
    assert distributed.parse_memory("2Gi") == 2 * 1024**3
    with pytest.raises(ReanimateError, match="invalid memory"):
        distributed.parse_memory("lots")


def test_max_files_changes_the_normalisation(client, catalogue):
    plan = distributed.plan_chunks(samples.load_samples(catalogue, ["wjets"]), 1000, 1, 42)
    assert plan.nevts[("wjets", "nominal")] == 260
    assert plan.tasks[0].weight == pytest.approx(15487.164 * 3378 / 260)


def test_existing_scheduler_from_environment(catalogue, tmp_path, monkeypatch):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                      dashboard_address=":0") as cluster:
        monkeypatch.setenv("DASK_SCHEDULER_URI", cluster.scheduler_address)
        rc = step.main(["--samples", str(catalogue), "--histograms", str(tmp_path / "h.root"),
                        "--processes", "single_top_s_chan", "--chunk_size", "150",
                        "--no_progress"])
        assert rc == 0
        assert cluster.scheduler.task_prefixes  # the work ran on that scheduler
    with uproot.open(tmp_path / "h.root") as f:
        assert "4j2b_single_top_s_chan" in [k.split(";")[0] for k in f.keys()]


def _step(*args, **kw):
    argv = [sys.executable, "-m", "reanimate.analyses.agc.steps.histograms", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=240, **kw)


def test_step_program_with_worker_processes_and_compare(reference, catalogue, tmp_path, cli):
    """Real worker processes (2), then `reanimate agc compare` on the ROOT and JSON outputs."""
    out, js = tmp_path / "h.root", tmp_path / "h.json"
    proc = _step("--samples", catalogue, "--histograms", out, "--dump_json", js,
                 "--dask_workers", 2, "--dask_threads_per_worker", 1,
                 "--dask_memory_per_worker", "1Gi", "--chunk_size", 100)
    assert proc.returncode == 0, proc.stderr
    assert "124 histograms" in proc.stderr
    ref = reference[0]  # in-process threads, 2 workers, same chunks
    (tmp_path / "threads").mkdir()
    mine = tmp_path / "threads" / "h.root"
    output.write_root(mine, ref)
    assert out.read_bytes() == mine.read_bytes()
    doc = json.loads(js.read_text())
    assert len(doc) == 124 and len(doc["4j1b_ttbar"]["contents"]) == 27
    assert len(doc["4j1b_ttbar"]["edges"]) == 26

    assert cli("agc", "compare", out, js).returncode == 0
    contents = doc["4j2b_wjets_btag_var_2_up"]["contents"]
    peak = int(np.argmax(contents))
    contents[peak] *= 1.01
    doc["4j1b_ttbar_pt_res_up"]["contents"][7] *= 3  # skipped: random in the reference
    del doc["4j1b_single_top_tW"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    res = cli("agc", "compare", out, bad)
    assert res.returncode == 1
    assert "4j2b_wjets_btag_var_2_up" in res.stdout and f"bin {peak} " in res.stdout
    assert "4j1b_single_top_tW: only in the reference (missing from the other file)" in res.stdout
    assert "pt_res_up" not in res.stdout


def test_one_worker_runs_in_process_with_the_same_bytes(reference, catalogue, tmp_path):
    """`--dask_workers 1` (threads 1, no scheduler): no cluster, the chunks here, same bytes."""
    out = tmp_path / "h.root"
    proc = _step("--samples", catalogue, "--histograms", out, "--dask_workers", 1,
                 "--chunk_size", 100, env={**os.environ, "DASK_SCHEDULER_URI": ""})
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "ref").mkdir()
    mine = tmp_path / "ref" / "h.root"
    output.write_root(mine, reference[0])
    assert out.read_bytes() == mine.read_bytes()
    assert distributed.in_process(1, 1, None) and not distributed.in_process(2, 1, None)
    assert not distributed.in_process(1, 1, "tcp://127.0.0.1:1")


def test_step_program_user_errors(tmp_path):
    proc = _step("--samples", tmp_path, "--histograms", tmp_path / "h.root", "--no_progress")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "catalogue not found" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _step("--samples", tmp_path, "--histograms", tmp_path / "h.root", "--chunk_size", "x")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0


def test_scheduler_without_workers_is_an_error_not_a_hang(monkeypatch):
    from distributed import LocalCluster

    from reanimate import dask_cluster

    monkeypatch.setattr(dask_cluster, "WAIT_FOR_WORKERS_S", 1)
    monkeypatch.setattr(dask_cluster, "CONNECT_TIMEOUT_S", 2)
    with LocalCluster(n_workers=0, processes=False, protocol="tcp",
                      dashboard_address=":0") as cluster:
        with pytest.raises(ReanimateError, match="has no workers"):
            with distributed.dask_client(scheduler=cluster.scheduler_address):
                pass
    with pytest.raises(ReanimateError, match="cannot connect"):
        with distributed.dask_client(scheduler="tcp://127.0.0.1:1"):
            pass
