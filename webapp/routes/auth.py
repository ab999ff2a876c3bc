"""Signing in (throttled) and out, the first-run page, and your API tokens."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import ConfigError
from core.model import ApiToken, User, utcnow
from webapp import security, services, throttle
from webapp.deps import CurrentUser, SessionDep
from webapp.routes.params import RowId
from webapp.views import redirect, render

router = APIRouter()
LOGIN_CSRF = "learnloop_login_csrf"


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect would let a phishing link borrow our login."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _anonymous_form(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    """A form shown before sign-in, with a fresh double-submit CSRF token."""
    token = secrets.token_urlsafe(16)
    page = render(request, name, status_code=status, login_csrf=token, **context)
    page.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict",
                    secure=request.url.scheme == "https")
    return page


def _login_page(request: Request, error: str | None = None, status: int = 200,
                next: str | None = None) -> Response:
    return _anonymous_form(request, "login.html", status, error=error,
                           next=_safe_next(next or request.query_params.get("next")))


def _signed_in(request: Request, session: Session, user: User, target: str) -> Response:
    """Start a browser session for `user` and send them to `target`."""
    token = security.start_session(session, user)
    session.commit()
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(security.SESSION_COOKIE, token, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https",
                        max_age=security.SESSION_DAYS * 86400)
    response.delete_cookie(LOGIN_CSRF)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, session: SessionDep) -> Response:
    if not security.has_users(session):
        return RedirectResponse("/setup", status_code=303)
    return _login_page(request)


@router.post("/login")
def login(request: Request, session: SessionDep, email: Annotated[str, Form()],
          password: Annotated[str, Form()], csrf_token: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/") -> Response:
    if not security.csrf_ok(request.cookies.get(LOGIN_CSRF, ""), csrf_token):
        return _login_page(request, "the form expired; please try again", 403, next)
    address = request.client.host if request.client else "unknown"
    user = security.sign_in(session, email, password, address)
    if isinstance(user, throttle.Refusal):
        page = _login_page(request, user.message, 429, next)
        page.headers["Retry-After"] = str(user.retry_after)
        return page
    if user is None:
        return _login_page(request, "wrong email or password", 401, next)
    services.log(session, user, "signed in", "user", user.id)
    return _signed_in(request, session, user, _safe_next(next))


@router.post("/logout")
def logout(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    security.end_session(session, request.cookies.get(security.SESSION_COOKIE, ""))
    session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(security.SESSION_COOKIE)
    return response


@router.get("/setup", response_class=HTMLResponse)
def setup_form(request: Request, session: SessionDep) -> Response:
    if security.has_users(session):
        return RedirectResponse("/login", status_code=303)
    return _anonymous_form(request, "setup.html")


def _already_set_up(request: Request) -> Response:
    return render(request, "error.html", status_code=409, status=409,
                  message="learnloop is already set up: sign in on /login (admins add people)")


@router.post("/setup")
def setup(request: Request, session: SessionDep, email: Annotated[str, Form()],
          password: Annotated[str, Form()], name: Annotated[str, Form()] = "",
          csrf_token: Annotated[str, Form()] = "") -> Response:
    """The first admin; the page closes for good once anyone exists (exactly one wins)."""
    if security.has_users(session):
        return _already_set_up(request)
    if not security.csrf_ok(request.cookies.get(LOGIN_CSRF, ""), csrf_token):
        return _anonymous_form(request, "setup.html", 403,
                               error="the form expired; please try again")
    try:
        user = security.create_first_admin(session, email, password, name, via="setup page")
    except security.AlreadySetUp:
        session.rollback()
        return _already_set_up(request)
    except ConfigError as exc:
        session.rollback()
        return _anonymous_form(request, "setup.html", 422, error=str(exc))
    return _signed_in(request, session, user, "/admin/connections")


@router.get("/account/tokens", response_class=HTMLResponse)
def tokens(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                           .order_by(ApiToken.id.desc())).all()
    return render(request, "tokens.html", tokens=rows, new_token=None)


@router.post("/account/tokens", response_class=HTMLResponse)
def new_token(request: Request, session: SessionDep, user: CurrentUser,
              name: Annotated[str, Form()]) -> Response:
    row, secret = security.create_token(session, user, name)
    services.log(session, user, "created an API token", "api_token", row.id, name=row.name)
    session.commit()
    rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                           .order_by(ApiToken.id.desc())).all()
    return render(request, "tokens.html", tokens=rows, new_token=secret)


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(request: Request, session: SessionDep, user: CurrentUser,
                 token_id: RowId) -> Response:
    row = session.get(ApiToken, token_id)
    if row is not None and row.user_id == user.id and row.revoked_at is None:
        row.revoked_at = utcnow()
        services.log(session, user, "revoked an API token", "api_token", row.id)
        session.commit()
    return redirect(request, "/account/tokens", msg="token revoked")
