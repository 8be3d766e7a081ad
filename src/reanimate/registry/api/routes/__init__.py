"""The API routes, one module per resource; `router` holds them all under /api/v1."""

from fastapi import APIRouter

from reanimate.registry.api.routes import analyses, blobs, campaigns, health, tokens, versions

router = APIRouter(prefix="/api/v1")
for module in (health, tokens, analyses, versions, blobs, campaigns):
    router.include_router(module.router)
