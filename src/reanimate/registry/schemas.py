"""Request bodies (pydantic) and the JSON the API answers with, built from the table rows.

`bundle_metadata` reads what a version page shows from the bundle's RO-Crate: the analysis's
authors, references, licence and description (its root entity), and every member with its digest.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from reanimate.registry.models import Analysis, Campaign, Point, Version

API = "/api/v1"


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1, max_length=4)
    name: str = Field("", max_length=200)


class YankIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=2000)


def iso(when: float | None) -> str | None:
    if when is None:
        return None
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")


def _names(bundle, value) -> list[str]:
    out = []
    for item in value if isinstance(value, list) else [value] if value else []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            entity = bundle.ref(item) if "@id" in item else item
            text = entity.get("name") or entity.get("url") or entity.get("@id")
            if isinstance(text, dict):
                text = text.get("@id")
            if text:
                out.append(str(text))
    return out


def bundle_metadata(bundle, inspection) -> dict:
    """The version's `metadata` document (see the API table in docs/registry.md)."""
    root = bundle.root
    references = _names(bundle, root.get("citation")) + _names(bundle, root.get("references"))
    licence = root.get("license")
    licence = _names(bundle, licence)[0] if licence and _names(bundle, licence) else None
    files = []
    for name in sorted(bundle.zip.files):
        entity = bundle.files.get(name, {})
        info = bundle.zip.files[name]
        files.append({"path": name, "sha256": entity.get("sha256"), "size": info.file_size,
                      "media_type": entity.get("encodingFormat") or
                      ("application/ld+json" if name == "ro-crate-metadata.json" else None)})
    return {"authors": _names(bundle, root.get("author")), "references": references,
            "license": licence, "description": root.get("description"),
            "published": inspection.published, "conforms_to": inspection.conforms_to,
            "spec": inspection.spec, "code": inspection.code,
            "steps": [{"name": s["name"], "status": s["status"], "image": s["image"]}
                      for s in inspection.steps],
            "files": files}


def version_url(base: str, analysis: str, version: str) -> str:
    return f"{base}{API}/analyses/{analysis}/versions/{version}"


def version_summary(base: str, analysis: Analysis, row: Version) -> dict:
    return {"version": row.version, "bundle_sha256": row.bundle_sha256,
            "published_at": iso(row.published_at), "publisher": row.publisher,
            "title": row.title, "yanked": row.yanked,
            "url": version_url(base, analysis.name, row.version)}


def version_json(base: str, analysis: Analysis, row: Version) -> dict:
    url = version_url(base, analysis.name, row.version)
    return {"name": analysis.name, "version": row.version, "bundle_sha256": row.bundle_sha256,
            "bundle_size": row.bundle_size, "identifier": row.identifier, "title": row.title,
            "published_at": iso(row.published_at), "publisher": row.publisher,
            "yanked": row.yanked, "yank_reason": row.yank_reason,
            "metadata": json.loads(row.metadata_json), "bundle_url": f"{url}/bundle",
            "campaigns_url": f"{url}/campaigns"}


def analysis_summary(base: str, analysis: Analysis, live: list[Version]) -> dict:
    return {"name": analysis.name, "owner": analysis.owner, "public": analysis.public,
            "title": live[-1].title if live else "",
            "latest": live[-1].version if live else None, "versions": len(live),
            "url": f"{base}{API}/analyses/{analysis.name}"}


def analysis_json(base: str, analysis: Analysis, versions: list[Version]) -> dict:
    return {"name": analysis.name, "owner": analysis.owner, "public": analysis.public,
            "created_at": iso(analysis.created_at),
            "versions": [version_summary(base, analysis, v) for v in versions]}


def point_json(point: Point) -> dict:
    return {"position": point.position, "name": point.name,
            "labels": json.loads(point.labels_json), "status": point.status,
            "attempts": point.attempts, "started_at": iso(point.started_at),
            "finished_at": iso(point.finished_at), "seconds": point.seconds,
            "error": point.error or None, "digest": point.digest}


def campaign_summary(base: str, campaign: Campaign, counts: dict[str, int]) -> dict:
    version = campaign.version
    return {"id": campaign.id, "name": campaign.name, "analysis": version.analysis.name,
            "version": version.version, "submitter": campaign.submitter,
            "status": campaign.status, "counts": counts, "total": sum(counts.values()),
            "created_at": iso(campaign.created_at), "finished_at": iso(campaign.finished_at),
            "url": f"{base}{API}/campaigns/{campaign.id}"}


def campaign_json(base: str, campaign: Campaign, counts: dict[str, int]) -> dict:
    out = campaign_summary(base, campaign, counts)
    url = out.pop("url")
    out.update({"campaign": json.loads(campaign.campaign_json),
                "files": json.loads(campaign.files_json), "points_url": f"{url}/points",
                "results_url": f"{url}/results",
                "plot_url": f"{url}/plot.png" if campaign.plot_sha256 else None})
    return out
