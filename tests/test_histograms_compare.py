"""AGC validation semantics of `reanimate agc compare`, the JSON format, the filler hook."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
from _agc_reference import random_events

from reanimate.analyses.agc import output, processing
from reanimate.analyses.agc.compare import Histogram, compare, compare_histogram, extras, load
from reanimate.errors import ReanimateError

EDGES = np.linspace(50, 550, 26)


def h(contents, w=2.0):
    c = np.asarray(contents, float)
    return Histogram(EDGES, c, c * w)  # every event weighs w


def base():
    c = np.zeros(27)
    c[5:10] = [10, 20, 30, 20, 10]
    return c


def test_identical_and_rtol():
    assert compare_histogram("x", h(base()), h(base() * (1 + 5e-6))) is None
    m = compare_histogram("x", h(base()), h(base() * (1 + 5e-5)))
    assert m is not None and m.bins == [5, 6, 7, 8, 9]


def test_bin_migration_of_up_to_two_events_passes():
    moved = base()
    moved[6] -= 4.0  # two events of weight 2 migrate to the next bin
    moved[7] += 4.0
    assert compare_histogram("x", h(base()), h(moved)) is None
    too_many = base()
    too_many[6] -= 6.0  # three events
    too_many[7] += 6.0
    assert compare_histogram("x", h(base()), h(too_many)).bins == [6, 7]
    lost = base()
    lost[6] -= 2.0  # one event missing: the run's sum differs
    assert compare_histogram("x", h(base()), h(lost)).bins == [6]


def test_pt_res_up_contents_are_skipped_but_edges_are_not():
    assert compare_histogram("4j1b_ttbar_pt_res_up", h(base()), h(base() * 3)) is None
    other = Histogram(np.linspace(0, 500, 26), base(), base())
    assert "edges differ" in compare_histogram("4j1b_ttbar_pt_res_up", h(base()), other).reason


def test_names_on_one_side_only():
    """The reference's names are compared (as the AGC validator does); extras are information."""
    ref, other = {"a": h(base()), "b": h(base())}, {"b": h(base()), "c": h(base())}
    out = compare(ref, other)
    assert [(m.name, m.reason) for m in out] == [
        ("a", "only in the reference (missing from the other file)"),
    ]
    assert extras(ref, other) == ["c"]
    assert compare(other, {**other, "d": h(base())}) == []  # extras alone never fail
    assert extras(other, {**other, "d": h(base())}) == ["d"]


def _write(path, names, scale=1.0):
    output.write_json(path, {n: np.stack([base() * scale, base() * scale * 2]) for n in names})
    return path


def test_cli_compares_the_reference_names_and_lists_the_extras(tmp_path, cli):
    """Before: any histogram on one side only failed the comparison, whichever side it was."""
    ref = _write(tmp_path / "ref.json", ["4j1b_ttbar", "4j2b_ttbar"])
    more = _write(tmp_path / "more.json", ["4j1b_ttbar", "4j2b_ttbar", "4j1b_zprime_750"])
    res = cli("agc", "compare", ref, more)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines() == [
        f"1 histogram(s) only in {more}, not compared (not in the reference): 4j1b_zprime_750",
        "2 reference histogram(s) agree",
    ]
    same = cli("agc", "compare", more, "--reference", ref)
    assert same.returncode == 0 and same.stdout == res.stdout
    # the other way round the reference has a histogram the other file lacks: exit 1
    res = cli("agc", "compare", more, ref)
    assert res.returncode == 1
    assert res.stdout.splitlines() == [
        "4j1b_zprime_750: only in the reference (missing from the other file)",
        f"1 of 3 reference histogram(s) differ or are missing from {ref}",
    ]
    assert cli("agc", "compare", ref, "-r", more).returncode == 1
    # a differing reference histogram fails even with extras present
    off = _write(tmp_path / "off.json", ["4j1b_ttbar", "4j2b_ttbar", "x"], scale=1.01)
    res = cli("agc", "compare", ref, off)
    assert res.returncode == 1 and "4j1b_ttbar: contents differ" in res.stdout
    assert "only in" in res.stdout and ": x" in res.stdout
    # usage: one file without --reference, or three files; an empty reference
    for args in ((ref,), (ref, more, "--reference", ref)):
        bad = cli("agc", "compare", *args)
        assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0, bad.stderr
    (tmp_path / "empty.json").write_text("{}")
    bad = cli("agc", "compare", tmp_path / "empty.json", ref)
    assert bad.returncode == 2 and "the reference holds no histograms" in bad.stderr
    helptext = cli("agc", "compare", "--help").stdout
    assert "--reference" in helptext and "not compared" in helptext


def test_json_without_variances_uses_the_smallest_content(tmp_path):
    hists = {"4j1b_ttbar": np.stack([base() * 2.0, base() * 4.0])}
    a = tmp_path / "a.json"
    output.write_json(a, hists)
    doc = json.loads(a.read_text())
    assert list(doc) == ["4j1b_ttbar"] and doc["4j1b_ttbar"]["edges"] == EDGES.tolist()
    doc["4j1b_ttbar"]["contents"][6] -= 20.0  # smallest non-zero content: 20 -> 2 "events" = 40
    doc["4j1b_ttbar"]["contents"][7] += 20.0
    b = tmp_path / "b.json"
    b.write_text(json.dumps(doc))
    assert compare(load(a), load(b)) == []
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(ReanimateError, match="neither a ROOT file nor AGC histogram JSON"):
        load(tmp_path / "c.json")


def test_only_non_zero_histograms_are_written_in_canonical_order():
    z = np.zeros((2, 27))
    one = np.zeros((2, 27))
    one[:, 3] = 1
    hists = {"4j2b_wjets": one, "4j1b_ttbar_btag_var_0_up": one, "4j1b_ttbar": one,
             "4j1b_wjets_scale_var_up": z, "4j1b_pseudodata": one, "4j1b_zprime_750": one}
    assert output.ordered(hists) == [
        "4j1b_pseudodata", "4j1b_ttbar", "4j1b_ttbar_btag_var_0_up", "4j1b_zprime_750",
        "4j2b_wjets",
    ]


def test_filler_hook_sees_every_region_and_variation(tmp_path):
    path = random_events(tmp_path / "r.root", 300, seed=5)

    class CountJets:
        branches = ("Jet_qgl",)
        seen: list = []

        def __call__(self, process, selection, events, weights):
            self.seen.append((selection.region, selection.pt_variation, sorted(weights)))
            assert len(events) == int(selection.event_mask.sum()) == len(selection.observable)
            assert len(events.Jet_qgl) == len(selection.jets)
            assert ak.all(selection.jets.pt > 30)  # ak view of the selected jets
            n = np.asarray(selection.jet_counts, float)
            return {f"njets_{selection.region}_{process}_{v}": processing.fill(n, w)
                    for v, w in weights.items()}

    filler = CountJets()
    task = processing.ChunkTask("wjets", "nominal", str(path), 0, 300, 1.0, 42)
    hists, _ = processing.process_chunk(task, fillers=[filler])
    assert [(r, v) for r, v, _ in filler.seen] == [
        (r, v) for v in ("nominal", "pt_scale_up", "pt_res_up") for r in ("4j1b", "4j2b")
    ]
    assert "scale_var_up" in filler.seen[0][2] and "btag_var_3_down" in filler.seen[0][2]
    assert hists["njets_4j2b_wjets_nominal"][0].sum() == hists["4j2b_wjets"][0].sum()
