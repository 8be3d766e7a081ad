"""Campaigns: submitted against a version (multipart: the campaign file and the files it reads),
then read back with their points, results and plot as the workers fill them in."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from reanimate.preserve.archive import BundleRefused, check_name
from reanimate.registry import auth, campaigns, crud, db, schemas
from reanimate.registry.api.deps import (
    NAME,
    VERSION,
    Page,
    base_url,
    get_session,
    page_body,
    paging,
    require,
    who,
)
from reanimate.registry.api.errors import ApiError
from reanimate.registry.api.multipart import receive_form
from reanimate.registry.api.routes.versions import blob_response
from reanimate.registry.models import Version

router = APIRouter(tags=["campaigns"])
CAMPAIGN_ID = Path(ge=1, le=2**31 - 1)
FORM_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["campaign"],
    "properties": {"campaign": {"type": "string", "format": "binary"},
                   "files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
}}}}}


def _files(parts) -> tuple[str, dict]:
    """The campaign text and {relative path: part} of the uploads, or 422."""
    texts, files = [], {}
    for part in parts:
        if part.name == "campaign":
            texts.append(part)
        elif part.name == "files" and part.filename:
            try:
                relpath = check_name(part.filename)
            except BundleRefused as exc:
                raise ApiError(422, f"uploaded file {part.filename!r}: {exc}") from None
            if relpath in files:
                raise ApiError(422, f"the file {relpath} is uploaded twice")
            files[relpath] = part
        else:
            raise ApiError(422, f"unexpected form field {part.name!r} (give campaign and files, "
                                "each file's filename its path relative to the campaign file)")
    if len(texts) != 1:
        raise ApiError(422, "give exactly one campaign file (form field `campaign`)")
    try:
        text = texts[0].incoming.path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(422, "the campaign file is not UTF-8 text") from None
    return text, files


def _create(settings, store, principal, version_id: int, parts) -> dict:
    text, files = _files(parts)
    submission = campaigns.check_submission(
        text, files={k: p.incoming.path for k, p in files.items()}, where="campaign.yaml",
        max_points=settings.max_points)
    digests = {relpath: store.place(part.incoming) for relpath, part in files.items()}
    with db.session(settings.database_url) as s:
        row = s.get(Version, version_id)
        if row.yanked:
            raise ApiError(409, f"{row.analysis.name}@{row.version} is yanked; it takes no "
                                "new campaigns")
        campaign = crud.create_campaign(s, row, principal.owner, text, submission, digests)
        s.commit()
        return schemas.campaign_json(settings.public_url, campaign, crud.counts(s, campaign.id))


@router.post("/analyses/{name}/versions/{version}/campaigns", status_code=201,
             openapi_extra=FORM_BODY)
async def submit(request: Request, name: str = Path(pattern=NAME),
                 version: str = Path(pattern=VERSION)):
    settings, store = request.app.state.settings, request.app.state.blobs

    def check():
        with db.session(settings.database_url) as s:
            principal = require(auth.principal(s, request.headers.get("authorization")),
                                "campaign")
            row = crud.get_version(s, principal, name, version)
            if row.yanked:
                raise ApiError(409, f"{name}@{version} is yanked; it takes no new campaigns")
            return principal, row.id

    principal, version_id = await run_in_threadpool(check)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > settings.max_upload:
        raise ApiError(413, f"the submission is {length} bytes, over the limit of "
                            f"{settings.max_upload} bytes")
    parts = await receive_form(request.headers.get("content-type", ""), request.stream(), store,
                               max_size=settings.max_upload,
                               max_parts=settings.max_campaign_files + 1)
    try:
        content = await run_in_threadpool(_create, settings, store, principal, version_id, parts)
    finally:
        for part in parts:
            store.discard(part.incoming)
    base = base_url(request)
    content = {k: base + v if k.endswith("_url") and isinstance(v, str) and v.startswith("/")
               else v for k, v in content.items()}
    return JSONResponse(content, status_code=201)


@router.get("/campaigns")
def list_campaigns(request: Request, analysis: str | None = Query(None, pattern=NAME),
                   paged: Page = Depends(paging), principal=Depends(who),
                   s=Depends(get_session)) -> dict:
    total, rows = crud.list_campaigns(s, principal, analysis, paged.page, paged.per_page)
    base = base_url(request)
    return page_body(request, paged, total,
                     [schemas.campaign_summary(base, c, crud.counts(s, c.id)) for c in rows])


@router.get("/campaigns/{campaign_id}")
def show(request: Request, campaign_id: int = CAMPAIGN_ID, principal=Depends(who),
         s=Depends(get_session)) -> dict:
    row = crud.get_campaign(s, principal, campaign_id)
    return schemas.campaign_json(base_url(request), row, crud.counts(s, row.id))


@router.get("/campaigns/{campaign_id}/points")
def points(request: Request, campaign_id: int = CAMPAIGN_ID, paged: Page = Depends(paging),
           principal=Depends(who), s=Depends(get_session)) -> dict:
    crud.get_campaign(s, principal, campaign_id)
    total, rows = crud.list_points(s, campaign_id, paged.page, paged.per_page)
    return page_body(request, paged, total, [schemas.point_json(p) for p in rows])


@router.get("/campaigns/{campaign_id}/results",
            responses={200: {"content": {"application/json": {}, "text/csv": {}}}})
def results(campaign_id: int = CAMPAIGN_ID, format: str = Query("json", pattern="^(json|csv)$"),
            principal=Depends(who), s=Depends(get_session)):
    import json

    row = crud.get_campaign(s, principal, campaign_id)
    rows = campaigns.results_rows(s, row.id)
    if format == "csv":
        return Response(campaigns.results_csv(json.loads(row.campaign_json), rows),
                        media_type="text/csv")
    return Response(campaigns.results_json(rows), media_type="application/json")


@router.get("/campaigns/{campaign_id}/plot.png",
            responses={200: {"content": {"image/png": {}}}, 304: {}})
def plot(request: Request, campaign_id: int = CAMPAIGN_ID, principal=Depends(who),
         s=Depends(get_session)):
    row = crud.get_campaign(s, principal, campaign_id)
    if not row.plot_sha256:
        raise ApiError(404, f"campaign {campaign_id} has no plot yet")
    return blob_response(request, request.app.state.blobs.path(row.plot_sha256),
                         row.plot_sha256, media_type="image/png")
