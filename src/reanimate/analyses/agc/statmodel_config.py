"""The AGC ttbar statistical model (docs/agc-analysis.md section 10) as a HistFactory config.

Names. HS3 readers (pyhs3, ROOT) address parameters by name, and pyhs3 0.4.2 breaks on names
with spaces or hyphens, so every *parameter* of the model is identifier-safe, and the same name
is used in the pyhf workspace and in the HS3 document (no mapping to keep in sync). Channel
and sample names follow the histogram file (`4j1b`, `ttbar`, ...) with a region suffix.
The reference (cabinetry) names are kept as display labels and are the ones on the plots:

| here                    | cabinetry config (AGC reference)  |
|-------------------------|-----------------------------------|
| channel 4j1b_CR / 4j2b_SR | 4j1b CR / 4j2b SR               |
| sample ttbar, wjets, single_top_s_chan, single_top_t_chan, single_top_tW |
|                         | ttbar, W+jets, single top s-channel, single top t-channel, tW |
| ME_variation, PS_variation, ttbar_scale | ME variation, PS variation, ttbar scale variations |
| jet_energy_scale, jet_energy_resolution | Jet energy scale, Jet energy resolution |
| btag_np_1 .. btag_np_4  | b-tag NP 1 .. b-tag NP 4          |
| wjets_scale             | W+jets scale variations           |
| luminosity              | Luminosity                        |
| staterror_4j1b_CR, ...  | staterror_4j1b-CR, ...            |
"""

from __future__ import annotations

import numpy as np

from reanimate.statistics.histfactory import (
    Channel,
    ModelConfig,
    NormFactor,
    Sample,
    SignalConfig,
    Systematic,
)
from reanimate.statistics.treatments import Treatments

#: 11 bins of 40 GeV from 110 to 550 GeV (the 25 x 20 GeV histograms, first 3 bins dropped)
FIT_EDGES = tuple(float(x) for x in np.arange(110.0, 551.0, 40.0))
HIST_EDGES = tuple(float(x) for x in np.linspace(50.0, 550.0, 26))

REGIONS = {  # region -> (channel, observable label, region label)
    "4j1b": ("4j1b_CR", r"$H_T$ [GeV]", "4j1b CR"),
    "4j2b": ("4j2b_SR", r"$m_{bjj}$ [GeV]", "4j2b SR"),
}
PROCESSES = ("ttbar", "wjets", "single_top_s_chan", "single_top_t_chan", "single_top_tW")
DATA = "pseudodata"
POI = "ttbar_norm"
MEASUREMENT = "CMS_ttbar"

# Smoothing: the jet-energy variations migrate the nominal events between bins and are noisy
# where the MC is thin, so they are smoothed. The ME and PS variations are not: the AGC
# pseudo-data is built from those very templates, and smoothed templates cannot describe it
# (benchmarks/stability.py, docs/statistics.md). b-tag and W+jets scale variations reweight
# the nominal events and are as smooth as it. `independent`: separate MC samples.
SYSTEMATICS = (
    Systematic("ME_variation", up="ME_var", samples=("ttbar",), independent=True),
    Systematic("PS_variation", up="PS_var", samples=("ttbar",), independent=True),
    Systematic("ttbar_scale", up="scaleup", down="scaledown", samples=("ttbar",),
               independent=True),
    Systematic("jet_energy_scale", up="pt_scale_up", smooth=True),
    Systematic("jet_energy_resolution", up="pt_res_up", smooth=True),
    *(
        Systematic(f"btag_np_{i + 1}", up=f"btag_var_{i}_up", down=f"btag_var_{i}_down")
        for i in range(4)
    ),
    Systematic("wjets_scale", up="scale_var_up", down="scale_var_down", samples=("wjets",)),
    Systematic("luminosity", hi=1.03, lo=0.97),
)

#: the names the AGC reference (cabinetry) gives to the same things
CABINETRY_NAMES = {
    "4j1b_CR": "4j1b CR",
    "4j2b_SR": "4j2b SR",
    "ttbar": "ttbar",
    "wjets": "W+jets",
    "single_top_s_chan": "single top, s-channel",
    "single_top_t_chan": "single top, t-channel",
    "single_top_tW": "tW",
    "ME_variation": "ME variation",
    "PS_variation": "PS variation",
    "ttbar_scale": "ttbar scale variations",
    "jet_energy_scale": "Jet energy scale",
    "jet_energy_resolution": "Jet energy resolution",
    **{f"btag_np_{i}": f"b-tag NP {i}" for i in range(1, 5)},
    "wjets_scale": "W+jets scale variations",
    "luminosity": "Luminosity",
    "ttbar_norm": "ttbar_norm",
}

#: plot labels: the reference's names (the channels' are REGIONS' labels), with ttbar typeset
LABELS = {
    **CABINETRY_NAMES,
    "ttbar": r"$t\bar{t}$",
    "ttbar_norm": r"$t\bar{t}$ normalisation",
}


#: the template treatments of the AGC model (reanimate.statistics.treatments; the defaults:
#: bins merged to <= 20 % MC uncertainty, pruning below 0.5 %, no significance test,
#: staterror from 5 % relative MC uncertainty, empty variations dropped)
TREATMENTS = Treatments()


#: a signal (e.g. Z'->ttbar) added to the model: the systematics of the simulation that apply
#: to any MC sample (the ME/PS/scale ones are separate ttbar samples, wjets_scale is W+jets')
SIGNAL_SYSTEMATICS = ("jet_energy_scale", "jet_energy_resolution",
                      *(f"btag_np_{i}" for i in range(1, 5)), "luminosity")
SIGNAL_POI = "mu_signal"


def signal(process: str = "signal", sample: str = "signal",
           bounds: tuple[float, float] = (0.0, 10.0)) -> SignalConfig:
    """The AGC model's signal: histograms `{region}_{process}`, sample `sample`, POI mu_signal."""
    return SignalConfig(sample=sample, process=process, poi=SIGNAL_POI, bounds=bounds,
                        systematics=SIGNAL_SYSTEMATICS)


def config(treatments: Treatments = TREATMENTS, signal: SignalConfig | None = None) -> ModelConfig:
    """The AGC model; with `signal`, that signal added (its POI the measurement's, ttbar_norm
    a free normfactor; the background part as without it)."""
    labels = LABELS if signal is None else {**LABELS, signal.sample: signal.sample}
    return ModelConfig(
        measurement=MEASUREMENT,
        poi=POI,
        channels=tuple(Channel(ch, region, FIT_EDGES) for region, (ch, _, _) in REGIONS.items()),
        samples=tuple(Sample(p, p) for p in PROCESSES),
        data_process=DATA,
        normfactors=(NormFactor(POI, ("ttbar",), init=1.0, bounds=(0.0, 10.0)),),
        systematics=SYSTEMATICS,
        treatments=treatments,
        labels=labels,
        signal=signal,
    )


def region_of_channel(channel: str) -> str:
    for region, (ch, _, _) in REGIONS.items():
        if ch == channel:
            return region
    raise KeyError(channel)
