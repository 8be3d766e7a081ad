"""GET /health (the database answers, at which schema) and GET /whoami."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from reanimate import __version__
from reanimate.errors import ReanimateError
from reanimate.registry import db
from reanimate.registry.api.deps import who
from reanimate.registry.api.errors import ApiError

router = APIRouter(tags=["health"])


@router.get("/health")
def health(request: Request) -> dict:
    settings = request.app.state.settings
    dialect = "postgresql" if settings.dialect.startswith("postgres") else settings.dialect
    try:
        schema = db.current_revision(settings.database_url)
    except ReanimateError as exc:
        raise ApiError(503, str(exc)) from None
    return {"status": "ok", "database": dialect, "schema": schema, "version": __version__}


@router.get("/whoami")
def whoami(principal=Depends(who)) -> dict:
    if principal is None:
        raise ApiError(401, "no token given (Authorization: Bearer TOKEN)")
    return {"owner": principal.owner, "scopes": principal.effective_scopes()}
