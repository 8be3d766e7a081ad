"""Generated files have exactly the schema of the real CMS NanoAOD file (docs/agc-analysis.md
§1)."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
from datasets_helpers import REAL_NANOAOD

from reanimate.analyses.agc.generate import generate
from reanimate.datasets.schema import BRANCHES, PRECISION_BITS, reduce_mantissa


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("schema")
    generate(out, events=300, signal_masses=[1000])
    return out / "ttbar__nominal__000.root"


def _describe(branch) -> dict:
    leaf = branch.member("fLeaves")[0]
    count = leaf.member("fLeafCount")
    return {
        "interpretation": repr(branch.interpretation),
        "typename": branch.typename,
        "leaf class": leaf.classname,
        "unsigned": bool(leaf.member("fIsUnsigned")),
        "counter": None if count is None else count.member("fName"),
        "leaf title": leaf.member("fTitle"),
    }


def _describe_all(path) -> dict[str, dict]:
    with uproot.open(path) as f:
        tree = f["Events"]
        return {name: _describe(tree[name]) for name in BRANCHES}


@pytest.fixture(scope="module")
def real_schema():
    if not REAL_NANOAOD.exists():
        pytest.skip(f"shared data not found at {REAL_NANOAOD}")
    return _describe_all(REAL_NANOAOD)  # opening the 947-branch file once per module


@pytest.fixture(scope="module")
def our_schema(generated):
    return _describe_all(generated)


@pytest.mark.parametrize("name", sorted(BRANCHES))
def test_branch_matches_real_file(name, our_schema, real_schema):
    assert our_schema[name] == real_schema[name]


def test_frozen_table_matches_real_file(real_schema):
    for name, spec in BRANCHES.items():
        assert real_schema[name]["interpretation"] == spec.interpretation, name
        assert real_schema[name]["counter"] == spec.counter, name


def test_generated_has_only_schema_branches_and_one_tree(generated):
    with uproot.open(generated) as ours:
        assert [k.split(";")[0] for k in ours.keys()] == ["Events"]
        assert set(ours["Events"].keys()) == set(BRANCHES)


def _mantissa_bits(values: np.ndarray) -> int:
    raw = values[values != 0].astype(np.float32).view(np.uint32) & np.uint32(0x7FFFFF)
    if raw.size == 0:
        return 0
    lowest = raw & (~raw + np.uint32(1))  # lowest set bit
    lowest = np.where(raw == 0, np.uint32(1 << 23), lowest)
    return int(23 - np.log2(lowest.astype(np.float64)).min())


@pytest.mark.parametrize("name", sorted(PRECISION_BITS))
def test_float_precision_like_nanoaod(name, generated):
    with uproot.open(generated) as ours:
        values = ak.to_numpy(ak.flatten(ours["Events"][name].array()))
    assert _mantissa_bits(values) <= PRECISION_BITS[name]


def test_reduce_mantissa_rounds_like_cms():
    x = np.array([28.81234, 1.0, -3.14159, 0.0], np.float32)
    assert reduce_mantissa(x, 8).tolist() == [28.8125, 1.0, -3.140625, 0.0]
    # all-ones mantissa does not carry into the exponent (CMS behaviour)
    assert reduce_mantissa(np.array([1.9999999], np.float32), 8)[0] == np.float32(1.99609375)


def test_counters_agree_with_jagged_lengths(generated):
    with uproot.open(generated) as ours:
        events = ours["Events"].arrays(["nJet", "Jet_pt", "nGenPart", "GenPart_pdgId"])
    assert ak.all(events.nJet == ak.num(events.Jet_pt))
    assert ak.all(events.nGenPart == ak.num(events.GenPart_pdgId))
