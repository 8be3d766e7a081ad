"""The plots step: every expected figure, PNG and PDF, reproducible bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from stat_helpers import ml_histograms, write_agc_histograms, write_histograms

from reanimate.analyses.agc.steps import statmodel
from reanimate.statistics import fitting

EXPECTED = ["stacked_4j1b", "stacked_4j2b", "ttbar_btag_variations_4j1b",
            "ttbar_jet_energy_variations_4j2b", "ml_features", "pulls", "prefit_4j1b",
            "prefit_4j2b", "postfit_4j1b", "postfit_4j2b"]


def step(*args: str, cpus: int | None = None):
    """The step program as a process (on its first `cpus` CPUs only, with `cpus`)."""
    argv = [sys.executable, "-m", "reanimate.analyses.agc.steps.plots", *map(str, args)]
    pin = None
    if cpus is not None:
        first = sorted(os.sched_getaffinity(0))[:cpus]
        pin = lambda: os.sched_setaffinity(0, first)  # noqa: E731
    return subprocess.run(argv, capture_output=True, text=True, check=False, preexec_fn=pin)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plots")
    hists = write_agc_histograms(tmp / "histograms.root")
    write_histograms(tmp / "histograms_ml.root", ml_histograms())
    ws = statmodel.build(str(hists))[0]
    (tmp / "workspace.json").write_text(json.dumps(ws))
    (tmp / "fit.json").write_text(json.dumps(fitting.fit_workspace(ws)))
    return tmp


def test_every_figure_png_and_pdf_reproducibly(inputs, tmp_path):
    args = ["--histograms", inputs / "histograms.root", "--workspace",
            inputs / "workspace.json", "--fit", inputs / "fit.json",
            "--histograms_ml", inputs / "histograms_ml.root"]
    proc = step(*args, "--plots", tmp_path / "plots")
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert files == sorted(f"{n}.{ext}" for n in EXPECTED for ext in ("png", "pdf"))
    for name in files:
        data = (tmp_path / "plots" / name).read_bytes()
        assert data.startswith(b"\x89PNG" if name.endswith(".png") else b"%PDF")
        assert b"CreationDate" not in data
    # same inputs, same bytes (two figures redrawn in-process, which is the same code)
    from reanimate.analyses.agc import histfile, plotting

    again = tmp_path / "again"
    again.mkdir()
    plotting.stacked(histfile.read_histograms(inputs / "histograms.root"), "4j2b", again)
    plotting.pulls(json.loads((inputs / "fit.json").read_text()), again)
    for name in ("stacked_4j2b.png", "stacked_4j2b.pdf", "pulls.png", "pulls.pdf"):
        assert (again / name).read_bytes() == (tmp_path / "plots" / name).read_bytes(), name


def test_without_ml_and_with_bad_fit_file(inputs, tmp_path):
    (tmp_path / "fit.json").write_text('{"poi": 1}')
    proc = step("--histograms", inputs / "histograms.root", "--workspace",
                inputs / "workspace.json", "--fit", tmp_path / "fit.json",
                "--plots", tmp_path / "p")
    assert proc.returncode == 2 and "not fit results" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("origin,says_cms", [("generated", False), ("cms-open-data", True)])
def test_figures_say_cms_open_data_only_for_the_real_files(origin, says_cms):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep
    from matplotlib.text import Text

    from reanimate.analyses.agc import plotting

    fig, ax = plt.subplots()
    plotting._label(hep, ax, origin)
    texts = " | ".join(t.get_text() for t in fig.findobj(Text))
    plt.close(fig)
    assert ("CMS" in texts and "Open Data" in texts) == says_cms, texts
    if not says_cms:
        assert "generated" in texts and "pseudo-data" in texts


def test_an_unknown_origin_is_refused(inputs, tmp_path):
    proc = step("--histograms", inputs / "histograms.root", "--workspace",
                inputs / "workspace.json", "--fit", inputs / "fit.json", "--origin", "lhc",
                "--plots", tmp_path / "plots")
    assert proc.returncode == 2 and "--origin" in proc.stderr
    assert proc.stderr.count("\n") <= 2


def test_figures_drawn_in_parallel_are_the_bytes_drawn_in_sequence(inputs, tmp_path):
    """More than one CPU: the figures are drawn in forked processes; one: in sequence."""
    args = ["--histograms", inputs / "histograms.root", "--workspace",
            inputs / "workspace.json", "--fit", inputs / "fit.json",
            "--histograms_ml", inputs / "histograms_ml.root"]
    for cpus, name in ((1, "sequence"), (None, "parallel")):
        proc = step(*args, "--plots", tmp_path / name, cpus=cpus)
        assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in (tmp_path / "sequence").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "parallel").iterdir()) and len(files) == 20
    for name in files:
        assert (tmp_path / "sequence" / name).read_bytes() == \
            (tmp_path / "parallel" / name).read_bytes(), name


@pytest.mark.parametrize("bad", ["histograms", "histograms_ml"])
def test_an_unreadable_input_is_one_line_whichever_process_reads_it(inputs, tmp_path, bad):
    (tmp_path / "bad.root").write_text("not ROOT")
    files = {"histograms": inputs / "histograms.root",
             "histograms_ml": inputs / "histograms_ml.root", bad: tmp_path / "bad.root"}
    proc = step("--histograms", files["histograms"], "--histograms_ml", files["histograms_ml"],
                "--workspace", inputs / "workspace.json", "--fit", inputs / "fit.json",
                "--plots", tmp_path / "plots")
    assert proc.returncode == 2 and "bad.root: not a readable ROOT file" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
