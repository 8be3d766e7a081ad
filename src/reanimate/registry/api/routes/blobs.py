"""GET /blobs/{sha256}: any file a readable version or campaign refers to, by its digest (a
yanked version's bundle too); ETag, Range."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request

from reanimate.registry import crud
from reanimate.registry.api.deps import SHA256, get_session, who
from reanimate.registry.api.errors import ApiError
from reanimate.registry.api.routes.versions import blob_response

router = APIRouter(tags=["blobs"])


@router.get("/blobs/{sha256}", responses={200: {"content": {"application/octet-stream": {}}},
                                          206: {}, 304: {}})
def blob(request: Request, sha256: str = Path(pattern=SHA256), principal=Depends(who),
         s=Depends(get_session)):
    if not crud.blob_readable(s, principal, sha256):
        raise ApiError(404, f"no blob {sha256}")
    return blob_response(request, request.app.state.blobs.path(sha256), sha256,
                         media_type="application/octet-stream")
