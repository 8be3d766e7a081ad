"""The generator: determinism, catalogue, physics sanity and AGC region fractions."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import awkward as ak
import numpy as np
import pytest
from datasets_helpers import (
    BRANCHES,
    REFERENCE,
    columns_to_events,
    regions,
    truth_labels_fraction,
)

from reanimate.analyses.agc import generate as gen
from reanimate.datasets import load_catalogue, read_events, resolve, verify_catalogue
from reanimate.errors import DigestMismatch, ReanimateError

SMALL = {"events": 400, "signal_masses": [750], "events_per_file": 250}


def _digests(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("small") / "samples"
    gen.generate(out, seed=7, **SMALL)
    return out


def test_same_seed_same_bytes_anywhere(small, tmp_path):
    again = tmp_path / "elsewhere" / "samples"
    gen.generate(again, seed=7, **SMALL)
    assert _digests(again) == _digests(small)


def test_different_seed_differs(small, tmp_path):
    other = tmp_path / "samples"
    gen.generate(other, seed=8, **SMALL)
    a = read_events(small / "ttbar__nominal__000.root", ["Jet_pt"])
    b = read_events(other / "ttbar__nominal__000.root", ["Jet_pt"])
    assert not ak.all(ak.num(a.Jet_pt) == ak.num(b.Jet_pt)) or not ak.all(
        ak.flatten(a.Jet_pt) == ak.flatten(b.Jet_pt)
    )
    assert (
        _digests(other)["ttbar__nominal__000.root"] != _digests(small)["ttbar__nominal__000.root"]
    )


def test_no_timestamps_or_absolute_paths(small):
    for path in small.iterdir():
        data = path.read_bytes()
        assert str(small).encode() not in data
        assert b"/tmp" not in data


def test_catalogue_format(small):
    raw = json.loads((small / "catalogue.json").read_text())
    catalogue = verify_catalogue(small / "catalogue.json")
    expected = {("ttbar", v) for v in ("nominal", "scaledown", "scaleup", "ME_var", "PS_var")}
    expected |= {
        (p, "nominal")
        for p in ("single_top_s_chan", "single_top_t_chan", "single_top_tW", "wjets", "zprime_750")
    }
    assert {(p, v) for p, v, _ in catalogue.samples()} == expected
    ttbar = raw["ttbar"]["nominal"]
    assert set(ttbar) == {"nevts_total", "xsec_pb", "files"}
    assert ttbar["nevts_total"] == 400 and len(ttbar["files"]) == 2  # split at 250 per file
    assert [f["nevts"] for f in ttbar["files"]] == [200, 200]
    for _, _, entry in catalogue.samples():
        assert entry.nevts_total >= gen.MIN_EVENTS
        for f in entry.files:
            assert not f.path.startswith("/")
            events = read_events(resolve(small / "catalogue.json", f.path), ["event"])
            assert len(events) == f.nevts
    wjets = raw["wjets"]["nominal"]
    assert wjets["nevts_total"] == round(400 * 433_719_099 / 276_079_127)
    assert ttbar["xsec_pb"] == pytest.approx(729.84 * (1 - 0.676**2))


def test_event_numbers_unique_and_balanced(small):
    paths = sorted(small.glob("ttbar__nominal__*.root"))
    ids = np.concatenate([ak.to_numpy(read_events(p, ["event"]).event) for p in paths])
    assert len(np.unique(ids)) == len(ids) == 400
    assert abs(np.mean(ids % 2 == 0) - 0.5) < 0.01


def test_tampered_file_is_refused(small, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in small.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    with open(copy / "wjets__nominal__000.root", "r+b") as f:
        f.seek(-10, 2)
        f.write(b"x")
    with pytest.raises(DigestMismatch, match="wjets__nominal__000.root"):
        verify_catalogue(copy / "catalogue.json")


def test_bad_arguments():
    with pytest.raises(ReanimateError, match="compression"):
        gen.generate("/nonexistent/never", compression="bzip9")
    with pytest.raises(ReanimateError, match="events"):
        gen.plan_samples(0)


def test_zprime_cross_sections_fall_and_interpolate():
    masses = [500, 600, 750, 1000, 1500, 2000, 3000, 4000]
    xsecs = [gen.zprime_xsec_pb(m) for m in masses]
    assert all(a > b for a, b in zip(xsecs, xsecs[1:], strict=False))
    assert gen.zprime_xsec_pb(1000) == pytest.approx(2.5)


# -- physics -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples_in_memory():
    """10k events of the main samples, in memory (same columns as written)."""
    out = {}
    for sample in gen.plan_samples(1000, [1000]):
        if sample.variation != "nominal":
            continue
        rng = np.random.Generator(np.random.Philox(11))
        out[sample.process] = (sample, columns_to_events(gen.generate_columns(sample, 10_000, rng)))
    return out


def test_jets_pt_ordered_and_in_acceptance(samples_in_memory):
    events = samples_in_memory["ttbar"][1]
    pt = events.Jet_pt
    assert ak.all(pt[:, :-1] >= pt[:, 1:])
    assert ak.all(pt > 15) and ak.all(abs(events.Jet_eta) < 4.7)
    assert ak.all(events.Electron_pt[:, :-1] >= events.Electron_pt[:, 1:])


def test_genpart_record(samples_in_memory):
    events = samples_in_memory["ttbar"][1]
    pdg, mother = events.GenPart_pdgId, events.GenPart_genPartIdxMother
    index = ak.local_index(pdg)
    assert ak.all(mother < index)  # mothers come first, -1 for the incoming partons
    tops = abs(pdg) == 6
    assert ak.all(ak.sum(tops, axis=1) == 2)
    w_mothers = pdg[ak.where(mother >= 0, mother, 0)][abs(pdg) == 24]
    assert ak.all(abs(w_mothers) == 6)
    last = (events.GenPart_statusFlags & (1 << 13)) != 0
    assert ak.all(last[tops])


def _efficiency(events):
    obs = regions(events)
    return {k: float(np.mean((v >= 50) & (v < 550))) for k, v in obs.items()}


#: Documented band (docs/samples.md): expected yield xsec·L·efficiency within a factor
#: BAND of the real-data reference of docs/agc-analysis.md §7, for 10k generated events.
BAND = {"ttbar": 1.6, "wjets": 2.5, "single_top_t_chan": 2.5, "single_top_tW": 2.5}


@pytest.mark.parametrize("process", sorted(BAND))
def test_region_yields_near_reference(process, samples_in_memory):
    sample, events = samples_in_memory[process]
    eff = _efficiency(events)
    for i, region in enumerate(("4j1b", "4j2b")):
        expected = sample.xsec_pb * 3378.0 * eff[region]
        ratio = expected / REFERENCE[process][i]
        assert 1 / BAND[process] < ratio < BAND[process], (region, expected, ratio)


def test_ttbar_dominates_signal_region(samples_in_memory):
    ttbar, wjets = (samples_in_memory[p] for p in ("ttbar", "wjets"))
    y_tt = ttbar[0].xsec_pb * _efficiency(ttbar[1])["4j2b"]
    y_w = wjets[0].xsec_pb * _efficiency(wjets[1])["4j2b"]
    assert y_tt > 10 * y_w


def test_mbjj_peaks_at_top_mass(samples_in_memory):
    mbjj = regions(samples_in_memory["ttbar"][1])["4j2b"]
    counts, edges = np.histogram(mbjj[~np.isnan(mbjj)], bins=25, range=(50, 550))
    assert 150 <= edges[np.argmax(counts)] <= 190


def test_truth_matching_works(samples_in_memory):
    events = samples_in_memory["ttbar"][1]
    selected = ~np.isnan(regions(events)["4j2b"])
    assert truth_labels_fraction(events, selected) > 0.4


def test_modelling_variations_shift_yields():
    """ME/PS variations lower the 4j2b ttbar yield by a few per cent (pseudo-data ≈ 0.95)."""
    eff = {}
    for sample in gen.plan_samples(1000, []):
        if sample.process == "ttbar":
            rng = np.random.Generator(np.random.Philox(3))
            events = columns_to_events(gen.generate_columns(sample, 20_000, rng))
            eff[sample.variation] = _efficiency(events)["4j2b"]
    pseudo = (eff["ME_var"] + eff["PS_var"]) / 2 / eff["nominal"]
    assert 0.85 < pseudo < 1.0
    assert eff["scaleup"] > eff["scaledown"]


def test_step_program(tmp_path):
    out = tmp_path / "samples"
    cmd = [
        sys.executable,
        "-m",
        "reanimate.analyses.agc.steps.datasets",
        "--events",
        "300",
        "--seed",
        "3",
        "--compression",
        "zlib",
        "--samples",
        str(out),
        "--signal_masses",
        "none",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    catalogue = load_catalogue(out / "catalogue.json")
    assert len(list(catalogue.samples())) == 9
    bad = subprocess.run(
        cmd[:-6] + ["--compression", "zip", "--samples", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "compression" in bad.stderr


def test_files_read_through_selection_branches(small):
    events = read_events(small / "wjets__nominal__000.root", BRANCHES, 10, 60)
    assert len(events) == 50


def test_reproducible_uproot_for_other_outputs(tmp_path):
    """Other stages can write ROOT histograms byte-for-byte reproducibly the same way."""
    import time

    import hist
    import uproot

    from reanimate.datasets.writing import file_uuid, reproducible_uproot

    h = hist.Hist.new.Reg(25, 50, 550).Weight()
    h.fill(np.arange(100.0))
    digests = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        with reproducible_uproot():
            path = tmp_path / name / "histograms.root"
            with uproot.recreate(path, uuid_function=lambda: file_uuid("h")) as f:
                f["4j1b_ttbar"] = h
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
        time.sleep(1.05)  # ROOT timestamps have a one-second resolution
    assert digests[0] == digests[1]


def test_generate_out_naming_a_file_is_one_clear_error(tmp_path, cli):
    target = tmp_path / "afile"
    target.write_text("keep me\n")
    proc = cli("datasets", "generate", "--out", target, "--events", "100")
    assert proc.returncode == 2
    assert "exists and is not a folder" in proc.stderr and "Traceback" not in proc.stderr
    assert target.read_text() == "keep me\n"
