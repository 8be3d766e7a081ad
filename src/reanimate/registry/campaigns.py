"""A registry campaign: the submission checks, and its results read from the database.

A registry campaign is the campaign file of docs/campaigns.md run against the version's bundle:
its `analysis:` (if any) is replaced by the bundle, a bare `workspace:` is refused, and every
file it references (signal files or histograms per point, a patchset) must be among the uploads.
:func:`check_submission` validates it with the local loader's located problems and lists its
points in order — the same names :func:`reanimate.reinterpret.campaign_run.plan_points` gives
the worker later. The results table, JSON and plot are those of `reinterpret.campaign_plots` on
rows shaped like the local store's, so a registry campaign's CSV is byte-identical to
`reanimate campaign results --csv` of the same campaign run locally.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reanimate.errors import ReanimateError, SpecError
from reanimate.reinterpret import campaign_plots
from reanimate.reinterpret.campaign import (
    Campaign,
    campaign_source,
    point_name,
    signal_paths,
    validate_campaign,
)
from reanimate.spec.problems import Problem

#: What the worker writes beside the uploaded files (docs/registry.md): refused as uploads.
BUNDLE_FILE = "bundle.crate.zip"
CAMPAIGN_FILE = "campaign.yaml"
RUN_FOLDER = ".run"
RESERVED = (BUNDLE_FILE, CAMPAIGN_FILE, RUN_FOLDER)
#: The registry's point statuses as the local store names them (the tables are the same).
LOCAL_STATUS = {"queued": "pending"}


@dataclass(frozen=True)
class Submission:
    campaign_json: dict  # the validated campaign, `analysis` = BUNDLE_FILE
    points: list[dict]  # {"position", "name", "labels"} in the campaign's order
    references: list[str] = field(default_factory=list)  # the uploads the campaign reads


def _problem(where: str, line: int, column: int, loc: tuple, message: str) -> SpecError:
    return SpecError([Problem(where, line, column, loc, message)])


def parse_campaign(text: str, where: str = CAMPAIGN_FILE) -> Campaign:
    """The campaign in `text`, validated as `load_campaign` does, with `analysis` set to the
    bundle; SpecError (problems located in `where`) for a malformed file or a `workspace:`."""
    source = campaign_source(text, where)
    if "workspace" in source.data:
        pos = source.position(("workspace",))
        raise _problem(where, pos.line, pos.column, ("workspace",),
                       "a registry campaign runs on the version's bundle (its preserved "
                       "workspace for a patchset): drop workspace")
    return validate_campaign(source, {**source.data, "analysis": BUNDLE_FILE})


def _normal(path: str) -> str | None:
    """A relative POSIX path without `.`/`..` tricks, or None if it leaves its folder."""
    text = str(path).replace("\\", "/")
    if not text or text.startswith("/"):
        return None
    normal = posixpath.normpath(text)
    if normal == ".." or normal.startswith("../"):
        return None
    return normal


def _uploaded(files: dict[str, Path]) -> set[str]:
    out = set()
    for name in files:
        normal = _normal(name)
        if normal is None or normal == ".":
            raise ReanimateError(f"files: {name!r} is not a relative path inside the campaign's "
                                 "folder")
        if normal.split("/", 1)[0] in RESERVED:
            raise ReanimateError(f"files: {name!r}: {normal.split('/', 1)[0]} is reserved for "
                                 "the worker's copy of the campaign; rename it")
        out.add(normal)
    return out


def _need(reference: str, uploads: set[str], what: str) -> str:
    normal = _normal(reference)
    if normal is None:
        raise ReanimateError(f"{what}: {reference!r} leaves the campaign's folder (a registry "
                             "campaign reads only the files uploaded with it)")
    if normal in uploads or any(u.startswith(normal + "/") for u in uploads):
        return normal  # a file, or a folder (a catalogue) some uploads are under
    raise ReanimateError(f"{what}: {reference} is not among the uploaded files "
                         f"({', '.join(sorted(uploads)) or 'none uploaded'}); upload it with "
                         "the campaign")


def check_submission(text: str, files: dict[str, Path], *, where: str = CAMPAIGN_FILE,
                     max_points: int) -> Submission:
    """The validated campaign and its points; SpecError (located problems) for a malformed
    file, ReanimateError for a missing upload, a bad patchset or too many points."""
    campaign = parse_campaign(text, where)
    uploads = _uploaded(files)
    paths = {_normal(k): Path(v) for k, v in files.items()}
    signal = campaign.signal
    references: list[str] = []
    if signal.route == "patchset":
        ref = _need(signal.patchset, uploads, "signal.patchset")
        references.append(ref)
        points = _patch_points(campaign, paths.get(ref), ref)
    else:
        points = []
        for labels in campaign.grid.labels():
            references += [_need(part, uploads, f"signal.{signal.route}")
                           for part in signal_paths(campaign, labels)]
            points.append({"name": point_name(labels), "labels": labels})
    seen: set[str] = set()
    for position, point in enumerate(points):
        if point["name"] in seen:
            raise ReanimateError(f"point {point['name']} appears twice in the campaign")
        seen.add(point["name"])
        point["position"] = position
    if not points:
        raise ReanimateError("the campaign has no points")
    if len(points) > max_points:
        raise ReanimateError(f"{len(points)} points: more than this registry's limit of "
                             f"{max_points} per campaign")
    return Submission(campaign.model_dump(mode="json"), points,
                      list(dict.fromkeys(references)))


def _patch_points(campaign: Campaign, path: Path | None, shown: str) -> list[dict]:
    """The selected patches of the uploaded patchset, named and labelled as plan_points does."""
    from reanimate.reinterpret.campaign_run import selected_patches

    if path is None or not path.is_file():
        raise ReanimateError(f"signal.patchset: {shown} is a folder, not a PatchSet file")
    try:
        patchset = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ReanimateError(f"{shown}: not a JSON PatchSet ({exc})") from None
    return [{"name": name, "labels": labels}
            for name, labels, _ in selected_patches(patchset, shown, campaign.signal.patches)]


# -- results -------------------------------------------------------------------------------------


def results_rows(session, campaign_id: int) -> list[dict]:
    """The campaign's points in order, shaped like `reinterpret.store.Store.current()` rows."""
    from sqlalchemy import select

    from reanimate.registry.models import Point, Result

    found = session.execute(
        select(Point, Result.record_json).outerjoin(Result, Result.point_id == Point.id)
        .where(Point.campaign_id == campaign_id).order_by(Point.position, Point.id)).all()
    rows = []
    for point, record in found:
        labels = json.loads(point.labels_json or "{}")
        rows.append({"digest": point.digest, "position": point.position, "name": point.name,
                     "labels": dict(sorted(labels.items())),  # as the local store keeps them
                     "status": LOCAL_STATUS.get(point.status, point.status),
                     "attempts": point.attempts, "started": point.started_at,
                     "finished": point.finished_at,
                     "record": json.loads(record) if record else None,
                     "error": point.error or None})
    return rows


def results_json(rows: list[dict]) -> str:
    return campaign_plots.json_text(rows)


def results_csv(campaign_json: dict, rows: list[dict]) -> str:
    return campaign_plots.csv_text(campaign_json, rows)


def plot_kind(campaign_json: dict, rows: list[dict]) -> str | None:
    """"brazil" (one plotted label) or "contour" (two); None while no point is done."""
    if not any(r["status"] == "done" and r["record"] for r in rows):
        return None
    _, y = campaign_plots.plot_axes(campaign_json, rows)
    return "contour" if y else "brazil"


def render_plot(campaign_json: dict, rows: list[dict], output: Path) -> Path | None:
    """The campaign's plot drawn into `output`; None while no point is done (ReanimateError
    when the points done cannot make one, e.g. a contour of fewer than three)."""
    if plot_kind(campaign_json, rows) is None:
        return None
    return campaign_plots.draw(campaign_json, rows, Path(output))


def campaign_model(campaign_json: dict[str, Any], bundle: Path) -> Campaign:
    """The stored campaign, its analysis the bundle at `bundle` (what the worker plans)."""
    return Campaign.model_validate({**campaign_json, "analysis": str(bundle)})
