"""Versions: publish (PUT the bundle zip), read, download, yank.

Publishing streams the body into the blob store's `tmp/` (413 as soon as it passes the limit,
422 if its digest is not the client's X-Bundle-SHA256), opens it as a bundle with the limits of
the settings (unsafe names, symbolic links, zip bombs, member digests against the metadata, the
crate's name and version against the URL: 422), and only then places the blob and inserts the
version. Nothing is stored on any 4xx.
"""

from __future__ import annotations

import hashlib
import json
import re

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from reanimate.preserve.archive import Bundle, BundleRefused, Limits
from reanimate.preserve.inspect import inspect_bundle
from reanimate.registry import auth, crud, db, schemas
from reanimate.registry.api.deps import (
    NAME,
    VERSION,
    base_url,
    get_session,
    if_none_match,
    require,
    who,
)
from reanimate.registry.api.errors import ApiError
from reanimate.registry.schemas import YankIn

router = APIRouter(tags=["versions"])
BINARY = {"schema": {"type": "string", "format": "binary"}}
ZIP_BODY = {"requestBody": {"required": True, "content": {
    "application/zip": BINARY, "application/octet-stream": BINARY}}}


def _read_bundle(settings, incoming, name: str, version: str) -> dict:
    """The version's columns from the uploaded bundle, or 422 naming what is wrong."""
    limits = Limits(max_bundle=settings.max_upload, max_unpacked=settings.max_unpacked,
                    max_ratio=settings.max_ratio)
    where = str(incoming.path)
    try:
        inspection = inspect_bundle(incoming.path, limits, check=True)
        if inspection.problems:
            raise ApiError(422, f"{len(inspection.problems)} member(s) differ from the "
                                "bundle's metadata; refusing it", inspection.problems)
        with Bundle(incoming.path, limits) as bundle:
            metadata = schemas.bundle_metadata(bundle, inspection)
    except BundleRefused as exc:
        raise ApiError(422, str(exc).replace(where, "the bundle")) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ApiError(422, f"the bundle's metadata is not a crate reanimate reads "
                            f"({type(exc).__name__}: {exc})") from None
    if inspection.name != name or str(inspection.version) != version:
        raise ApiError(422, f"the bundle is {inspection.name}@{inspection.version}, not "
                            f"{name}@{version} as the URL says")
    return {"bundle_sha256": incoming.sha256, "bundle_size": incoming.size,
            "identifier": str(inspection.identifier or "")[:200],
            "title": str(inspection.title or ""), "metadata_json": json.dumps(metadata)}


def _store(settings, store, principal, name, version, private, incoming):
    url = settings.database_url
    with db.session(url) as s:
        row = crud.existing(s, name, version, incoming.sha256)
        if row is None:
            fields = _read_bundle(settings, incoming, name, version)
    if row is None:
        store.place(incoming)
        with db.session(url) as s:
            row, created = crud.insert_version(s, principal, name, version, private, fields)
            return (201 if created else 200), schemas.version_json(
                settings.public_url, row.analysis, row)
    if not store.exists(incoming.sha256):  # cannot happen unless the store was tampered with
        store.place(incoming)
    with db.session(url) as s:
        row = crud.find_version(s, name, version)
        return 200, schemas.version_json(settings.public_url, row.analysis, row)


@router.put("/analyses/{name}/versions/{version}", status_code=201, openapi_extra=ZIP_BODY,
            responses={200: {"description": "the same bytes were already published"},
                       409: {"description": "the version exists with other bytes"},
                       413: {"description": "over the upload limit"}})
async def publish(request: Request, name: str = Path(pattern=NAME),
                  version: str = Path(pattern=VERSION),
                  private: bool | None = Query(None),
                  x_bundle_sha256: str | None = Header(None)):
    settings, store = request.app.state.settings, request.app.state.blobs
    expected = x_bundle_sha256.strip().lower() if x_bundle_sha256 is not None else None
    if expected is not None and not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise ApiError(422, "X-Bundle-SHA256 is not a sha256 digest (64 hex digits)")

    def check() -> auth.Principal:
        with db.session(settings.database_url) as s:
            principal = require(auth.principal(s, request.headers.get("authorization")),
                                "publish")
            crud.check_publisher(s, principal, name, private)
            return principal

    principal = await run_in_threadpool(check)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > settings.max_upload:
        raise ApiError(413, f"the bundle is {length} bytes, over the limit of "
                            f"{settings.max_upload} bytes")
    incoming = await store.receive(request.stream(), max_size=settings.max_upload,
                                   expected_sha256=expected, what="bundle")
    try:
        status, content = await run_in_threadpool(
            _store, settings, store, principal, name, version, private, incoming)
    finally:
        store.discard(incoming)
    return JSONResponse(_absolute(request, content), status_code=status)


def _absolute(request: Request, content: dict) -> dict:
    """URLs made with an empty base (inside the threadpool) completed with the request's."""
    base = base_url(request)
    return {k: base + v if k.endswith("_url") and v.startswith("/") else v
            for k, v in content.items()}


@router.get("/analyses/{name}/versions/{version}")
def show(request: Request, name: str = Path(pattern=NAME), version: str = Path(pattern=VERSION),
         principal=Depends(who), s=Depends(get_session)):
    row = crud.get_version(s, principal, name, version)
    content = schemas.version_json(base_url(request), row.analysis, row)
    etag = '"' + hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest() + '"'
    if if_none_match(request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse(content, headers={"ETag": etag, "Cache-Control": "no-cache"})


def blob_response(request: Request, path, sha: str, extra: dict | None = None,
                  **kwargs) -> Response:
    """An immutable file: ETag = its sha256 (If-None-Match -> 304), Range -> 206."""
    etag = f'"{sha}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes",
               "Cache-Control": "public, max-age=31536000, immutable", **(extra or {})}
    if if_none_match(request, etag):
        return Response(status_code=304, headers=headers)
    if not path.is_file():  # only if someone removed it from the store
        raise ApiError(500, f"blob {sha} is missing from the store")
    return FileResponse(path, headers=headers, **kwargs)


@router.get("/analyses/{name}/versions/{version}/bundle",
            responses={200: {"content": {"application/zip": {}}}, 206: {}, 304: {}})
def bundle(request: Request, name: str = Path(pattern=NAME),
           version: str = Path(pattern=VERSION), principal=Depends(who),
           s=Depends(get_session)):
    row = crud.get_version(s, principal, name, version)
    return blob_response(request, request.app.state.blobs.path(row.bundle_sha256),
                         row.bundle_sha256, {"X-Bundle-SHA256": row.bundle_sha256},
                         media_type="application/zip",
                         filename=f"{name}-{version}.crate.zip")


@router.post("/analyses/{name}/versions/{version}/yank")
def yank(request: Request, name: str = Path(pattern=NAME), version: str = Path(pattern=VERSION),
         body: YankIn | None = Body(None), principal=Depends(who), s=Depends(get_session)):
    require(principal, "publish")
    row = crud.get_version(s, principal, name, version)
    if row.analysis.owner != principal.owner and not principal.admin:
        raise ApiError(403, f"analysis {name!r} belongs to {row.analysis.owner}, "
                            f"not {principal.owner}")
    crud.yank(s, row, body.reason if body else "")
    s.commit()
    return schemas.version_json(base_url(request), row.analysis, row)
