"""GET /analyses (a page of them) and GET /analyses/{name} (its versions)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request

from reanimate.registry import crud, schemas
from reanimate.registry.api.deps import NAME, Page, base_url, get_session, page_body, paging, who

router = APIRouter(tags=["analyses"])


@router.get("/analyses")
def list_analyses(request: Request, paged: Page = Depends(paging), principal=Depends(who),
                  s=Depends(get_session)) -> dict:
    total, rows = crud.list_analyses(s, principal, paged.page, paged.per_page)
    base = base_url(request)
    return page_body(request, paged, total,
                     [schemas.analysis_summary(base, a, live) for a, live in rows])


@router.get("/analyses/{name}")
def show(request: Request, name: str = Path(pattern=NAME),
         include_yanked: bool = Query(False), principal=Depends(who),
         s=Depends(get_session)) -> dict:
    analysis = crud.get_analysis(s, principal, name)
    versions = [v for v in analysis.versions if include_yanked or not v.yanked]
    return schemas.analysis_json(base_url(request), analysis, versions)
