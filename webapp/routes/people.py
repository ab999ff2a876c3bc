"""People: the admin page and the JSON API to add, disable, re-enable, re-role and reset users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import ConfigError
from core.model import ROLES, User
from webapp import people, security, services
from webapp import schemas as s
from webapp.deps import CurrentAdmin, SessionDep
from webapp.routes.params import RowId
from webapp.views import redirect, render

router = APIRouter(prefix="/admin/users")
api = APIRouter(prefix="/api/users", tags=["admin"])
ACTION = Annotated[str, Path(pattern="^(" + "|".join(people.ACTIONS) + ")$")]


def _page(request: Request, session: Session, status: int = 200, **context: object) -> Response:
    rows = session.scalars(select(User).order_by(User.email)).all()
    return render(request, "users.html", status_code=status, users=rows, roles=ROLES, **context)


@router.get("", response_class=HTMLResponse)
def users(request: Request, session: SessionDep, admin: CurrentAdmin) -> Response:
    return _page(request, session)


@router.post("")
def add_user(request: Request, session: SessionDep, admin: CurrentAdmin,
             email: Annotated[str, Form(max_length=254)],
             password: Annotated[str, Form(max_length=1000)],
             role: Annotated[str, Form(max_length=20)],
             name: Annotated[str, Form(max_length=200)] = "") -> Response:
    try:
        user = security.create_user(session, email, password, role, name)
    except ConfigError as exc:
        session.rollback()
        return redirect(request, "/admin/users", err=str(exc))
    services.log(session, admin, "added a user", "user", user.id, email=user.email, role=role)
    session.commit()
    return redirect(request, "/admin/users", msg=f"added {user.email}")


@router.post("/{user_id}/{action}")
def act(request: Request, session: SessionDep, admin: CurrentAdmin, user_id: RowId,
        action: ACTION, role: Annotated[str, Form(max_length=20)] = "",
        password: Annotated[str, Form(max_length=1000)] = "") -> Response:
    """disable | enable | role | password (set by the admin) | reset (shown once) | revoke."""
    user = people.get(session, user_id)
    try:
        if action == "reset":
            secret = people.reset_password(session, admin, user)
            session.commit()
            return _page(request, session, new_password=(user.email, secret))
        message = {
            "disable": lambda: people.disable(session, admin, user),
            "enable": lambda: people.enable(session, admin, user),
            "role": lambda: people.set_role(session, admin, user, role),
            "password": lambda: people.set_password(session, admin, user, password),
            "revoke": lambda: people.revoke(session, admin, user),
        }[action]()
    except ConfigError as exc:
        session.rollback()
        return redirect(request, "/admin/users", err=str(exc))
    session.commit()
    return redirect(request, "/admin/users", msg=message)


@api.get("")
def list_users(session: SessionDep, admin: CurrentAdmin) -> list[s.UserPublic]:
    """Every person, with their role and whether they may sign in."""
    rows = session.scalars(select(User).order_by(User.email)).all()
    return [s.UserPublic.model_validate(u) for u in rows]


@api.post("", status_code=201)
def create_user(session: SessionDep, admin: CurrentAdmin, body: s.UserCreate) -> s.UserPublic:
    """Add a person with a role."""
    user = security.create_user(session, body.email, body.password, body.role, body.name)
    services.log(session, admin, "added a user", "user", user.id, email=user.email,
                 role=user.role)
    session.commit()
    return s.UserPublic.model_validate(user)


@api.patch("/{user_id}")
def update_user(session: SessionDep, admin: CurrentAdmin, user_id: RowId,
                body: s.UserUpdate) -> s.UserUpdated:
    """Change a person's role, disable or re-enable them, or set their password.

    Disabling ends their sessions and revokes their tokens at once; the last active admin
    cannot be disabled or demoted.
    """
    user = people.get(session, user_id)
    done: list[str] = []
    try:
        if body.password is not None:
            done.append(people.set_password(session, admin, user, body.password))
        if body.role is not None:
            done.append(people.set_role(session, admin, user, body.role))
        if body.active is True:
            done.append(people.enable(session, admin, user))
        elif body.active is False:
            done.append(people.disable(session, admin, user))
    except ConfigError:
        session.rollback()
        raise
    session.commit()
    return s.UserUpdated(**s.UserPublic.model_validate(user).model_dump(),
                         message="; ".join(done) or "nothing to change")


@api.post("/{user_id}/password-reset")
def reset_password(session: SessionDep, admin: CurrentAdmin,
                   user_id: RowId) -> s.PasswordReset:
    """A new random password for the person, in this response only; their sessions end."""
    user = people.get(session, user_id)
    secret = people.reset_password(session, admin, user)
    session.commit()
    return s.PasswordReset(id=user.id, email=user.email, password=secret)


@api.post("/{user_id}/revoke")
def revoke(session: SessionDep, admin: CurrentAdmin, user_id: RowId) -> s.ActionResult:
    """End every session of another person and revoke their API tokens."""
    message = people.revoke(session, admin, people.get(session, user_id))
    session.commit()
    return s.ActionResult(message=message)
