"""The AGC figures (docs/agc-analysis.md section 11), CMS style with mplhep, PNG and PDF.

Every figure is saved reproducibly: no creation date in the PDF, no software tag in the PNG,
fixed hash salt, so the same inputs give the same bytes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from reanimate.analyses.agc.statmodel_config import LABELS, PROCESSES, REGIONS
from reanimate.atomic import atomic_path

LUMI = 3.378  # fb^-1
STACK_ORDER = ("single_top_s_chan", "single_top_t_chan", "single_top_tW", "wjets", "ttbar")
COLORS = {"ttbar": "#e42536", "wjets": "#5790fc", "single_top_tW": "#f89c20",
          "single_top_t_chan": "#964a8b", "single_top_s_chan": "#9c9ca1"}
FEATURE_LABELS = {
    "deltar_leptonbtoplep": r"$\Delta R(\ell, b_{lep})$",
    "deltar_w1w2": r"$\Delta R(W_1, W_2)$",
    "deltar_w1btophad": r"$\Delta R(W_1, b_{had})$",
    "deltar_w2btophad": r"$\Delta R(W_2, b_{had})$",
    "mass_leptonbtoplep": r"$m(\ell b_{lep})$ [GeV]",
    "mass_w1w2": r"$m(W_1 W_2)$ [GeV]",
    "mass_w1w2btophad": r"$m(W_1 W_2 b_{had})$ [GeV]",
    "pt_w1w2btophad": r"$p_T(W_1 W_2 b_{had})$ [GeV]",
    "pt_w1": r"$p_T(W_1)$ [GeV]", "pt_w2": r"$p_T(W_2)$ [GeV]",
    "pt_btophad": r"$p_T(b_{had})$ [GeV]", "pt_btoplep": r"$p_T(b_{lep})$ [GeV]",
    "btag_w1": "b-tag($W_1$)", "btag_w2": "b-tag($W_2$)",
    "btag_btophad": r"b-tag($b_{had}$)", "btag_btoplep": r"b-tag($b_{lep}$)",
    "qgl_w1": "QGL($W_1$)", "qgl_w2": "QGL($W_2$)",
    "qgl_btophad": r"QGL($b_{had}$)", "qgl_btoplep": r"QGL($b_{lep}$)",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep

    plt.style.use(hep.style.CMS)
    plt.rcParams["svg.hashsalt"] = "reanimate"
    plt.rcParams["pdf.compression"] = 6
    return plt, hep


def save(fig, outdir: Path, name: str) -> list[str]:
    """Write NAME.png and NAME.pdf reproducibly and atomically; return the file names."""
    import matplotlib.pyplot as plt

    with atomic_path(outdir / f"{name}.png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    with atomic_path(outdir / f"{name}.pdf") as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight",
                    metadata={"CreationDate": None, "ModDate": None, "Producer": None,
                              "Creator": None})
    plt.close(fig)
    return [f"{name}.png", f"{name}.pdf"]


#: What the figures say the inputs are (the plots step's --origin).
ORIGINS = ("generated", "cms-open-data")


def _label(hep, ax, origin: str) -> None:
    """The experiment label: CMS Open Data only for the real files, never for generated ones."""
    if origin == "cms-open-data":
        hep.cms.label("Open Data", data=True, lumi=LUMI, com=13, ax=ax, fontsize=18)
        return
    if origin != "generated":
        raise ValueError(f"origin {origin!r} is not one of {ORIGINS}")
    ax.text(0.0, 1.01, "AGC-like generated samples", transform=ax.transAxes, ha="left",
            va="bottom", fontsize=16, fontweight="bold")
    ax.text(1.0, 1.01, f"pseudo-data, {LUMI} fb$^{{-1}}$ equivalent (13 TeV)",
            transform=ax.transAxes, ha="right", va="bottom", fontsize=13)


def _stack(hep, ax, edges, contents: dict[str, np.ndarray]) -> None:
    names = [p for p in STACK_ORDER if p in contents]
    hep.histplot([contents[p] for p in names], edges, stack=True, histtype="fill", ax=ax,
                 label=[LABELS.get(p, p) for p in names],
                 color=[COLORS.get(p, "grey") for p in names], edgecolor="black",
                 linewidth=0.5, flow="none")


def _data(ax, edges, values: np.ndarray, label: str = "Pseudo-data") -> None:
    centers = (edges[:-1] + edges[1:]) / 2
    ax.errorbar(centers, values, yerr=np.sqrt(np.clip(values, 0, None)), fmt="o", color="black",
                markersize=4, label=label)


def stacked(hists: dict, region: str, outdir: Path, origin: str = "generated") -> list[str]:
    """Nominal processes stacked with the pseudo-data, full 25-bin range."""
    plt, hep = _plt()
    fig, ax = plt.subplots(figsize=(10, 8))
    contents = {p: hists[f"{region}_{p}"][0] for p in PROCESSES if f"{region}_{p}" in hists}
    edges = next(iter(hists.values()))[2]
    _stack(hep, ax, edges, contents)
    if f"{region}_pseudodata" in hists:
        _data(ax, edges, hists[f"{region}_pseudodata"][0])
    ax.set_xlabel(REGIONS[region][1])
    ax.set_ylabel("Events / 20 GeV")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, None)
    ax.legend(title=REGIONS[region][2], fontsize=14, title_fontsize=14)
    _label(hep, ax, origin)
    return save(fig, outdir, f"stacked_{region}")


def variations(hists: dict, region: str, names: list[tuple[str, str]], stem: str,
               outdir: Path, origin: str = "generated") -> list[str]:
    """ttbar nominal and some of its variations as lines, with a ratio-to-nominal panel."""
    plt, hep = _plt()
    fig, (ax, rax) = plt.subplots(2, 1, figsize=(10, 10), sharex=True,
                                  gridspec_kw={"height_ratios": (3, 1), "hspace": 0.05})
    nominal = hists[f"{region}_ttbar"][0]
    edges = hists[f"{region}_ttbar"][2]
    hep.histplot(nominal, edges, ax=ax, color="black", label="nominal", flow="none")
    cmap = plt.get_cmap("tab10")
    ratios = []
    for k, (variation, label) in enumerate(names):
        key = f"{region}_ttbar_{variation}"
        if key not in hists:
            continue
        values = hists[key][0]
        style = "--" if variation.endswith("down") else "-"
        hep.histplot(values, edges, ax=ax, color=cmap(k // 2 if "btag" in variation else k),
                     linestyle=style, label=label, flow="none")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(nominal > 0, values / nominal, np.nan)
        ratios.append(ratio)
        hep.histplot(ratio, edges, ax=rax, color=cmap(k // 2 if "btag" in variation else k),
                     linestyle=style, flow="none")
    rax.axhline(1.0, color="black", linewidth=0.8)
    finite = np.concatenate([r[np.isfinite(r)] for r in ratios] + [np.ones(1)])
    spread = max(0.05, 1.2 * float(np.max(np.abs(finite - 1.0))))
    rax.set_ylim(1 - spread, 1 + spread)
    rax.set_ylabel("var. / nom.")
    rax.set_xlabel(REGIONS[region][1])
    ax.set_ylabel("Events / 20 GeV")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, None)
    ax.legend(title=f"{LABELS['ttbar']}, {REGIONS[region][2]}", fontsize=13, ncol=2,
              title_fontsize=14)
    _label(hep, ax, origin)
    return save(fig, outdir, stem)


def btag_variations(hists: dict, outdir: Path, origin: str = "generated") -> list[str]:
    names = [(f"btag_var_{i}_{d}", f"b-tag NP {i + 1} {d}") for i in range(4)
             for d in ("up", "down")]
    return variations(hists, "4j1b", names, "ttbar_btag_variations_4j1b", outdir, origin)


def jet_energy_variations(hists: dict, outdir: Path, origin: str = "generated") -> list[str]:
    names = [("pt_scale_up", "jet energy scale up"), ("pt_res_up", "jet energy resolution up")]
    return variations(hists, "4j2b", names, "ttbar_jet_energy_variations_4j2b", outdir,
                      origin)


_ML_NAME = re.compile(
    r"^(?P<feature>.+?)_(?P<process>" + "|".join(map(re.escape, (*PROCESSES, "pseudodata")))
    + r")(?:_(?P<variation>.+))?$"
)


def ml_features(hists: dict, outdir: Path) -> list[str]:
    """One panel per ML feature (nominal processes stacked), 5 x 4 grid."""
    plt, hep = _plt()
    nominal: dict[str, dict[str, tuple]] = {}
    for name, h in hists.items():
        m = _ML_NAME.match(name)
        if m and m["variation"] is None:
            nominal.setdefault(m["feature"], {})[m["process"]] = h
    known = [f for f in FEATURE_LABELS if f in nominal]
    features = known + sorted(f for f in nominal if f not in FEATURE_LABELS)
    if not features:
        return []
    ncols = 4
    nrows = -(-len(features) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 4 * nrows), squeeze=False)
    for ax, feature in zip(axes.flat, features, strict=False):
        procs = nominal[feature]
        edges = next(iter(procs.values()))[2]
        _stack(hep, ax, edges, {p: h[0] for p, h in procs.items() if p != "pseudodata"})
        if "pseudodata" in procs:
            _data(ax, edges, procs["pseudodata"][0])
        ax.set_xlabel(FEATURE_LABELS.get(feature, feature), fontsize=14)
        ax.set_xlim(edges[0], edges[-1])
        ax.tick_params(labelsize=11)
        ax.yaxis.get_offset_text().set_fontsize(10)
    for ax in list(axes.flat)[len(features):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.tight_layout()
    fig.legend(handles[::-1], labels[::-1], loc="lower center", bbox_to_anchor=(0.5, 1.0),
               ncol=len(labels), fontsize=16, frameon=False,
               title="4j2b, features of the BDT-chosen jet assignment", title_fontsize=16)
    return save(fig, outdir, "ml_features")


def pulls(fit: dict, outdir: Path) -> list[str]:
    """Pulls of the Gaussian-constrained nuisance parameters (staterror gammas left out)."""
    plt, hep = _plt()
    pars = [p for p in fit["parameters"] if p["pull"] is not None and "[" not in p["name"]]
    pars.sort(key=lambda p: p["name"])
    n = len(pars)
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.45 * max(n, 1)))
    y = np.arange(n)[::-1]
    ax.fill_betweenx([-0.5, n - 0.5], -2, 2, color="#ffdf00", linewidth=0)
    ax.fill_betweenx([-0.5, n - 0.5], -1, 1, color="#00c800", linewidth=0)
    ax.axvline(0, color="black", linestyle="--", linewidth=1)
    ax.errorbar([p["pull"] for p in pars], y, xerr=[p["pull_error"] for p in pars], fmt="o",
                color="black", markersize=5)
    ax.set_yticks(y, [LABELS.get(p["name"], p["name"]) for p in pars], fontsize=14)
    ax.set_xlim(-3, 3)
    ax.set_ylim(-0.5, n - 0.5)
    ax.set_xlabel(r"$(\hat{\theta} - \theta_0) / \Delta\theta$")
    ax.minorticks_off()
    poi = fit["poi"]
    ax.set_title(f"{poi['name']} = {poi['value']:.3f} $\\pm$ {poi['error']:.3f}",
                 fontsize=14, loc="right")
    fig.tight_layout()
    return save(fig, outdir, "pulls")


def _steps(values: np.ndarray) -> np.ndarray:
    """Per-bin values as fill_between(step="post") wants them: one more, repeating the last."""
    return np.append(values, values[-1])


def data_model(channel_yields, edges: np.ndarray, stage: str, outdir: Path,
               origin: str = "generated") -> list[str]:
    """Stacked model (pre- or post-fit) with data, uncertainty band and a data/model panel."""
    from reanimate.analyses.agc.statmodel_config import region_of_channel

    plt, hep = _plt()
    region = region_of_channel(channel_yields.channel)
    fig, (ax, rax) = plt.subplots(2, 1, figsize=(10, 10), sharex=True,
                                  gridspec_kw={"height_ratios": (3, 1), "hspace": 0.05})
    contents = dict(zip(channel_yields.samples, channel_yields.by_sample, strict=True))
    _stack(hep, ax, edges, contents)
    total, unc, data = channel_yields.total, channel_yields.uncertainty, channel_yields.data
    band = dict(step="post", facecolor="none", edgecolor="#444444", hatch="////", linewidth=0)
    ax.fill_between(edges, _steps(total - unc), _steps(total + unc), label="Uncertainty", **band)
    _data(ax, edges, data)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(total > 0, unc / total, 0.0)
        ratio = np.where(total > 0, data / total, np.nan)
        ratio_err = np.where(total > 0, np.sqrt(np.clip(data, 0, None)) / total, np.nan)
    rax.fill_between(edges, _steps(1 - rel), _steps(1 + rel), **band)
    centers = (edges[:-1] + edges[1:]) / 2
    rax.errorbar(centers, ratio, yerr=ratio_err, fmt="o", color="black", markersize=4)
    rax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    rax.set_ylim(0.5, 1.5)
    rax.set_ylabel("Data / Model")
    rax.set_xlabel(REGIONS[region][1])
    widths = np.diff(edges)
    uniform = np.allclose(widths, widths[0])  # bins merged for MC statistics are not
    ax.set_ylabel(f"Events / {widths[0]:g} GeV" if uniform else "Events / bin")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, 1.3 * float(max(np.max(total + unc), np.max(data))))
    ax.legend(title=f"{REGIONS[region][2]}, {stage}-fit", fontsize=14, title_fontsize=14)
    _label(hep, ax, origin)
    return save(fig, outdir, f"{stage}fit_{region}")
