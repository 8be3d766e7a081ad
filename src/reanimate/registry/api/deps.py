"""What a route needs from its request: the settings, the blob store, a database session, the
principal (from `Authorization: Bearer`), scope checks, pagination and absolute URLs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from reanimate.registry import auth, db
from reanimate.registry.api.errors import ApiError
from reanimate.registry.auth import Principal

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"  # analysis names
VERSION = r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,99}$"
SHA256 = r"^[0-9a-f]{64}$"


def settings(request: Request):
    return request.app.state.settings


def blobs(request: Request):
    return request.app.state.blobs


def base_url(request: Request) -> str:
    configured = request.app.state.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


def get_session(request: Request) -> Iterator[Session]:
    with db.session(request.app.state.settings.database_url) as s:
        yield s


def who(request: Request, s: Session = Depends(get_session)) -> Principal | None:
    return auth.principal(s, request.headers.get("authorization"))


def require(principal: Principal | None, scope: str) -> Principal:
    """401 without a token, 403 when the token lacks `scope`."""
    if principal is None:
        raise ApiError(401, f"this needs a token with the {scope!r} scope "
                            "(Authorization: Bearer TOKEN)")
    if not principal.has(scope):
        raise ApiError(403, f"the token of {principal.owner} lacks the {scope!r} scope "
                            f"(it has: {' '.join(sorted(principal.scopes))})")
    return principal


@dataclass
class Page:
    page: int
    per_page: int


def paging(page: int = Query(1, ge=1, le=1_000_000),
           per_page: int = Query(20, ge=1, le=100)) -> Page:
    return Page(page, per_page)


def page_body(request: Request, paged: Page, total: int, items: list) -> dict:
    more = paged.page * paged.per_page < total
    nxt = str(request.url.include_query_params(page=paged.page + 1)) if more else None
    if nxt and request.app.state.settings.public_url:
        nxt = base_url(request) + nxt.split(str(request.base_url).rstrip("/"), 1)[-1]
    return {"items": items, "total": total, "page": paged.page, "per_page": paged.per_page,
            "next": nxt}


def if_none_match(request: Request, etag: str) -> bool:
    """Whether the client's If-None-Match already names `etag` (answer 304)."""
    header = request.headers.get("if-none-match", "")
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return etag in tags or "*" in tags
