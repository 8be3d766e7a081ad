"""Bad catalogues and bad files are refused with one located line (exit 2), never histogrammed.

The histogram stage: non-finite numbers, swapped files (sha256), empty catalogues, and a corrupt
file whose error reaches stderr as exactly one line (no Dask "Compute Failed" block). The
importer (`reanimate datasets import-agc`): truncated files, missing branches, a file listed
twice, `--out` equal to the input or a directory, variations the stage refuses, malformed
entries. Real generated files, real Dask LocalClusters (the step program's own), no mocks.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import uproot

from reanimate.analyses.agc import distributed, samples
from reanimate.analyses.agc.catalogue import import_agc
from reanimate.datasets import load_catalogue, num_entries
from reanimate.errors import DigestMismatch, ReanimateError

generate = pytest.importorskip("reanimate.analyses.agc.generate")

PROG = "python -m reanimate.analyses.agc.steps.histograms"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    generate.generate(out, events=300, seed=5, signal_masses=[750], events_per_file=300)
    return out


@pytest.fixture
def copy(generated, tmp_path) -> Path:
    """A private copy of the generated samples and catalogue, free to damage."""
    dst = tmp_path / "samples"
    shutil.copytree(generated, dst)
    return dst


def _step(samples_dir: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "reanimate.analyses.agc.steps.histograms",
            "--samples", str(samples_dir), "--histograms", str(out),
            "--dask_workers", "1", "--dask_memory_per_worker", "1Gi", *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=240)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {PROG}: "), lines[0]
    return lines[0]


def _edit(catalogue: Path, change) -> None:
    doc = json.loads(catalogue.read_text())
    change(doc)
    catalogue.write_text(json.dumps(doc, indent=1))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- 1. the stage's catalogue


def test_nan_cross_section_is_refused_by_the_step(copy, tmp_path):
    cat = copy / "catalogue.json"
    _edit(cat, lambda doc: doc["wjets"]["nominal"].update(xsec_pb="@@"))
    cat.write_text(cat.read_text().replace('"@@"', "NaN"))  # json.dumps would write NaN too
    out = tmp_path / "h.root"
    line = _one_error_line(_step(copy, out, "--no_progress"))
    assert f"{cat}: wjets.nominal.xsec_pb: NaN is not a finite number" in line
    assert not out.exists()


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
@pytest.mark.parametrize("field", ["xsec_pb", "nevts"])
def test_non_finite_numbers_are_refused_where_they_are(copy, token, field):
    cat = copy / "catalogue.json"
    doc = json.loads(cat.read_text())
    if field == "xsec_pb":
        doc["ttbar"]["PS_var"]["xsec_pb"] = "@@"
        where = "ttbar.PS_var.xsec_pb"
    else:
        doc["ttbar"]["PS_var"]["files"][0]["nevts"] = "@@"
        where = "ttbar.PS_var.files[0].nevts"
    cat.write_text(json.dumps(doc).replace('"@@"', token))
    with pytest.raises(ReanimateError, match=re.escape(f"{where}: {token} is not a finite number")):
        samples.load_samples(copy)
    with pytest.raises(ReanimateError, match="not a finite number"):  # the generic loader too
        load_catalogue(cat)


def test_integer_cross_section_too_large_for_a_float_is_refused(copy):
    cat = copy / "catalogue.json"
    _edit(cat, lambda doc: doc["wjets"]["nominal"].update(xsec_pb=10**400))
    with pytest.raises(ReanimateError, match=r"wjets\.nominal\.xsec_pb: not a finite number"):
        samples.load_samples(copy)


def test_swapped_file_of_the_same_catalogue_is_refused_by_the_step(copy, tmp_path):
    """Another sample's file put in place of ttbar ME_var: its sha256 no longer matches."""
    target = copy / "ttbar__ME_var__000.root"
    target.write_bytes((copy / "ttbar__PS_var__000.root").read_bytes())
    out = tmp_path / "h.root"
    line = _one_error_line(_step(copy, out, "--no_progress"))
    assert f"{copy / 'catalogue.json'}: ttbar.ME_var: {target}: sha256 " in line
    assert "differs from the catalogue's" in line
    assert not out.exists()


def test_sha256_is_checked_before_any_chunk_and_each_file_once(copy):
    sample_list = samples.load_samples(copy, ["ttbar", "zprime_750"])
    # the generated catalogue lists 6 files here; each distinct file is hashed once
    assert samples.verify_files(sample_list) == 6
    # the same file listed by two samples (and a second time) is still hashed once
    cat = copy / "catalogue.json"
    nominal = json.loads(cat.read_text())["ttbar"]["nominal"]["files"][0]

    def share(doc):
        doc["zprime_750"]["nominal"]["files"] = [nominal]
        doc["zprime_750"]["nominal"]["nevts_total"] = nominal["nevts"]

    _edit(cat, share)
    assert samples.verify_files(samples.load_samples(copy, ["ttbar", "zprime_750"])) == 5
    # a file changed in place (same size) is refused by the plan, before any chunk exists
    path = copy / "wjets__nominal__000.root"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch, match=r"wjets\.nominal: .*wjets__nominal__000\.root"):
        distributed.plan_chunks(samples.load_samples(copy), 100, None, 42)
    # only the files that will be read are checked (--max_files_per_sample, the default
    # processes without the signals)
    (copy / "zprime_750__nominal__000.root").write_bytes(b"gone")
    _edit(cat, lambda doc: doc["wjets"]["nominal"]["files"][0].update(sha256=_sha256(path)))
    plan = distributed.plan_chunks(samples.load_samples(copy), 100, None, 42)
    assert plan.tasks and not any("zprime" in t.path for t in plan.tasks)


def test_malformed_sha256_is_refused(copy):
    cat = copy / "catalogue.json"
    _edit(cat, lambda doc: doc["wjets"]["nominal"]["files"][0].update(sha256="ABC"))
    with pytest.raises(ReanimateError, match=r"wjets\.nominal\.files\[0\]: 'sha256' must be"):
        samples.load_samples(copy)


def test_empty_catalogue_is_refused_by_the_step(tmp_path):
    (tmp_path / "catalogue.json").write_text("{}")
    out = tmp_path / "h.root"
    line = _one_error_line(_step(tmp_path, out, "--no_progress"))
    assert f"{tmp_path / 'catalogue.json'}: no samples" in line
    assert not out.exists()


@pytest.mark.parametrize(("doc", "message"), [
    ({}, r"catalogue\.json: no samples \(the catalogue is empty\)"),
    ({"wjets": {}}, r"catalogue\.json: wjets: no samples \(no variations\)"),
    ({"wjets": {"nominal": {"nevts_total": 0, "files": []}}},
     r"catalogue\.json: wjets\.nominal: no files"),
    ({"zprime_750": {"nominal": {"nevts_total": 0, "xsec_pb": 1.0, "files": [
        {"path": "z.root", "nevts": 1}]}}}, r"catalogue\.json: no samples to histogram: only "
     r"signals \(zprime_750\)"),
])
def test_catalogue_without_samples_or_files_is_refused(tmp_path, doc, message):
    (tmp_path / "catalogue.json").write_text(json.dumps(doc))
    with pytest.raises(ReanimateError, match=message):
        samples.load_samples(tmp_path)


# ---------------------------------------------------------------- 3. a corrupt file: one line


def _corrupt_basket(path: Path, branch: str = "Jet_pt") -> None:
    """Overwrite the compressed payload of ``branch``'s first basket with zeros."""
    with uproot.open(path) as f:
        seek = int(f["Events"][branch].member("fBasketSeek")[0])
        size = int(f["Events"][branch].member("fBasketBytes")[0])
    assert size > 400
    data = bytearray(path.read_bytes())
    data[seek + 150 : seek + 350] = bytes(200)
    path.write_bytes(bytes(data))


def test_corrupt_file_gives_exactly_one_line_on_stderr(copy, tmp_path):
    """The file was corrupt when catalogued (its sha256 matches): reading it fails on a worker.

    Before: a Dask "Compute Failed" block with the task, the exception and a traceback, then the
    stage's line. Now stderr is that line alone, naming the file and its entry range.
    """
    bad = copy / "wjets__nominal__000.root"
    _corrupt_basket(bad)
    _edit(copy / "catalogue.json",
          lambda doc: doc["wjets"]["nominal"]["files"][0].update(sha256=_sha256(bad)))
    assert num_entries(bad) > 0  # the tree itself opens: the damage is in the data
    out = tmp_path / "h.root"
    proc = _step(copy, out, "--no_progress", "--chunk_size", "100", "--processes",
                 "ttbar,wjets")
    line = _one_error_line(proc)
    assert f"failed: {bad} entries [" in line and "(wjets.nominal)" in line
    assert "Compute Failed" not in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_failing_chunk_is_returned_not_logged(copy):
    """In-process: the failure comes back as a value and becomes the one ReanimateError."""
    bad = copy / "single_top_tW__nominal__000.root"
    _corrupt_basket(bad)
    _edit(copy / "catalogue.json",
          lambda doc: doc["single_top_tW"]["nominal"]["files"][0].update(sha256=_sha256(bad)))
    plan = distributed.plan_chunks(samples.load_samples(copy, ["single_top_tW"]), 1000, None, 42)
    with distributed.dask_client(workers=1, threads_per_worker=1, memory_per_worker="1Gi",
                                 processes=False) as client:
        with pytest.raises(ReanimateError, match=r"single_top_tW__nominal__000\.root entries "
                                                 r"\[0, \d+\) \(single_top_tW\.nominal\): "):
            distributed.run_chunks(client, plan.tasks, progress=False)
        value = client.submit(distributed.guarded, distributed.process_chunk, plan.tasks[0],
                              pure=False).result()
    assert isinstance(value, distributed.ChunkFailure) and str(bad) in value.message


# ---------------------------------------------------------------- 2. import-agc


def _agc(tmp_path: Path, doc) -> Path:
    path = tmp_path / "nanoaod_inputs.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _import_cli(cli, agc: Path, out: Path | str) -> str:
    proc = cli("datasets", "import-agc", agc, "--out", out)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr and "validation error" not in proc.stderr
    return lines[0]


def test_import_refuses_a_truncated_file(generated, tmp_path, cli):
    data = (generated / "ttbar__nominal__000.root").read_bytes()
    cut = tmp_path / "cut.root"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    agc = _agc(tmp_path, {"ttbar": {"nominal": {"files": [{"path": "cut.root"}]}}})
    line = _import_cli(cli, agc, tmp_path / "out.json")
    assert "ttbar.nominal.files[0]" in line and f"{cut}: truncated ROOT file" in line
    assert not (tmp_path / "out.json").exists()
    with pytest.raises(ReanimateError, match="truncated ROOT file"):  # the stage's reader too
        num_entries(cut)


def test_import_refuses_a_file_missing_a_branch_the_stage_reads(generated, tmp_path):
    """An Events tree with the event identifiers only: no lepton or jet branch."""
    with uproot.open(generated / "wjets__nominal__000.root") as f:
        arrays = f["Events"].arrays(["run", "luminosityBlock", "event"], library="np")
    path = tmp_path / "few.root"
    with uproot.recreate(path) as f:
        f.mktree("Events", {k: v.dtype for k, v in arrays.items()}).extend(arrays)
    agc = _agc(tmp_path, {"wjets": {"nominal": {"files": [{"path": "few.root"}]}}})
    with pytest.raises(ReanimateError, match=r"wjets\.nominal\.files\[0\]: .*few\.root: branch "
                                             r"'Electron_pt' missing"):
        import_agc(agc, tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()


def test_import_refuses_a_file_listed_twice(generated, tmp_path):
    src = generated / "ttbar__nominal__000.root"
    (tmp_path / "a.root").write_bytes(src.read_bytes())
    (tmp_path / "b.root").write_bytes(src.read_bytes())
    out = tmp_path / "out.json"
    agc = _agc(tmp_path, {"ttbar": {"nominal": {"files": [{"path": "a.root"}]},
                                    "scaleup": {"files": [{"path": "./a.root"}]}}})
    with pytest.raises(ReanimateError, match=rf"ttbar\.scaleup\.files\[0\]: {tmp_path}/a\.root "
                                             rf"is also listed at ttbar\.nominal\.files\[0\]"):
        import_agc(agc, out)
    agc = _agc(tmp_path, {"ttbar": {"nominal": {"files": [{"path": "a.root"},
                                                          {"path": "b.root"}]}}})
    with pytest.raises(ReanimateError, match=r"files\[1\]: .*b\.root has the same content "
                                             r"\(sha256\) as the file listed at "
                                             r"ttbar\.nominal\.files\[0\]"):
        import_agc(agc, out)
    url = "https://example.org/store/x.root"
    agc = _agc(tmp_path, {"wjets": {"nominal": {"files": [{"path": url, "nevts": 5},
                                                          {"path": url, "nevts": 5}]}}})
    with pytest.raises(ReanimateError, match=r"files\[1\]: https://example\.org/store/x\.root "
                                             r"is also listed at wjets\.nominal\.files\[0\]"):
        import_agc(agc, out)
    assert not out.exists()


def test_import_refuses_out_equal_to_input_or_a_directory(generated, tmp_path, cli):
    shutil.copy(generated / "wjets__nominal__000.root", tmp_path / "w.root")
    agc = _agc(tmp_path, {"wjets": {"nominal": {"files": [{"path": "w.root"}]}}})
    before = agc.read_bytes()
    line = _import_cli(cli, agc, agc)
    assert "--out is the input" in line
    (tmp_path / "link.json").symlink_to(agc)
    assert "--out is the input" in _import_cli(cli, agc, tmp_path / "link.json")
    assert agc.read_bytes() == before
    line = _import_cli(cli, agc, ".")
    assert line == "error: .: --out is a directory; name the catalogue JSON file to write"


@pytest.mark.parametrize(("doc", "message"), [
    ({"wjets": {"scaleup": {"files": [{"path": "w.root"}]}}},
     r"wjets\.scaleup: unknown variation \(expected nominal, or for ttbar one of"),
    ({"ttbar": {"pt_scale_up": {"files": [{"path": "w.root"}]}}},
     r"ttbar\.pt_scale_up: unknown variation"),
    ({"ttbar": [{"files": [{"path": "w.root"}]}]},
     r"ttbar: expected an object \{variation: \{files: \[\.\.\.\]\}\}, got a list"),
    ({"ttbar": {"nominal": {"files": [{"path": "https://example.org/x.root", "nevts": -5}]}}},
     r"ttbar\.nominal\.files\[0\]: 'nevts' must be a non-negative integer, got -5"),
    ({"ttbar": {"nominal": {"files": [{"path": "w.root", "nevts": -5}]}}},
     r"ttbar\.nominal\.files\[0\]: 'nevts' must be a non-negative integer, got -5"),
    ({"ttbar": {"nominal": {"files": [{"path": "w.root", "nevts": True}]}}},
     r"'nevts' must be a non-negative integer, got true"),
    ('{"ttbar": {"nominal": {"files": [{"path": "w.root", "nevts": NaN}]}}}',
     r"ttbar\.nominal\.files\[0\]\.nevts: NaN is not a finite number"),
    ({"ttbar": {"nominal": {"files": []}}}, r"ttbar\.nominal: no files"),
    ({"ttbar": {}}, r"ttbar: no variations"),
    ({}, r"nanoaod_inputs\.json: no samples"),
])
def test_import_refuses_what_the_stage_would_refuse(generated, tmp_path, cli, doc, message):
    shutil.copy(generated / "wjets__nominal__000.root", tmp_path / "w.root")
    agc = _agc(tmp_path, doc)
    with pytest.raises(ReanimateError, match=message):
        import_agc(agc, tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()


def test_import_errors_are_one_line_on_the_command_line(generated, tmp_path, cli):
    shutil.copy(generated / "wjets__nominal__000.root", tmp_path / "w.root")
    agc = _agc(tmp_path, {"ttbar": [{"files": [{"path": "w.root"}]}]})
    assert "got a list" in _import_cli(cli, agc, tmp_path / "out.json")
    agc = _agc(tmp_path, {"ttbar": {"nominal": {"files": [
        {"path": "https://example.org/x.root", "nevts": -5}]}}})
    assert "'nevts' must be a non-negative integer, got -5" in _import_cli(
        cli, agc, tmp_path / "out.json")


def test_imported_catalogue_is_what_the_stage_accepts(generated, tmp_path):
    """Every variation the importer accepts, the stage accepts (and verifies the sha256)."""
    files = {}
    for variation in samples.VARIATIONS:
        name = f"ttbar__{variation}__000.root"
        shutil.copy(generated / name, tmp_path / name)
        files[variation] = {"files": [{"path": name}]}
    shutil.copy(generated / "wjets__nominal__000.root", tmp_path / "w.root")
    agc = _agc(tmp_path, {"ttbar": files, "wjets": {"nominal": {"files": [{"path": "w.root"}]}}})
    out = tmp_path / "ours" / "catalogue.json"
    catalogue = import_agc(agc, out)
    assert [(p, v) for p, v, _ in catalogue.samples()] == [
        ("ttbar", v) for v in samples.VARIATIONS] + [("wjets", "nominal")]
    sample_list = samples.load_samples(out)
    assert samples.verify_files(sample_list) == 6
    plan = distributed.plan_chunks(sample_list, 1000, None, 42)
    assert plan.nevts[("wjets", "nominal")] == num_entries(tmp_path / "w.root")
    assert np.isfinite([t.weight for t in plan.tasks]).all()
