"""Leases on campaign points: the database side of the worker (`registry/worker.py`).

A point is claimed with a conditional UPDATE (status queued, or running with an expired lease
and fewer than `max_attempts` leases taken) that sets a fresh random `lease_token`; on PostgreSQL
the candidates are read with `SELECT … FOR UPDATE SKIP LOCKED`, so concurrent workers never wait
on each other's rows. Everything a worker writes later (renewal, result, failure, release) is
conditional on its token still being the point's: a worker whose lease expired and was taken by
another finds its writes refused and discards its result. A result is the `results` row and the
point's `done` in one transaction, and `results.point_id` is unique: never stored twice.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, update

from reanimate.registry.db import session
from reanimate.registry.models import Campaign, Point, Result

FINAL = ("done", "failed")
OPEN = ("queued", "running")
NO_SYNC = {"synchronize_session": False}


@dataclass
class Claim:
    point_id: int
    campaign_id: int
    name: str
    token: str
    attempts: int
    started: float


def _claimable(now: float, max_attempts: int):
    return or_(Point.status == "queued",
               and_(Point.status == "running", Point.lease_expires < now,
                    Point.attempts < max_attempts))


def claim(settings, owner: str, n: int, lease_seconds: float) -> list[Claim]:
    """Lease up to `n` points (oldest campaign first, in campaign order); their campaigns are
    `running` from then on."""
    if n < 1:
        return []
    now = time.time()
    claimable = _claimable(now, settings.max_attempts)
    query = (select(Point.id).where(claimable).order_by(Point.campaign_id, Point.position)
             .limit(n))
    if settings.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    out = []
    with session(settings.database_url) as s:
        for point_id in s.scalars(query).all():
            token = secrets.token_hex(16)
            done = s.execute(update(Point).where(Point.id == point_id, claimable).values(
                status="running", lease_owner=owner, lease_token=token,
                lease_expires=now + lease_seconds, attempts=Point.attempts + 1,
                started_at=now, error="").execution_options(**NO_SYNC))
            if done.rowcount == 1:
                row = s.execute(select(Point.campaign_id, Point.name, Point.attempts)
                                .where(Point.id == point_id)).one()
                out.append(Claim(point_id, row.campaign_id, row.name, token, row.attempts, now))
        campaigns = sorted({c.campaign_id for c in out})
        if campaigns:
            s.execute(update(Campaign).where(Campaign.id.in_(campaigns),
                                             Campaign.status == "queued")
                      .values(status="running").execution_options(**NO_SYNC))
    return out


def renew(settings, claims: list[Claim], lease_seconds: float) -> list[Claim]:
    """Extend these leases; returns the claims whose lease is no longer ours."""
    if not claims:
        return []
    lost = []
    expires = time.time() + lease_seconds
    with session(settings.database_url) as s:
        for c in claims:
            done = s.execute(update(Point).where(
                Point.id == c.point_id, Point.lease_token == c.token, Point.status == "running")
                .values(lease_expires=expires).execution_options(**NO_SYNC))
            if done.rowcount != 1:
                lost.append(c)
    return lost


def release(settings, claims: list[Claim]) -> int:
    """Give these points back (queued, the lease not counted as an attempt); how many."""
    released = 0
    with session(settings.database_url) as s:
        for c in claims:
            released += s.execute(update(Point).where(
                Point.id == c.point_id, Point.lease_token == c.token, Point.status == "running")
                .values(status="queued", lease_owner=None, lease_token=None,
                        lease_expires=None, started_at=None, attempts=Point.attempts - 1)
                .execution_options(**NO_SYNC)).rowcount
    return released


def finish(settings, c: Claim, worker: str, *, record: dict | None = None,
           error: str | None = None, digest: str | None = None) -> bool:
    """Store the point's result (record: done) or failure (error), only while the lease is
    still ours; False, with nothing written, if another worker has taken the point."""
    text = None
    if record is not None:
        try:
            text = json.dumps(record, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            record, error = None, f"the point's record is not JSON: {exc}"
    now = time.time()
    with session(settings.database_url) as s:
        done = s.execute(update(Point).where(
            Point.id == c.point_id, Point.lease_token == c.token, Point.status == "running")
            .values(status="done" if record is not None else "failed", finished_at=now,
                    seconds=round(now - c.started, 3), digest=digest, error=error or "",
                    lease_token=None, lease_expires=None)
            .execution_options(**NO_SYNC))
        if done.rowcount != 1:
            return False
        if text is not None:
            s.add(Result(point_id=c.point_id, record_json=text, worker=worker, stored_at=now))
    return True


def expire(settings) -> list[int]:
    """Fail the points whose lease expired `max_attempts` times (their workers died); the ids
    of their campaigns."""
    now = time.time()
    campaigns = set()
    with session(settings.database_url) as s:
        rows = s.execute(select(Point.id, Point.campaign_id, Point.attempts, Point.lease_token)
                         .where(Point.status == "running", Point.lease_expires < now,
                                Point.attempts >= settings.max_attempts)).all()
        for row in rows:
            done = s.execute(update(Point).where(
                Point.id == row.id, Point.lease_token == row.lease_token,
                Point.status == "running", Point.lease_expires < now)
                .values(status="failed", finished_at=now, lease_token=None, lease_expires=None,
                        error=f"lease expired {row.attempts} times: the worker died")
                .execution_options(**NO_SYNC))
            if done.rowcount:
                campaigns.add(row.campaign_id)
    return sorted(campaigns)


def open_points(settings) -> int:
    """Points queued or running, in every campaign."""
    with session(settings.database_url) as s:
        return s.scalar(select(func.count()).select_from(Point)
                        .where(Point.status.in_(OPEN))) or 0


def unfinished(settings) -> list[int]:
    """Campaigns not yet done or failed whose points are all finished (their last worker died
    before it could close them)."""
    with session(settings.database_url) as s:
        busy = select(Point.id).where(Point.campaign_id == Campaign.id, Point.status.in_(OPEN))
        return list(s.scalars(select(Campaign.id).where(Campaign.status.in_(OPEN),
                                                        ~busy.exists())))


def close(settings, campaign_id: int, plot) -> str | None:
    """The campaign's final status once no point is open: done (failed if every point failed),
    its plot made by `plot(campaign_json, rows) -> (sha256, kind) | None` first; the status if
    this call closed it, None if points are open or it was closed already."""
    from reanimate.registry.campaigns import results_rows

    with session(settings.database_url) as s:
        row = s.get(Campaign, campaign_id)
        if row is None or row.status in FINAL:
            return None
        if s.scalar(select(func.count()).select_from(Point).where(
                Point.campaign_id == campaign_id, Point.status.in_(OPEN))):
            return None
        rows = results_rows(s, campaign_id)
        campaign_json = json.loads(row.campaign_json)
    status = "done" if any(r["status"] == "done" for r in rows) or not rows else "failed"
    made = plot(campaign_json, rows) if status == "done" else None
    sha, kind = made or (None, None)
    with session(settings.database_url) as s:
        closed = s.execute(update(Campaign).where(Campaign.id == campaign_id,
                                                  Campaign.status.in_(OPEN))
                           .values(status=status, finished_at=time.time(), plot_sha256=sha,
                                   plot_kind=kind).execution_options(**NO_SYNC)).rowcount
    return status if closed else None
