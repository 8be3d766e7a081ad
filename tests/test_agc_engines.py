"""One spec, every engine: the AGC chain on a small generated dataset gives the same bytes
through the local engine and through cwltool (histograms, pyhf and HS3 models, fit results)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import uproot
import yaml
from engine_specs import small_flagship

from reanimate.engines.cwl import run_cwl
from reanimate.engines.local import run_spec
from reanimate.spec import load_spec

FLAGSHIP = Path(__file__).resolve().parents[1] / "specs" / "agc-ttbar.yaml"


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory):
    """The flagship without training and plots, on 10,000 ttbar events, run by both engines."""
    root = tmp_path_factory.mktemp("agc-engines")
    doc = small_flagship()
    spec = root / "agc-small.yaml"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    loaded = load_spec(spec)
    local = run_spec(loaded, root / "local")
    assert not local.failed, local.records
    cwl = run_cwl(loaded, root / "cwl", container=False)
    return root / "local" / "results", {k: Path(v["path"]) for k, v in cwl.items()}


def test_histograms_identical_bin_by_bin_and_bitwise(both_engines):
    local, cwl = both_engines
    a, b = local / "histograms" / "histograms.root", cwl["histograms__histograms"]
    with uproot.open(a) as fa, uproot.open(b) as fb:
        names = sorted(k.split(";")[0] for k in fa.keys())
        assert names == sorted(k.split(";")[0] for k in fb.keys())
        assert len(names) >= 100
        for name in names:
            ha, hb = fa[name], fb[name]
            assert ha.values(flow=True).tobytes() == hb.values(flow=True).tobytes(), name
            assert ha.variances(flow=True).tobytes() == hb.variances(flow=True).tobytes(), name
            assert np.array_equal(ha.axis().edges(), hb.axis().edges())
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("step,output,cwl_key", [
    ("statmodel", "statmodel/workspace.json", "statmodel__workspace"),
    ("statmodel", "statmodel/agc-ttbar.hs3.json", "statmodel__hs3"),
    ("fit", "fit/fit_results.json", "fit__results"),
])
def test_models_and_fit_identical(both_engines, step, output, cwl_key):
    local, cwl = both_engines
    mine, theirs = (local / step / output).read_bytes(), cwl[cwl_key].read_bytes()
    assert mine == theirs
    if step == "fit":
        result = json.loads(mine)
        assert result["converged"] and result["poi"]["name"] == "ttbar_norm"
