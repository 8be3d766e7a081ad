"""The database operations behind the API. Visibility: a public analysis (and its campaigns) is
readable by anyone; a private one by its owner and by tokens with the `read` scope (or admin).

Publishing keeps versions immutable with the unique constraint on (analysis, version) as the
final arbiter: two publishers racing for the same version both insert, one wins, the other's
IntegrityError is caught and the row re-read (200 if the bytes are the same, 409 if not).
"""

from __future__ import annotations

import json
import time

from sqlalchemy import func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reanimate.registry.api.errors import ApiError
from reanimate.registry.auth import Principal
from reanimate.registry.models import Analysis, Campaign, Point, Version

STATUSES = ("queued", "running", "done", "failed")


def can_read(who: Principal | None, analysis: Analysis) -> bool:
    return analysis.public or (who is not None and (who.has("read") or who.owner == analysis.owner))


def visible_filter(who: Principal | None):
    """A WHERE clause on Analysis: the analyses `who` may read."""
    if who is not None and who.has("read"):
        return true()
    if who is None:
        return Analysis.public.is_(True)
    return Analysis.public.is_(True) | (Analysis.owner == who.owner)


def get_analysis(s: Session, who: Principal | None, name: str) -> Analysis:
    row = s.scalars(select(Analysis).where(Analysis.name == name)).first()
    if row is None or not can_read(who, row):
        raise ApiError(404, f"no analysis {name!r}")
    return row


def get_version(s: Session, who: Principal | None, name: str, version: str) -> Version:
    analysis = get_analysis(s, who, name)
    row = s.scalars(select(Version).where(Version.analysis_id == analysis.id,
                                          Version.version == version)).first()
    if row is None:
        raise ApiError(404, f"no version {name}@{version}")
    return row


def find_version(s: Session, name: str, version: str) -> Version | None:
    return s.scalars(select(Version).join(Analysis).where(
        Analysis.name == name, Version.version == version)).first()


def list_analyses(s: Session, who: Principal | None, page: int, per_page: int):
    where = visible_filter(who)
    total = s.scalar(select(func.count()).select_from(Analysis).where(where))
    rows = s.scalars(select(Analysis).where(where).order_by(Analysis.name)
                     .offset((page - 1) * per_page).limit(per_page)).all()
    return total, [(a, [v for v in a.versions if not v.yanked]) for a in rows]


def check_publisher(s: Session, who: Principal, name: str, private: bool | None) -> None:
    """Before the body is read: the publisher may publish `name` (403 otherwise)."""
    row = s.scalars(select(Analysis).where(Analysis.name == name)).first()
    if row is None:
        return
    if row.owner != who.owner and not who.admin:
        raise ApiError(403, f"analysis {name!r} belongs to {row.owner}, not {who.owner}")
    if private is not None and private == row.public:
        raise ApiError(422, f"analysis {name!r} is {'public' if row.public else 'private'}; "
                            "visibility is chosen at its first version")


def existing(s: Session, name: str, version: str, sha: str) -> Version | None:
    """The version if it exists with these bytes; 409 if with others; None if new."""
    row = find_version(s, name, version)
    if row is not None and row.bundle_sha256 != sha:
        raise ApiError(409, f"{name}@{version} is already published with other content "
                            f"(sha256 {row.bundle_sha256}; this upload is {sha}); versions "
                            "are immutable: publish a new version",
                       published_sha256=row.bundle_sha256, uploaded_sha256=sha)
    return row


def insert_version(s: Session, who: Principal, name: str, version: str, private: bool | None,
                   fields: dict, retry: bool = True) -> tuple[Version, bool]:
    """Insert (the analysis if new and) the version, committed; (row, created). A race is
    settled by the unique constraints: the loser rolls back and reads the winner's row."""
    now = time.time()
    try:
        analysis = s.scalars(select(Analysis).where(Analysis.name == name)).first()
        if analysis is None:
            analysis = Analysis(name=name, owner=who.owner, public=not private, created_at=now)
            s.add(analysis)
            s.flush()
        elif analysis.owner != who.owner and not who.admin:
            raise ApiError(403, f"analysis {name!r} belongs to {analysis.owner}")
        row = Version(analysis_id=analysis.id, version=version, publisher=who.owner,
                      published_at=now, **fields)
        s.add(row)
        s.commit()
        return row, True
    except IntegrityError:
        s.rollback()
    row = existing(s, name, version, fields["bundle_sha256"])
    if row is None and retry:  # the analysis row raced: once more, with it present
        return insert_version(s, who, name, version, private, fields, retry=False)
    if row is None:
        raise ApiError(409, f"{name}@{version}: a concurrent publish conflicted; retry")
    return row, False


def yank(s: Session, row: Version, reason: str) -> Version:
    if not row.yanked:
        row.yanked, row.yanked_at, row.yank_reason = True, time.time(), reason
        s.flush()
    return row


def counts(s: Session, campaign_id: int) -> dict[str, int]:
    found = dict(s.execute(select(Point.status, func.count()).where(
        Point.campaign_id == campaign_id).group_by(Point.status)).all())
    return {status: found.get(status, 0) for status in STATUSES}


def create_campaign(s: Session, version_row: Version, submitter: str, text: str, submission,
                    files: dict[str, str]) -> Campaign:
    """The campaign and its points (queued, in the submission's order)."""
    doc = submission.campaign_json
    campaign = Campaign(version_id=version_row.id, name=str(doc.get("name") or "campaign")[:100],
                        submitter=submitter, campaign_text=text,
                        campaign_json=json.dumps(doc, sort_keys=True),
                        files_json=json.dumps(files, sort_keys=True), status="queued",
                        created_at=time.time())
    s.add(campaign)
    s.flush()
    for i, point in enumerate(submission.points):
        s.add(Point(campaign_id=campaign.id, position=point.get("position", i),
                    name=str(point["name"]), labels_json=json.dumps(point.get("labels") or {},
                                                                    sort_keys=True),
                    status="queued"))
    s.flush()
    return campaign


def get_campaign(s: Session, who: Principal | None, campaign_id: int) -> Campaign:
    row = s.get(Campaign, campaign_id)
    if row is None or not can_read(who, row.version.analysis):
        raise ApiError(404, f"no campaign {campaign_id}")
    return row


def list_campaigns(s: Session, who: Principal | None, analysis: str | None, page: int,
                   per_page: int):
    query = select(Campaign).join(Version).join(Analysis).where(visible_filter(who))
    if analysis:
        query = query.where(Analysis.name == analysis)
    total = s.scalar(select(func.count()).select_from(query.subquery()))
    rows = s.scalars(query.order_by(Campaign.id.desc()).offset((page - 1) * per_page)
                     .limit(per_page)).all()
    return total, rows


def list_points(s: Session, campaign_id: int, page: int, per_page: int):
    where = Point.campaign_id == campaign_id
    total = s.scalar(select(func.count()).select_from(Point).where(where))
    rows = s.scalars(select(Point).where(where).order_by(Point.position)
                     .offset((page - 1) * per_page).limit(per_page)).all()
    return total, rows


def blob_readable(s: Session, who: Principal | None, sha: str) -> bool:
    """Whether `sha` is a bundle, uploaded campaign file or plot that `who` may read."""
    versions = s.scalars(select(Version).where(Version.bundle_sha256 == sha)).all()
    if any(can_read(who, v.analysis) for v in versions):
        return True
    campaigns = s.scalars(select(Campaign).where(
        (Campaign.plot_sha256 == sha) | Campaign.files_json.contains(f'"{sha}"'))).all()
    return any(can_read(who, c.version.analysis) for c in campaigns)
