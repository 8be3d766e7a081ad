"""Every error is one JSON body `{"error": "one line", "status": CODE}`, plus `"problems"` where a
validator found several. User errors (ReanimateError) are 4xx; anything else is a bug: 500,
logged with its traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from reanimate.errors import ReanimateError, SpecError

log = logging.getLogger("reanimate.registry")


class ApiError(Exception):
    def __init__(self, status: int, message: str, problems: list[str] | None = None,
                 **extra) -> None:
        super().__init__(message)
        self.status, self.message, self.problems, self.extra = status, message, problems, extra


def one_line(text: str) -> str:
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def body(status: int, message: str, problems: list[str] | None = None, **extra) -> JSONResponse:
    content = {"error": one_line(message) or "error", "status": status, **extra}
    if problems:
        content["problems"] = [str(p) for p in problems]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(content, status_code=status, headers=headers)


def _location(loc) -> str:
    return ".".join(str(part) for part in loc)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_request: Request, exc: ApiError):
        return body(exc.status, exc.message, exc.problems, **exc.extra)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException):
        return body(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        problems = [f"{_location(e.get('loc', ()))}: {e.get('msg', 'invalid')}"
                    for e in exc.errors()]
        return body(422, f"invalid request: {problems[0] if problems else 'invalid'}", problems)

    @app.exception_handler(SpecError)
    async def _spec(_request: Request, exc: SpecError):
        return body(422, f"{len(exc.problems)} problem(s) in the submission", exc.problems)

    @app.exception_handler(ReanimateError)
    async def _user(_request: Request, exc: ReanimateError):
        return body(getattr(exc, "status", 422), str(exc))

    @app.exception_handler(OperationalError)
    async def _database(request: Request, exc: OperationalError):
        log.error("database error on %s %s: %s", request.method, request.url.path, exc.orig)
        return body(503, "the registry database is unavailable; try again")

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return body(500, f"internal error: {type(exc).__name__}")
