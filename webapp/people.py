"""What an admin does to a person (disable, enable, role, password, revoke), pages and API alike."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import ConfigError, NotFoundError
from core.model import ROLES, ApiToken, User, WebSession, utcnow
from webapp import security, services

ACTIONS = ("disable", "enable", "role", "password", "reset", "revoke")


def get(session: Session, user_id: int) -> User:
    """The user with this id.

    Raises:
        NotFoundError: when there is none.
    """
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"there is no user #{user_id}")
    return user


def _lock_admins(session: Session) -> None:
    """On PostgreSQL, two admins changing admins at once take turns (same lock order)."""
    session.execute(select(User.id).where(User.role == "admin").order_by(User.id)
                    .with_for_update()).all()


def _an_admin_is_left(session: Session, user: User) -> None:
    """Checked after the change, inside its write transaction (SQLite serialises writers).

    Raises:
        ConfigError: when no active admin would be left (the caller rolls back).
    """
    session.flush()
    left = session.scalar(select(func.count(User.id)).where(
        User.role == "admin", User.active.is_(True))) or 0
    if not left:
        raise ConfigError(f"{user.email} is the last active admin: make someone else an admin "
                          "first")


def revoke_access(session: Session, user: User) -> tuple[int, int]:
    """End every browser session of `user` and revoke their API tokens, at once.

    Returns:
        How many sessions ended and how many tokens were revoked.
    """
    ended = _end_sessions(session, user)
    tokens = session.scalars(select(ApiToken).where(
        ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))).all()
    for token in tokens:
        token.revoked_at = utcnow()
    session.flush()
    return ended, len(tokens)


def _end_sessions(session: Session, user: User) -> int:
    rows = session.scalars(select(WebSession).where(WebSession.user_id == user.id)).all()
    for row in rows:
        session.delete(row)
    session.flush()
    return len(rows)


def disable(session: Session, admin: User, user: User) -> str:
    """Disable a person: they cannot sign in, and their sessions and tokens stop at once.

    Raises:
        ConfigError: for your own account or the last active admin.
    """
    if user.id == admin.id:
        raise ConfigError("you cannot disable your own account; another admin can")
    if not user.active:
        return f"{user.email} is already disabled"
    _lock_admins(session)
    user.active = False
    _an_admin_is_left(session, user)
    ended, revoked = revoke_access(session, user)
    services.log(session, admin, "disabled a user", "user", user.id, email=user.email,
                 sessions_ended=ended, tokens_revoked=revoked)
    return f"{user.email} disabled: {ended} sessions ended, {revoked} API tokens revoked"


def enable(session: Session, admin: User, user: User) -> str:
    """Let a disabled person sign in again (their old sessions and tokens stay revoked)."""
    if user.active:
        return f"{user.email} is already active"
    user.active = True
    services.log(session, admin, "enabled a user", "user", user.id, email=user.email)
    return f"{user.email} enabled; they sign in with their password (old tokens stay revoked)"


def set_role(session: Session, admin: User, user: User, role: str) -> str:
    """Change a person's role.

    Raises:
        ConfigError: for an unknown role, or demoting the last active admin.
    """
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    if role == user.role:
        return f"{user.email} is already {role.replace('_', ' ')}"
    _lock_admins(session)
    old, user.role = user.role, role
    _an_admin_is_left(session, user)
    services.log(session, admin, "changed a role", "user", user.id, email=user.email,
                 old=old, new=role)
    return f"{user.email} is now {role.replace('_', ' ')}"


def set_password(session: Session, admin: User, user: User, password: str) -> str:
    """Give a person a new password chosen by the admin; their browser sessions end.

    Raises:
        ConfigError: when the password breaks the rule.
    """
    security.check_password(password)
    user.password_hash = security.hash_password(password)
    ended = _end_sessions(session, user)
    services.log(session, admin, "set a password", "user", user.id, email=user.email,
                 sessions_ended=ended)
    return f"new password set for {user.email}; their sessions ended"


def reset_password(session: Session, admin: User, user: User) -> str:
    """A new random password for a person, returned once (never stored in clear or logged)."""
    password = secrets.token_urlsafe(15)
    user.password_hash = security.hash_password(password)
    _end_sessions(session, user)
    services.log(session, admin, "reset a password", "user", user.id, email=user.email)
    return password


def revoke(session: Session, admin: User, user: User) -> str:
    """Sign another person out everywhere: sessions and API tokens.

    Raises:
        ConfigError: for your own account (sign out, and revoke tokens on /account/tokens).
    """
    if user.id == admin.id:
        raise ConfigError("you cannot revoke your own access here: sign out, and revoke your "
                          "tokens on /account/tokens")
    ended, revoked = revoke_access(session, user)
    services.log(session, admin, "revoked sessions and tokens", "user", user.id,
                 email=user.email, sessions_ended=ended, tokens_revoked=revoked)
    return f"{user.email}: {ended} sessions ended, {revoked} API tokens revoked"
