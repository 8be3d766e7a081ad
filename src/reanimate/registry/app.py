"""The registry application: the JSON API under /api/v1, the web pages at /, OpenAPI at /docs;
`serve` runs it on uvicorn (migrations first; SIGTERM finishes the requests in flight)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from reanimate import __version__
from reanimate.registry import db
from reanimate.registry.api import errors
from reanimate.registry.api.routes import router as api_router
from reanimate.registry.blobs import BlobStore

log = logging.getLogger("reanimate.registry")
GRACE_S = 30


def create_app(settings) -> FastAPI:
    app = FastAPI(title="reanimate registry", version=__version__,
                  description="Preserved HEP analyses as immutable, content-addressed bundle "
                              "versions, and reinterpretation campaigns run against them "
                              "(docs/registry.md).")
    app.state.settings = settings
    app.state.blobs = BlobStore(settings)
    errors.install(app)
    app.include_router(api_router)
    from reanimate.registry.web import router as web_router  # jinja2: only in the server

    app.include_router(web_router)
    return app


def prepare(settings, migrate: bool = True) -> None:
    """The store's folders, the database at the newest schema, stale uploads removed."""
    for folder in (settings.blobs, settings.tmp, settings.work):
        folder.mkdir(parents=True, exist_ok=True)
    if migrate:
        db.migrate(settings.database_url)
    else:
        db.require_current(settings.database_url)
    removed = BlobStore(settings).sweep()
    if removed:
        log.info("removed %d stale upload(s) from %s", removed, settings.tmp)


def serve(settings, host: str = "127.0.0.1", port: int = 8000, migrate: bool = True,
          say=None) -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    prepare(settings, migrate)
    if say:
        say(f"registry at http://{host}:{port} (store {settings.store}, database "
            f"{settings.dialect})")
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="info",
                            timeout_graceful_shutdown=GRACE_S, access_log=False)
    uvicorn.Server(config).run()
