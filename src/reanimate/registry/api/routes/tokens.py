"""POST /tokens: an admin makes a token for someone (the secret is in the answer, once)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from reanimate.registry import auth
from reanimate.registry.api.deps import get_session, require, who
from reanimate.registry.schemas import TokenIn

router = APIRouter(tags=["tokens"])


@router.post("/tokens", status_code=201)
def create(body: TokenIn, principal=Depends(who), s=Depends(get_session)):
    require(principal, "admin")
    row, secret = auth.add_token(s, body.owner, body.scopes, body.name)
    s.commit()
    return JSONResponse({"id": row.id, "owner": row.owner, "scopes": row.scopes.split(),
                         "token": secret}, status_code=201)
