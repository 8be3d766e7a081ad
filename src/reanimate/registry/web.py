"""The registry's web pages, rendered on the server (jinja2, autoescaped, no build step).

`/` lists the public analyses, `/analyses/NAME` its versions, `/analyses/NAME/VERSION` a
version's metadata, files, the commands that rerun and reinterpret it and its campaigns,
`/campaigns/ID` a campaign's progress, results table and plot. Private analyses (and their
campaigns) are not shown here at all: the pages are public. Unknown names are HTML 404 pages.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import func, select

from reanimate.preserve.archive import human_size
from reanimate.registry import db
from reanimate.registry.models import Analysis, Campaign, Point, Version

TEMPLATES = Path(__file__).parent / "templates"
STATUSES = ("queued", "running", "done", "failed")
HEX = frozenset("0123456789abcdef")
REFRESH_S = 5  # a campaign page reloads itself this often while points are left

router = APIRouter(include_in_schema=False)


def _when(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _size(n: int | None) -> str:
    return "" if n is None else human_size(n)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _link(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def _sha(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in HEX for c in value)


_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.filters.update(when=_when, size=_size, cell=_cell)
_env.tests.update(link=_link, sha=_sha)


def _page(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    html = _env.get_template(template).render(registry=_registry_url(request), **context)
    return HTMLResponse(html, status_code=status_code)


def _missing(request: Request, what: str) -> HTMLResponse:
    return _page(request, "not_found.html", 404, title="Not found", what=what)


def _registry_url(request: Request) -> str:
    return (_settings(request).public_url or str(request.base_url)).rstrip("/")


def _settings(request: Request):
    return request.app.state.settings


def _session(request: Request):
    return db.session(_settings(request).database_url)


def _public_analysis(s, name: str) -> Analysis | None:
    return s.scalar(select(Analysis).where(Analysis.name == name, Analysis.public.is_(True)))


def _counts(s, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    out = {cid: dict.fromkeys(STATUSES, 0) for cid in campaign_ids}
    if campaign_ids:
        rows = s.execute(select(Point.campaign_id, Point.status, func.count())
                         .where(Point.campaign_id.in_(campaign_ids))
                         .group_by(Point.campaign_id, Point.status))
        for cid, status, n in rows:
            out[cid][status] = n
    return out


@router.get("/", response_class=HTMLResponse)
def index(request: Request):
    with _session(request) as s:
        analyses = s.scalars(select(Analysis).where(Analysis.public.is_(True))
                             .order_by(Analysis.name)).all()
        rows = []
        for analysis in analyses:
            live = [v for v in analysis.versions if not v.yanked]
            if not live:
                continue
            rows.append({"name": analysis.name, "owner": analysis.owner, "title": live[-1].title,
                         "latest": live[-1].version, "versions": len(live),
                         "published_at": live[-1].published_at})
    return _page(request, "index.html", title="Analyses", analyses=rows)


@router.get("/analyses/{name}", response_class=HTMLResponse)
def analysis_page(request: Request, name: str):
    with _session(request) as s:
        analysis = _public_analysis(s, name)
        if analysis is None:
            return _missing(request, f"analysis {name!r}")
        versions = [{"version": v.version, "title": v.title, "digest": v.bundle_sha256,
                     "size": v.bundle_size, "published_at": v.published_at,
                     "publisher": v.publisher, "yanked": v.yanked,
                     "yank_reason": v.yank_reason} for v in reversed(analysis.versions)]
        info = {"name": analysis.name, "owner": analysis.owner,
                "created_at": analysis.created_at}
    title = next((v["title"] for v in versions if not v["yanked"]), name)
    return _page(request, "analysis.html", title=name, analysis=info, versions=versions,
                 heading=title)


@router.get("/analyses/{name}/{version}", response_class=HTMLResponse)
def version_page(request: Request, name: str, version: str):
    with _session(request) as s:
        analysis = _public_analysis(s, name)
        row = None if analysis is None else s.scalar(
            select(Version).where(Version.analysis_id == analysis.id, Version.version == version))
        if row is None:
            return _missing(request, f"version {name}@{version}")
        campaigns = s.scalars(select(Campaign).where(Campaign.version_id == row.id)
                              .order_by(Campaign.id.desc())).all()
        counts = _counts(s, [c.id for c in campaigns])
        campaign_rows = [{"id": c.id, "name": c.name, "status": c.status,
                          "submitter": c.submitter, "created_at": c.created_at,
                          "counts": counts[c.id], "total": sum(counts[c.id].values())}
                         for c in campaigns]
        info = {"name": name, "version": row.version, "title": row.title or name,
                "digest": row.bundle_sha256, "size": row.bundle_size,
                "identifier": row.identifier, "publisher": row.publisher,
                "published_at": row.published_at, "yanked": row.yanked,
                "yank_reason": row.yank_reason}
        metadata = _metadata(row.metadata_json)
    return _page(request, "version.html", title=f"{name}@{version}", v=info, m=metadata,
                 campaigns=campaign_rows,
                 bundle_url=f"/api/v1/analyses/{name}/versions/{version}/bundle")


def _metadata(text: str) -> dict:
    """The version's crate metadata with every field the page shows, in displayable shapes."""
    try:
        raw = json.loads(text or "{}")
    except ValueError:
        raw = {}
    raw = raw if isinstance(raw, dict) else {}

    def listed(key: str) -> list:
        value = raw.get(key) or []
        return value if isinstance(value, list) else [value]

    files = [f for f in listed("files") if isinstance(f, dict)]
    return {
        "authors": [str(a) for a in listed("authors")],
        "references": [str(r) for r in listed("references")],
        "license": str(raw.get("license") or ""),
        "description": str(raw.get("description") or ""),
        "published": str(raw.get("published") or ""),
        "conforms_to": [str(c) for c in listed("conforms_to")],
        "spec": str(raw.get("spec") or ""),
        "code": _code(raw.get("code")),
        "steps": [{"name": str(st.get("name", "")), "status": str(st.get("status", "")),
                   "image": str(st.get("image") or "")}
                  for st in listed("steps") if isinstance(st, dict)],
        "files": [{"path": str(f.get("path", "")), "sha256": str(f.get("sha256") or ""),
                   "size": f.get("size"), "media_type": str(f.get("media_type") or "")}
                  for f in files],
        "total_size": sum(f.get("size") or 0 for f in files if isinstance(f.get("size"), int)),
    }


def _code(code) -> str:
    """The bundle's code line: its wheel, version and sha256 (any other shape as JSON)."""
    if isinstance(code, dict) and code.get("wheel"):
        return (f"{code['wheel']} (version {code.get('version') or '?'}, sha256 "
                f"{code.get('sha256') or '?'})")
    return code if isinstance(code, str) else json.dumps(code, sort_keys=True) if code else ""


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(request: Request, campaign_id: str):
    if not campaign_id.isdigit():
        return _missing(request, f"campaign {campaign_id!r}")
    from reanimate.registry.campaigns import results_rows
    from reanimate.reinterpret.campaign_plots import table_rows

    with _session(request) as s:
        row = s.get(Campaign, int(campaign_id))
        version = row.version if row else None
        if row is None or not version.analysis.public:
            return _missing(request, f"campaign {campaign_id}")
        counts = _counts(s, [row.id])[row.id]
        campaign_json = json.loads(row.campaign_json or "{}")
        header, table = table_rows(campaign_json, results_rows(s, row.id))
        info = {"id": row.id, "name": row.name, "status": row.status,
                "submitter": row.submitter, "created_at": row.created_at,
                "finished_at": row.finished_at, "plot": bool(row.plot_sha256),
                "plot_kind": row.plot_kind or "", "analysis": version.analysis.name,
                "version": version.version,
                "description": str(campaign_json.get("description") or ""),
                "files": json.loads(row.files_json or "{}")}
    total = sum(counts.values())
    finished = counts["done"] + counts["failed"]
    return _page(request, "campaign.html", title=f"Campaign {row.id}: {row.name}", c=info,
                 counts=counts, total=total, finished=finished,
                 percent=round(100 * finished / total) if total else 100,
                 refresh=REFRESH_S if info["status"] in ("queued", "running") else None,
                 header=header, table=table)
