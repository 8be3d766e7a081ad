"""Cross-check of the AGC model with cabinetry, the tool the AGC reference builds it with.

cabinetry (test-only dependency) builds its workspace from the same histograms.root with the
reference configuration (names with spaces, rebinning by hist slicing as in the AGC's
utils/rebinning.py); ours must give the same expected yields per bin and sample, and the same
best-fit POI.
"""

from __future__ import annotations

import numpy as np
import pytest

from reanimate.analyses.agc.statmodel_config import CABINETRY_NAMES
from reanimate.analyses.agc.steps import statmodel
from reanimate.statistics import fitting
from reanimate.statistics.treatments import Treatments

cabinetry = pytest.importorskip("cabinetry")


def _reference_config(histograms, folder) -> dict:
    btag = [
        {"Name": f"b-tag NP {i + 1}", "Up": {"VariationPath": f"_btag_var_{i}_up"},
         "Down": {"VariationPath": f"_btag_var_{i}_down"}, "Type": "NormPlusShape"}
        for i in range(4)
    ]
    return {
        "General": {"Measurement": "CMS_ttbar", "POI": "ttbar_norm",
                    "HistogramFolder": str(folder),
                    "InputPath": f"{histograms}:{{RegionPath}}_{{SamplePath}}{{VariationPath}}",
                    "VariationPath": ""},
        "Regions": [{"Name": "4j1b CR", "RegionPath": "4j1b"},
                    {"Name": "4j2b SR", "RegionPath": "4j2b"}],
        "Samples": [
            {"Name": "Pseudodata", "SamplePath": "pseudodata", "Data": True},
            {"Name": "ttbar", "SamplePath": "ttbar"},
            {"Name": "W+jets", "SamplePath": "wjets"},
            {"Name": "single top, s-channel", "SamplePath": "single_top_s_chan"},
            {"Name": "single top, t-channel", "SamplePath": "single_top_t_chan"},
            {"Name": "tW", "SamplePath": "single_top_tW"},
        ],
        "Systematics": [
            {"Name": "ME variation", "Up": {"VariationPath": "_ME_var"},
             "Down": {"Symmetrize": True}, "Samples": "ttbar", "Type": "NormPlusShape"},
            {"Name": "PS variation", "Up": {"VariationPath": "_PS_var"},
             "Down": {"Symmetrize": True}, "Samples": "ttbar", "Type": "NormPlusShape"},
            {"Name": "ttbar scale variations", "Up": {"VariationPath": "_scaleup"},
             "Down": {"VariationPath": "_scaledown"}, "Samples": "ttbar",
             "Type": "NormPlusShape"},
            {"Name": "Jet energy scale", "Up": {"VariationPath": "_pt_scale_up"},
             "Down": {"Symmetrize": True}, "Type": "NormPlusShape"},
            {"Name": "Jet energy resolution", "Up": {"VariationPath": "_pt_res_up"},
             "Down": {"Symmetrize": True}, "Type": "NormPlusShape"},
            *btag,
            {"Name": "W+jets scale variations", "Up": {"VariationPath": "_scale_var_up"},
             "Down": {"VariationPath": "_scale_var_down"}, "Samples": "W+jets",
             "Type": "NormPlusShape"},
            {"Name": "Luminosity", "Up": {"Normalization": 0.03},
             "Down": {"Normalization": -0.03}, "Type": "Normalization"},
        ],
        "NormFactors": [{"Name": "ttbar_norm", "Samples": "ttbar", "Nominal": 1.0,
                         "Bounds": [0, 10]}],
    }


def _rebinning_router(config):
    """The AGC reference's router: read with uproot, rebin with hist slicing."""
    import hist
    import uproot
    from cabinetry.templates.collector import _histo_path

    router = cabinetry.route.Router()
    general = config["General"]["InputPath"]
    variation = config["General"].get("VariationPath", None)

    @router.register_template_builder()
    def build(region, sample, systematic, template):
        path = _histo_path(general, variation, region, sample, systematic, template)
        return uproot.open(path).to_hist()[110j :: hist.rebin(2)]

    return router


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    from stat_helpers import write_agc_histograms

    tmp = tmp_path_factory.mktemp("cabinetry")
    histograms = write_agc_histograms(tmp / "histograms.root")
    config = _reference_config(histograms, tmp / "templates")
    cabinetry.templates.build(config, router=_rebinning_router(config))
    cabinetry.templates.postprocess(config)
    reference = cabinetry.workspace.build(config)
    ours = statmodel.build(str(histograms), Treatments.none())[0]
    return ours, reference


def _yields(workspace: dict, pars_by_name: dict[str, float] | None = None):
    model, _ = fitting.load_model(workspace)
    pars = np.array(model.config.suggested_init(), dtype=float)
    for name, value in (pars_by_name or {}).items():
        pars[model.config.par_slice(name)] = value
    by_sample = model.main_model.expected_data(pars, return_by_sample=True)
    return {
        (ch, s): by_sample[i, model.config.channel_slices[ch]]
        for i, s in enumerate(model.config.samples) for ch in model.config.channels
    }


@pytest.mark.parametrize("point", [
    {},
    {"ttbar_norm": 1.2, "ME_variation": 0.7, "jet_energy_scale": -1.3, "btag_np_2": 0.4,
     "wjets_scale": 1.5, "luminosity": -0.5, "ttbar_scale": -0.8},
])
def test_same_expected_yields_per_bin_and_sample(both, point):
    ours, reference = both
    mine = _yields(ours, point)
    theirs = _yields(reference, {CABINETRY_NAMES[k]: v for k, v in point.items()})
    assert len(mine) == len(theirs) == 10
    for (ch, s), values in mine.items():
        other = theirs[(CABINETRY_NAMES[ch], CABINETRY_NAMES[s])]
        np.testing.assert_allclose(values, other, rtol=1e-9, atol=0)


def test_same_best_fit_poi(both):
    ours, reference = both
    mine = fitting.fit_workspace(ours, tolerance=1e-7)
    model, data = cabinetry.model_utils.model_and_data(reference)
    theirs = cabinetry.fit.fit(model, data, tolerance=1e-7)
    poi = list(theirs.labels).index("ttbar_norm")
    assert abs(mine["poi"]["value"] - theirs.bestfit[poi]) < 1e-6
    assert mine["poi"]["error"] == pytest.approx(theirs.uncertainty[poi], rel=1e-3)
    assert mine["nll"] == pytest.approx(theirs.best_twice_nll / 2, rel=1e-10)
