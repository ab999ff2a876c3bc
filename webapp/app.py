"""The FastAPI application: pages for people, the same actions as JSON under /api/."""

from __future__ import annotations

import urllib.parse

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import ConfigError, LearnloopError, NotFoundError
from core.secrets import redact, remember_store
from core.store import open_store
from webapp.bodylimit import LimitBody
from webapp.deps import CsrfFailed, Forbidden, NotAuthenticated
from webapp.nul import RejectNul
from webapp.routes import admin, api, auth, checklists, dashboards, people, review
from webapp.views import HERE, render

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _problem(request: Request, status: int, message: str) -> Response:
    message = redact(message)  # a tool's error may echo a credential
    if _is_api(request):
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    return render(request, "error.html", status_code=status, status=status, message=message)


def create_app(engine: Engine | None = None) -> FastAPI:
    """The web app over `engine` (default: the configured store, migrated)."""
    app = FastAPI(title="learnloop", version="0.1.0",
                  description="Plans vs actuals, learned and written back into your tools. "
                              "Authenticate with `Authorization: Bearer <API token>`.",
                  docs_url="/api/docs", redoc_url=None, openapi_url="/openapi.json")
    app.state.engine = engine if engine is not None else open_store()
    remember_store(app.state.engine)  # what the store's connections hold is never shown
    app.add_middleware(RejectNul)
    app.add_middleware(LimitBody)  # outside RejectNul, which reads the whole body
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (auth, dashboards, review, checklists, admin, people):
        app.include_router(module.router, include_in_schema=False)
    app.include_router(api.router)
    app.include_router(checklists.api)
    app.include_router(people.api)

    @app.middleware("http")
    async def headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if _is_api(request):
            return _problem(request, 401, "sign in: send `Authorization: Bearer <API token>`")
        target = urllib.parse.quote(request.url.path)
        return RedirectResponse(f"/login?next={target}", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return _problem(request, 403, exc.message)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        return _problem(request, 403, "the form expired or came from another site; "
                                      "reload the page and try again")

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> Response:
        return _problem(request, 404, str(exc))

    @app.exception_handler(ConfigError)
    async def bad_config(request: Request, exc: ConfigError) -> Response:
        return _problem(request, 422, str(exc))

    @app.exception_handler(LearnloopError)
    async def user_error(request: Request, exc: LearnloopError) -> Response:
        return _problem(request, 409, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _problem(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "input"
        return _problem(request, 422, f"{where}: {first.get('msg', 'invalid')}")

    return app
