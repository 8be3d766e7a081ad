"""Pre- and post-fit stacked plots of a patched model, the signal on top (any pyhf workspace).

One PNG per stage, one panel per channel: the expected yields per sample
(`reanimate.statistics.yields`), the uncertainty band, the observed data. Pre-fit at the
parameters' initial values (the signal at its POI's init), post-fit at the maximum-likelihood
fit (`reanimate.statistics.fitting.fit_workspace`).
"""

from __future__ import annotations

from pathlib import Path

SIGNAL_COLOUR = "#e10fd6"
COLOURS = ("#3f90da", "#ffa90e", "#bd1f01", "#94a4a2", "#832db6", "#a96b59", "#e76300",
           "#b9ac70", "#717581", "#92dadd")


def model_plots(workspace: dict, outdir: Path, *, signal: str, axes: dict | None = None,
                title: str = "") -> dict[str, str]:
    """Write OUTDIR/prefit.png and postfit.png; {stage: path}."""
    import matplotlib

    matplotlib.use("Agg")
    from reanimate.statistics import fitting, yields

    model, data = fitting.load_model(workspace)
    fit = fitting.fit_workspace(workspace)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = {}
    for stage, per_channel in (("prefit", yields.prefit(model, data)),
                               ("postfit", yields.postfit(model, data, fit))):
        path = outdir / f"{stage}.png"
        _figure(per_channel, axes or {}, signal, f"{title} {stage[:-3]}-fit".strip(), path,
                poi=fit["poi"] if stage == "postfit" else None)
        written[stage] = str(path)
    return written


def _figure(per_channel, axes: dict, signal: str, title: str, path: Path, poi=None) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    from reanimate.atomic import atomic_path

    fig, panels = plt.subplots(1, len(per_channel), figsize=(6 * len(per_channel), 5),
                               squeeze=False)
    for ax, ch in zip(panels[0], per_channel, strict=True):
        n = len(ch.total)
        edges = np.asarray(axes.get(ch.channel) or np.arange(n + 1.0), dtype=float)
        if len(edges) != n + 1:
            edges = np.arange(n + 1.0)
        order = [s for s in ch.samples if s != signal] + [s for s in ch.samples if s == signal]
        bottom = np.zeros(n)
        for i, sample in enumerate(order):
            values = ch.by_sample[ch.samples.index(sample)]
            colour = SIGNAL_COLOUR if sample == signal else COLOURS[i % len(COLOURS)]
            ax.bar(edges[:-1], values, width=np.diff(edges), bottom=bottom, align="edge",
                   color=colour, label=sample, edgecolor="none",
                   alpha=0.9 if sample == signal else 0.75)
            bottom = bottom + values
        lo, hi = ch.total - ch.uncertainty, ch.total + ch.uncertainty
        ax.fill_between(edges, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post",
                        facecolor="none", edgecolor="#444444", hatch="////", linewidth=0,
                        label="Uncertainty")
        centres = (edges[:-1] + edges[1:]) / 2
        ax.errorbar(centres, ch.data, yerr=np.sqrt(np.clip(ch.data, 0, None)), fmt="o",
                    color="black", markersize=3, label="Data")
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(bottom=0)
        ax.set_title(ch.channel, loc="left", fontsize=10)
        ax.set_ylabel("Events / bin")
        ax.legend(fontsize=7)
    head = title
    if poi is not None:
        head += f"  ({poi['name']} = {poi['value']:.3g} ± {poi['error']:.2g})"
    fig.suptitle(head, fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
