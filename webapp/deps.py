"""Request dependencies: the store session, the signed-in user, role checks and CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from core.model import User
from webapp import security

RANK = {"viewer": 0, "template_owner": 1, "admin": 2}
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotAuthenticated(Exception):
    """No valid session cookie or bearer token: pages redirect to /login, the API says 401."""


class Forbidden(Exception):
    """Signed in, but the role does not allow this."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CsrfFailed(Exception):
    """A cookie-authenticated change arrived without the page's CSRF token."""


def get_session(request: Request) -> Iterator[Session]:
    """One store session per request; handlers that change things commit explicitly."""
    # Closing (not rolling back) leaves loaded objects readable for an error page rendered
    # after the request's session ended.
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def current_user(request: Request, session: SessionDep) -> User:
    """The user behind the bearer token or the session cookie.

    Raises:
        NotAuthenticated: when neither is valid.
        CsrfFailed: for a cookie-authenticated change without the CSRF token.
    """
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        user = security.resolve_token(session, header[7:].strip())
        if user is None:
            raise NotAuthenticated
        session.commit()
        request.state.user, request.state.csrf = user, ""
        return user
    cookie = request.cookies.get(security.SESSION_COOKIE)
    found = security.resolve_session(session, cookie) if cookie else None
    if found is None:
        raise NotAuthenticated
    user, web_session = found
    request.state.user, request.state.csrf = user, web_session.csrf_token
    if request.method in UNSAFE:
        given = request.headers.get("x-csrf-token")
        if given is None and "form" in request.headers.get("content-type", ""):
            given = str((await request.form()).get("csrf_token") or "")
        if not security.csrf_ok(web_session.csrf_token, given):
            raise CsrfFailed
    return user


def _require(role: str):  # type: ignore[no-untyped-def]
    def check(user: Annotated[User, Depends(current_user)]) -> User:
        if RANK.get(user.role, -1) < RANK[role]:
            raise Forbidden(f"this needs the {role.replace('_', ' ')} role; "
                            f"you are signed in as {user.role.replace('_', ' ')}")
        return user
    return check


CurrentUser = Annotated[User, Depends(current_user)]
CurrentTemplateOwner = Annotated[User, Depends(_require("template_owner"))]
CurrentAdmin = Annotated[User, Depends(_require("admin"))]
