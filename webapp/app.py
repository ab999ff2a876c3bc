"""The FastAPI application: pages for people, the same actions as JSON under /api/."""

from __future__ import annotations

import importlib.resources
import urllib.parse

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import ConfigError, LearnloopError, NotFoundError
from core.secrets import redact, remember_store
from core.store import open_store
from webapp import routes_process
from webapp.bodylimit import LimitBody
from webapp.deps import CsrfFailed, Forbidden, NotAuthenticated
from webapp.nul import RejectNul
from webapp.routes import admin, api, auth, checklists, dashboards, lessons, people, review
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
    return render(request, "error.html", status_code=status, status=status, message=message,
                  back=_back_link(request))


def _back_link(request: Request) -> str:
    """Where "Back" leads on an error page: the page that sent the person here, when it is one
    of this app's (a plain link: the CSP allows no `javascript:` URL), else the overview."""
    referer = urllib.parse.urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.url.netloc or not referer.path.startswith("/"):
        return "/"
    target = referer.path + (f"?{referer.query}" if referer.query else "")
    return "/" if target == request.url.path or target.startswith("//") else target


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>learnloop API</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body></html>"""


def _api_docs(app: FastAPI) -> None:
    """Swagger UI at /api/docs from the files the fastapi-offline package ships (Swagger UI 5,
    which reads OpenAPI 3.1): no CDN, and no inline script, so the app's own
    Content-Security-Policy allows it and a closed network does not matter."""
    assets = importlib.resources.files("fastapi_offline") / "static"
    app.mount("/api/docs/assets", StaticFiles(directory=str(assets)), name="api-docs-assets")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> RedirectResponse:
        return RedirectResponse("/static/favicon.svg", status_code=301)

    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE)


def create_app(engine: Engine | None = None) -> FastAPI:
    """The web app over `engine` (default: the configured store, migrated)."""
    app = FastAPI(title="learnloop", version="0.1.0",
                  description="Plans vs actuals, learned and written back into your tools. "
                              "Authenticate with `Authorization: Bearer <API token>`.",
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.state.engine = engine if engine is not None else open_store()
    remember_store(app.state.engine)  # what the store's connections hold is never shown
    app.add_middleware(RejectNul)
    app.add_middleware(LimitBody)  # outside RejectNul, which reads the whole body
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    _api_docs(app)
    for module in (auth, dashboards, review, checklists, admin, people, routes_process, lessons):
        app.include_router(module.router, include_in_schema=False)
    app.include_router(api.router)
    app.include_router(checklists.api)
    app.include_router(people.api)
    app.include_router(routes_process.api)
    app.include_router(lessons.api)

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
