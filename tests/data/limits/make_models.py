"""Writes the small test workspaces of tests/test_limits.py (run once; the JSON is committed).

python tests/data/limits/make_models.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
LUMI = {"name": "lumi", "auxdata": [1.0], "sigmas": [0.02], "bounds": [[0.5, 1.5]], "inits": [1.0]}


def _measurement(poi, parameters=()):
    return [{"name": "meas", "config": {"poi": poi, "parameters": list(parameters)}}]


def counting() -> dict:
    """One bin: signal 5, background 10 +- 2 (shapesys), 12 observed."""
    return {"version": "1.0.0", "measurements": _measurement("mu"),
            "channels": [{"name": "sr", "samples": [
                {"name": "signal", "data": [5.0],
                 "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
                {"name": "background", "data": [10.0],
                 "modifiers": [{"name": "uncorr", "type": "shapesys", "data": [2.0]}]}]}],
            "observations": [{"name": "sr", "data": [12.0]}]}


def multi() -> dict:
    """Two channels with every modifier type (normfactor, normsys, histosys, shapesys,
    staterror, lumi, shapefactor)."""
    sr_sig = [3.0, 6.0, 4.0]
    sr_b1, sr_b2 = [30.0, 22.0, 10.0], [12.0, 9.0, 5.0]
    cr_b1, cr_b2 = [80.0, 60.0], [40.0, 35.0]
    lumi = {"name": "lumi", "type": "lumi", "data": None}
    return {"version": "1.0.0",
            "measurements": _measurement("mu", [LUMI, {"name": "mu_b", "bounds": [[0.0, 5.0]],
                                                       "inits": [1.0]}]),
            "channels": [
                {"name": "sr", "samples": [
                    {"name": "signal", "data": sr_sig, "modifiers": [
                        {"name": "mu", "type": "normfactor", "data": None}, lumi,
                        {"name": "sig_acc", "type": "normsys", "data": {"hi": 1.05, "lo": 0.94}}]},
                    {"name": "bkg1", "data": sr_b1, "modifiers": [
                        {"name": "mu_b", "type": "normfactor", "data": None}, lumi,
                        {"name": "jes", "type": "histosys",
                         "data": {"hi_data": [32.0, 22.5, 9.0], "lo_data": [28.5, 21.0, 11.5]}},
                        {"name": "xsec", "type": "normsys", "data": {"hi": 1.1, "lo": 0.92}},
                        {"name": "staterror_sr", "type": "staterror", "data": [1.5, 1.2, 0.9]}]},
                    {"name": "bkg2", "data": sr_b2, "modifiers": [
                        {"name": "b2_unc", "type": "shapesys", "data": [1.2, 1.5, 1.0]},
                        {"name": "staterror_sr", "type": "staterror", "data": [0.8, 0.7, 0.6]},
                        {"name": "jes", "type": "histosys",
                         "data": {"hi_data": [12.5, 9.4, 5.5], "lo_data": [11.6, 8.8, 4.7]}}]}]},
                {"name": "cr", "samples": [
                    {"name": "bkg1", "data": cr_b1, "modifiers": [
                        {"name": "mu_b", "type": "normfactor", "data": None}, lumi,
                        {"name": "xsec", "type": "normsys", "data": {"hi": 1.1, "lo": 0.92}},
                        {"name": "staterror_cr", "type": "staterror", "data": [2.0, 1.8]}]},
                    {"name": "bkg2", "data": cr_b2, "modifiers": [
                        {"name": "shape_cr", "type": "shapefactor", "data": None}]}]}],
            "observations": [{"name": "sr", "data": [47.0, 36.0, 19.0]},
                             {"name": "cr", "data": [125.0, 93.0]}]}


def agc_like() -> dict:
    """Two channels x 11 bins: a Z'-like signal over ttbar, W+jets and single top, with a
    free ttbar normalisation, luminosity, jet-energy-scale shapes and staterror."""
    rng = np.random.default_rng(7)
    x = np.linspace(0.0, 1.0, 11)
    channels, observations = [], []
    for name, scale, peak in (("4j1b_CR", 1.0, 0.35), ("4j2b_SR", 0.45, 0.55)):
        ttbar = scale * 900.0 * np.exp(-((x - peak) / 0.3) ** 2) + 20.0
        wjets = scale * (300.0 * np.exp(-3.0 * x) + 5.0) * (1.0 if name == "4j1b_CR" else 0.3)
        stop = 0.12 * ttbar
        signal = 40.0 * np.exp(-((x - 0.7) / 0.08) ** 2) * (0.4 if name == "4j1b_CR" else 1.0)
        data = np.round(rng.poisson(ttbar * 1.05 + wjets + stop)).astype(float)
        lumi = {"name": "luminosity", "type": "normsys", "data": {"hi": 1.03, "lo": 0.97}}

        def jes(nominal, tilt):
            return {"name": "jet_energy_scale", "type": "histosys",
                    "data": {"hi_data": list(nominal * (1 + tilt * (x - 0.5))),
                             "lo_data": list(nominal * (1 - tilt * (x - 0.5)))}}

        stat = "staterror_" + name
        channels.append({"name": name, "samples": [
            {"name": "signal", "data": list(signal), "modifiers": [
                {"name": "mu_signal", "type": "normfactor", "data": None}, lumi,
                jes(signal, 0.1), {"name": stat, "type": "staterror",
                                   "data": list(0.1 * signal + 0.05)}]},
            {"name": "ttbar", "data": list(ttbar), "modifiers": [
                {"name": "ttbar_norm", "type": "normfactor", "data": None}, lumi,
                jes(ttbar, 0.08), {"name": stat, "type": "staterror",
                                   "data": list(0.04 * ttbar)}]},
            {"name": "wjets", "data": list(wjets), "modifiers": [
                lumi, {"name": "wjets_xsec", "type": "normsys", "data": {"hi": 1.15, "lo": 0.85}},
                {"name": stat, "type": "staterror", "data": list(0.06 * wjets)}]},
            {"name": "single_top", "data": list(stop), "modifiers": [
                lumi, {"name": "stop_xsec", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}]}]})
        observations.append({"name": name, "data": list(data)})
    return {"version": "1.0.0",
            "measurements": _measurement("mu_signal", [
                {"name": "ttbar_norm", "bounds": [[0.0, 10.0]], "inits": [1.0]}]),
            "channels": channels, "observations": observations}


def stiff() -> dict:
    """A control region fixing a background normalisation (data 1.6x the prediction), a
    signal region, and a shapesys of relative width 1e-6 on the background (the trap)."""
    return {"version": "1.0.0",
            "measurements": _measurement("mu", [{"name": "mu_b", "bounds": [[0.0, 10.0]],
                                                 "inits": [1.0]}]),
            "channels": [
                {"name": "cr", "samples": [{"name": "bkg", "data": [100.0, 80.0], "modifiers": [
                    {"name": "mu_b", "type": "normfactor", "data": None},
                    {"name": "tiny", "type": "shapesys", "data": [1e-4, 8e-5]}]}]},
                {"name": "sr", "samples": [
                    {"name": "signal", "data": [4.0, 6.0], "modifiers": [
                        {"name": "mu", "type": "normfactor", "data": None}]},
                    {"name": "bkg", "data": [10.0, 6.0], "modifiers": [
                        {"name": "mu_b", "type": "normfactor", "data": None},
                        {"name": "bkg_unc", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}]}]}],
            "observations": [{"name": "cr", "data": [160.0, 128.0]},
                             {"name": "sr", "data": [17.0, 11.0]}]}


def patchset(workspace: dict) -> dict:
    """Three signal hypotheses for `workspace` (the counting model): a pyhf PatchSet."""
    import pyhf

    patches = []
    for mass, signal in ((300, 8.0), (400, 5.0), (500, 2.5)):
        patches.append({"metadata": {"name": f"sig_{mass}", "values": [mass]},
                        "patch": [{"op": "replace", "path": "/channels/0/samples/0/data",
                                   "value": [signal]}]})
    return {"version": "1.0.0",
            "metadata": {"description": "three signal points", "digests": {
                "sha256": pyhf.utils.digest(workspace)}, "labels": ["mass"],
                "references": {"hepdata": "ins0000001"}},
            "patches": patches}


def main() -> None:
    models = {"counting": counting(), "multi": multi(), "agc_like": agc_like(), "stiff": stiff()}
    for name, ws in models.items():
        (HERE / f"{name}.json").write_text(json.dumps(ws, indent=1, sort_keys=True) + "\n")
    (HERE / "patchset.json").write_text(json.dumps(patchset(models["counting"]), indent=1,
                                                   sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
