"""A campaign's results from its store: the table (CSV/JSON), the Brazil band, the contour.

The table has one row per point, in the campaign's order, with no timing column, so the table
of a resumed campaign equals that of an uninterrupted one byte for byte. The Brazil band draws
the observed and expected upper limits with their ±1σ/±2σ bands against the one plotted label
(as cross sections when the campaign gives the theory cross section, else as signal strengths
with μ = 1 marked); two labels give the expected (±1σ) and observed exclusion contours, where
CLs at the campaign's μ equals 1 − CL.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from reanimate.errors import ReanimateError
from reanimate.reinterpret.store import open_store

SIGMAS = ("m2", "m1", "median", "p1", "p2")


def _rows(folder: Path) -> tuple[dict, list[dict]]:
    with open_store(folder) as store:
        return store.meta(), store.current()


def _expected(value, index: int):
    return value[index] if isinstance(value, list) and len(value) == 5 else None


# -- on (campaign, points): the store's rows, or a registry's rows of the same shape ------------


def table_rows(campaign: dict, points: list[dict]) -> tuple[list[str], list[list]]:
    """Header and rows of the results table of `points` (rows shaped like Store.current());
    points not done have empty limit cells. `campaign` (the validated file) is not needed yet."""
    labels = list(dict.fromkeys(k for p in points for k in p["labels"]))
    header = ["name", *labels, "status", "limit_observed",
              *(f"limit_expected_{s}" for s in SIGMAS), "cls_observed",
              *(f"cls_expected_{s}" for s in SIGMAS), "reason", "analysis", "signal", "digest"]
    rows = []
    for point in points:
        record = point["record"] or {}
        provenance = record.get("point", {})
        analysis = provenance.get("analysis", record.get("analysis", {}))
        status = record.get("status", point["status"]) if point["status"] == "done" \
            else point["status"]
        rows.append([
            point["name"], *(point["labels"].get(k, "") for k in labels), status,
            record.get("limit_observed"),
            *(_expected(record.get("limit_expected"), i) for i in range(5)),
            record.get("cls_observed"),
            *(_expected(record.get("cls_expected"), i) for i in range(5)),
            record.get("reason") or point["error"] or "",
            analysis.get("digest") or analysis.get("sha256") or "",
            provenance.get("signal", {}).get("sha256", ""), point["digest"] or "",
        ])
    return header, rows


def csv_text(campaign: dict, points: list[dict]) -> str:
    header, rows = table_rows(campaign, points)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else (repr(v) if isinstance(v, float) else v)
                         for v in row])
    return out.getvalue()


def json_text(points: list[dict]) -> str:
    out = [{"digest": p["digest"], "name": p["name"], "labels": p["labels"],
            "status": p["status"], "attempts": p["attempts"], "error": p["error"],
            "record": p["record"]} for p in points]
    return json.dumps(out, indent=2, sort_keys=True) + "\n"


def plot_axes(campaign: dict, points: list[dict]) -> tuple[str, str | None]:
    """The plotted labels (x, y or None) of the points done; ReanimateError if none is done."""
    done = [p for p in points if p["status"] == "done" and p["record"]]
    if not done:
        raise ReanimateError("no point is done yet, nothing to plot")
    labels = list(done[0]["labels"])
    plot = campaign.get("plot") or {"x": labels[0], "y": labels[1] if len(labels) == 2 else None}
    for axis in (plot["x"], plot.get("y")):
        if axis is not None and axis not in labels:
            raise ReanimateError(f"plot axis {axis!r} is not a point label "
                                 f"({', '.join(labels)})")
    return plot["x"], plot.get("y")


def draw(campaign: dict, points: list[dict], output: Path | None = None,
         folder: Path | None = None) -> Path:
    """Draw the plot of `points` (Brazil band for one label, contour for two) into `output`,
    else FOLDER/brazil.png or FOLDER/contour.png; its path."""
    x, y = plot_axes(campaign, points)
    done = [p for p in points if p["status"] == "done" and p["record"]]
    import matplotlib

    matplotlib.use("Agg")
    from reanimate.atomic import atomic_path

    if y:
        target = Path(output or Path(folder) / "contour.png")
        figure = _contour(done, x, y, campaign)
    else:
        target = Path(output or Path(folder) / "brazil.png")
        figure = _brazil(done, x, campaign)
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format=target.suffix.lstrip(".") or "png", dpi=120,
                       metadata={"Software": None} if target.suffix == ".png" else None)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return target


# -- on a campaign's folder ----------------------------------------------------------------------


def table(folder: Path) -> tuple[list[str], list[list]]:
    """Header and rows of the results table (points not done have empty limit cells)."""
    meta, points = _rows(folder)
    return table_rows(meta.get("campaign", {}), points)


def results_csv(folder: Path) -> str:
    meta, points = _rows(Path(folder))
    return csv_text(meta.get("campaign", {}), points)


def results_json(folder: Path) -> str:
    return json_text(_rows(Path(folder))[1])


def _key(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def plot_campaign(folder: Path, output: Path | None = None) -> Path:
    """Draw the campaign's plot (Brazil band for one label, contour for two); its path."""
    folder = Path(folder)
    meta, points = _rows(folder)
    if not any(p["status"] == "done" and p["record"] for p in points):
        raise ReanimateError(f"{folder}: no point is done yet, nothing to plot")
    return draw(meta.get("campaign", {}), points, output, folder)


def _brazil(points: list[dict], x: str, campaign: dict):
    import matplotlib.pyplot as plt
    import numpy as np

    theory = (campaign.get("theory") or {}).get("cross_section_pb") or {}
    usable = [p for p in points if p["record"].get("limit_observed") is not None
              and _expected(p["record"].get("limit_expected"), 2) is not None]
    if not usable:
        raise ReanimateError("no point has a limit to draw")
    usable.sort(key=lambda p: float(p["labels"][x]))
    xs = np.array([float(p["labels"][x]) for p in usable])
    scale = np.ones_like(xs)
    as_xsec = bool(theory) and all(_key(p["labels"][x]) in theory for p in usable)
    if as_xsec:
        scale = np.array([theory[_key(p["labels"][x])] for p in usable])
    observed = np.array([p["record"]["limit_observed"] for p in usable]) * scale
    expected = np.array([p["record"]["limit_expected"] for p in usable]) * scale[:, None]
    figure, axes = plt.subplots(figsize=(7, 5))
    axes.fill_between(xs, expected[:, 0], expected[:, 4], color="#ffdf00", label=r"expected ±2σ")
    axes.fill_between(xs, expected[:, 1], expected[:, 3], color="#00c000", label=r"expected ±1σ")
    axes.plot(xs, expected[:, 2], "k--", label="expected")
    axes.plot(xs, observed, "k-o", markersize=3, label="observed")
    cl = (campaign.get("limits") or {}).get("cl", 0.95)
    if as_xsec:
        axes.plot(xs, scale, "r-", label="theory")
        axes.set_ylabel(f"{cl:.0%} CL upper limit on σ [pb]")
        axes.set_yscale("log")
    else:
        axes.axhline(1.0, color="r", label="μ = 1")
        axes.set_ylabel(f"{cl:.0%} CL upper limit on μ")
    axes.set_xlabel(x)
    axes.set_title(campaign.get("name", ""))
    axes.legend()
    figure.tight_layout()
    return figure


def _contour(points: list[dict], x: str, y: str, campaign: dict):
    import matplotlib.pyplot as plt
    import numpy as np

    cl = (campaign.get("limits") or {}).get("cl", 0.95)
    usable = [p for p in points if p["record"].get("cls_observed") is not None
              and _expected(p["record"].get("cls_expected"), 2) is not None]
    if len(usable) < 3:
        raise ReanimateError("an exclusion contour needs at least three points with CLs values")
    xs = np.array([float(p["labels"][x]) for p in usable])
    ys = np.array([float(p["labels"][y]) for p in usable])
    observed = np.array([p["record"]["cls_observed"] for p in usable])
    expected = np.array([p["record"]["cls_expected"] for p in usable])
    level = [1.0 - cl]
    figure, axes = plt.subplots(figsize=(7, 5))
    axes.scatter(xs, ys, s=6, c="grey", label="points")
    for column, style, colour in ((1, "dotted", "C0"), (3, "dotted", "C0"),
                                  (2, "dashed", "C0")):
        axes.tricontour(xs, ys, expected[:, column], levels=level, colors=colour,
                        linestyles=style)
    axes.tricontour(xs, ys, observed, levels=level, colors="C3", linestyles="solid")
    axes.plot([], [], "C0--", label="expected")
    axes.plot([], [], "C0:", label="expected ±1σ")
    axes.plot([], [], "C3-", label="observed")
    axes.set_xlabel(x)
    axes.set_ylabel(y)
    axes.margins(0.04)
    axes.autoscale_view()
    axes.set_title(f"{campaign.get('name', '')}: excluded at {cl:.0%} CL")
    axes.legend()
    figure.tight_layout()
    return figure
