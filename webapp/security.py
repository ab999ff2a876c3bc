"""Passwords (argon2id), browser sessions, API tokens and CSRF tokens, stored only as hashes."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import ConfigError
from core.model import ROLES, ApiToken, User, WebSession, utcnow
from webapp import services

SESSION_COOKIE = "learnloop_session"
SESSION_DAYS = 14
TOKEN_PREFIX = "ll_"  # noqa: S105 - a visible prefix, not a secret
MIN_PASSWORD = 10

_hasher = PasswordHasher()
# Verifying against this keeps the time of "unknown email" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("not a real password, only here to spend the same time")


def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return _hasher.hash(password)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_new_user(email: str, password: str, role: str) -> str:
    """The normalised email of a user about to be created.

    Raises:
        ConfigError: naming what is wrong with the email, password or role.
    """
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or email.startswith("@") or email.endswith("@"):
        raise ConfigError(f"{email!r} is not an email address")
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password needs at least {MIN_PASSWORD} characters")
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    return email


def create_user(session: Session, email: str, password: str, role: str, name: str = "") -> User:
    """Add a user.

    Raises:
        ConfigError: for a bad email, short password, unknown role or an email already used.
    """
    email = check_new_user(email, password, role)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise ConfigError(f"a user with the email {email} already exists")
    user = User(email=email, name=name.strip(), role=role, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user


def create_first_admin(session: Session, email: str, password: str, name: str = "",
                       via: str = "") -> User:
    """The first admin, allowed only while nobody exists (then admins add people).

    Raises:
        ConfigError: when users exist already, or for a bad email or password.
    """
    if has_users(session):
        raise ConfigError("there are users already: admins add people on /admin/users")
    user = create_user(session, email, password, "admin", name)
    services.log(session, user, "created the first admin", "user", user.id, via=via)
    return user


def has_users(session: Session) -> bool:
    """Whether anyone has been created yet (before that, the first-run page is open)."""
    return bool(session.scalar(select(func.count(User.id))))


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this email and password, else None (same time either way)."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


def start_session(session: Session, user: User) -> str:
    """A new browser session for `user`; returns the cookie value (never stored)."""
    token = secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=_digest(token), user_id=user.id,
                           csrf_token=secrets.token_urlsafe(24),
                           expires_at=utcnow() + dt.timedelta(days=SESSION_DAYS)))
    session.flush()
    return token


def resolve_session(session: Session, token: str) -> tuple[User, WebSession] | None:
    """The user and session behind a cookie value, if it is live."""
    ws = session.scalar(select(WebSession).where(WebSession.token_hash == _digest(token)))
    if ws is None or ws.expires_at <= utcnow():
        return None
    user = session.get(User, ws.user_id)
    if user is None or not user.active:
        return None
    return user, ws


def end_session(session: Session, token: str) -> None:
    """Sign a browser out: its session row is deleted."""
    ws = session.scalar(select(WebSession).where(WebSession.token_hash == _digest(token)))
    if ws is not None:
        session.delete(ws)


def csrf_ok(expected: str, given: str | None) -> bool:
    """Whether a submitted CSRF token matches the session's (constant time)."""
    return bool(given) and hmac.compare_digest(expected, given or "")


def create_token(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """A new API token for `user`; the secret is returned once and stored hashed.

    Raises:
        ConfigError: for an empty or over-long name.
    """
    name = name.strip()
    if not name or len(name) > 200:
        raise ConfigError("an API token needs a name of 1 to 200 characters")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, prefix=secret[:10], token_hash=_digest(secret))
    session.add(row)
    session.flush()
    return row, secret


def resolve_token(session: Session, secret: str) -> User | None:
    """The user behind a bearer token, if it exists and is not revoked."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(secret)))
    if row is None or row.revoked_at is not None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > dt.timedelta(minutes=5):
        row.last_used_at = now
    return user
