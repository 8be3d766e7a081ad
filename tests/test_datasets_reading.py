"""Reading: the real file and generated files through one code path; bad input; AGC import."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot
from datasets_helpers import BRANCHES, REAL_NANOAOD, REAL_SHA256, regions

from reanimate.analyses.agc.catalogue import import_agc
from reanimate.datasets import (
    check_branches,
    iterate_events,
    load_catalogue,
    num_entries,
    open_events_tree,
    read_events,
    resolve,
)
from reanimate.datasets.schema import BRANCHES as SCHEMA
from reanimate.errors import ReanimateError


@pytest.fixture
def real():
    if not REAL_NANOAOD.exists():
        pytest.skip(f"shared data not found at {REAL_NANOAOD}")
    return REAL_NANOAOD


def test_real_file_reads_every_schema_branch(real):
    events = read_events(real, list(SCHEMA))
    assert len(events) == 200
    assert str(ak.type(events.Jet_pt)) == "200 * var * float32"
    assert str(ak.type(events.Muon_tightId)) == "200 * var * bool"
    assert events.event.type.content.primitive == "uint64"
    assert ak.all(events.nJet == ak.num(events.Jet_pt))
    assert events.event[0] == 227291401


def test_real_file_entry_range_and_selection(real):
    part = read_events(real, BRANCHES, entry_start=50, entry_stop=80)
    assert len(part) == 30
    whole = read_events(real, BRANCHES)
    assert ak.all(ak.flatten(part.Jet_pt) == ak.flatten(whole.Jet_pt[50:80]))
    obs = regions(whole)
    assert np.isnan(obs["4j1b"]).all() and np.isnan(obs["4j2b"]).all()  # README: none pass


def test_iterate_events_matches_read_events(real):
    chunks = list(iterate_events(real, ["Jet_pt", "event"], 64))
    assert [(a, b) for a, b, _ in chunks] == [(0, 64), (64, 128), (128, 192), (192, 200)]
    whole = read_events(real, ["Jet_pt", "event"])
    joined = ak.concatenate([c for _, _, c in chunks])
    assert ak.all(joined.event == whole.event)
    assert ak.all(ak.flatten(joined.Jet_pt) == ak.flatten(whole.Jet_pt))


def test_open_events_tree(real):
    tree = open_events_tree(real)
    try:
        assert tree.num_entries == 200
        check_branches(tree, list(SCHEMA))
    finally:
        tree.file.close()
    assert num_entries(real) == 200


# -- bad input ---------------------------------------------------------------------------------


def _write_tree(path, tree_name="Events", branches=None):
    branches = branches or {"Jet_pt": ak.values_astype(ak.Array([[1.0, 2.0], []]), np.float32)}
    with uproot.recreate(path) as f:
        jagged = {k: v for k, v in branches.items() if isinstance(v, ak.Array)}
        flat = {k: v for k, v in branches.items() if not isinstance(v, ak.Array)}
        types = {k: v.type.content for k, v in jagged.items()} | {
            k: v.dtype for k, v in flat.items()
        }
        tree = f.mktree(tree_name, types)
        tree.extend(branches)


def test_not_a_root_file(tmp_path):
    path = tmp_path / "notes.root"
    path.write_text("this is not ROOT\n")
    with pytest.raises(ReanimateError, match="notes.root: not a readable ROOT file"):
        read_events(path, ["Jet_pt"])


def test_missing_file(tmp_path):
    with pytest.raises(ReanimateError, match="missing.root: file not found"):
        read_events(tmp_path / "missing.root", ["Jet_pt"])


def test_missing_tree(tmp_path):
    path = tmp_path / "other.root"
    _write_tree(path, tree_name="Runs")
    with pytest.raises(ReanimateError, match=r"other.root: no 'Events' tree \(keys: Runs\)"):
        read_events(path, ["Jet_pt"])


def test_missing_branch(tmp_path):
    path = tmp_path / "partial.root"
    _write_tree(path)
    with pytest.raises(ReanimateError, match="partial.root: branch 'Jet_btagCSVV2' missing"):
        read_events(path, ["Jet_pt", "Jet_btagCSVV2"])


def test_mistyped_branch(tmp_path):
    path = tmp_path / "double.root"
    _write_tree(
        path,
        branches={
            "Jet_pt": ak.Array([[1.0, 2.0], []]),  # float64, not float32
            "event": np.array([1, 2], np.int64),
        },
    )
    with pytest.raises(
        ReanimateError,
        match=r"double.root: branch 'Jet_pt' has type "
        r"AsJagged\(AsDtype\('>f8'\)\), expected "
        r"AsJagged\(AsDtype\('>f4'\)\)",
    ):
        read_events(path, ["Jet_pt"])
    with pytest.raises(ReanimateError, match="branch 'event' has type AsDtype\\('>i8'\\)"):
        read_events(path, ["event"])


def test_signed_counter_is_refused(tmp_path):
    """Plain uproot writes nJet as int32; the real files have uint32."""
    path = tmp_path / "uproot_default.root"
    _write_tree(
        path, branches={"Jet": ak.zip({"pt": ak.values_astype(ak.Array([[1.0], []]), np.float32)})}
    )
    read_events(path, ["Jet_pt"])  # the jagged branch itself is fine
    with pytest.raises(ReanimateError, match="branch 'nJet' has type AsDtype\\('>i4'\\)"):
        read_events(path, ["nJet"])


# -- AGC catalogue import ----------------------------------------------------------------------


def _agc_json(tmp_path, files, process="ttbar"):
    path = tmp_path / "agc" / "nanoaod_inputs.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({process: {"nominal": {"nevts_total": 999, "files": files}}}))
    return path


def test_import_agc_local_and_remote(real, tmp_path):
    remote = "https://xrootd-local.unl.edu:1094//store/user/AGC/nanoAOD/TT/file_0000.root"
    agc = _agc_json(
        tmp_path,
        [
            {"path": str(real), "nevts": 200},
            {"path": remote, "nevts": 313000},
            {"path": str(real), "nevts": 200},
        ],
    )
    out = tmp_path / "cat" / "catalogue.json"
    catalogue = import_agc(agc, out, max_files_per_sample=2)
    entry = catalogue.root["ttbar"]["nominal"]
    assert entry.xsec_pb == 729.84
    assert entry.nevts_total == 200 + 313000
    local, far = entry.files
    assert local.sha256 == REAL_SHA256 and local.nevts == 200
    assert not local.path.startswith("/")
    assert resolve(out, local.path) == str(real.resolve())
    assert far.path == remote and far.sha256 is None and far.nevts == 313000
    assert load_catalogue(out) == catalogue
    # the imported local file reads through the same code path
    events = read_events(resolve(out, local.path), ["Jet_pt"])
    assert len(events) == 200


def test_import_agc_relative_path_and_cli(real, tmp_path, cli):
    agc_dir = tmp_path / "agc"
    agc_dir.mkdir()
    (agc_dir / "data.root").write_bytes(real.read_bytes())
    agc = _agc_json(tmp_path, [{"path": "data.root"}], process="wjets")
    proc = cli("datasets", "import-agc", agc, "--out", tmp_path / "ours.json")
    assert proc.returncode == 0, proc.stderr
    raw = json.loads((tmp_path / "ours.json").read_text())
    assert raw == {
        "wjets": {
            "nominal": {
                "nevts_total": 200,
                "xsec_pb": 15487.164,
                "files": [{"path": "agc/data.root", "nevts": 200, "sha256": REAL_SHA256}],
            }
        }
    }


def test_import_agc_refuses_bad_input(real, tmp_path):
    out = tmp_path / "out.json"
    with pytest.raises(ReanimateError, match="has 200 entries, the AGC file says 5"):
        import_agc(_agc_json(tmp_path, [{"path": str(real), "nevts": 5}]), out)
    with pytest.raises(ReanimateError, match="unknown process 'zz'"):
        import_agc(_agc_json(tmp_path, [], process="zz"), out)
    text = tmp_path / "text.root"
    text.write_text("nope")
    with pytest.raises(ReanimateError, match="text.root: not a readable ROOT file"):
        import_agc(_agc_json(tmp_path, [{"path": str(text)}]), out)
    assert not out.exists()
