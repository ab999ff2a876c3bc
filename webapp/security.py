"""Passwords (argon2id), browser sessions, API tokens and CSRF tokens, stored only as hashes."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import ConfigError
from core.model import ROLES, ApiToken, SetupClaim, User, WebSession, utcnow
from webapp import passwords, services, throttle

SESSION_COOKIE = "learnloop_session"
SESSION_DAYS = 14
TOKEN_PREFIX = "ll_"  # noqa: S105 - a visible prefix, not a secret
MIN_PASSWORD = passwords.MIN_LENGTH

_hasher = PasswordHasher()
# Verifying against this keeps the time of "unknown email" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("not a real password, only here to spend the same time")


class AlreadySetUp(ConfigError):
    """The first admin exists: the first-run page and `init --admin-email` are closed."""

    def __init__(self) -> None:
        super().__init__("there are users already: learnloop is set up, and admins add people "
                         "on /admin/users")


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
    check_password(password)
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    return email


def check_password(password: str) -> None:
    """Apply the password rule.

    Raises:
        ConfigError: in one sentence: at least 10 characters, not blank, repeated, a run or
            a common password.
    """
    why = passwords.weakness(password)
    if why is not None:
        raise ConfigError(why)


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

    The one `setup_claim` row is inserted in the same transaction: of several first runs at
    once, the database lets exactly one commit (on PostgreSQL the others wait for it and then
    fail on the key; SQLite serialises the writers). After AlreadySetUp the caller rolls back.

    Raises:
        AlreadySetUp: when users exist already (or another first run just won).
        ConfigError: for a bad email or password.
    """
    if has_users(session):
        raise AlreadySetUp
    try:
        user = create_user(session, email, password, "admin", name)
        session.add(SetupClaim(id=1, user_id=user.id))
        session.flush()
    except IntegrityError:  # the claim (or the winner's email) is taken: another run won
        raise AlreadySetUp from None
    except ConfigError:
        if has_users(session):  # e.g. "already exists" for the winner's email
            raise AlreadySetUp from None
        raise
    services.log(session, user, "created the first admin", "user", user.id, via=via)
    return user


def has_users(session: Session) -> bool:
    """Whether anyone has been created yet (before that, the first-run page is open)."""
    return bool(session.scalar(select(func.count(User.id))))


def sign_in(session: Session, email: str, password: str,
            address: str) -> User | throttle.Refusal | None:
    """Check a sign-in under the throttle: the user, a refusal to wait, or None when wrong.

    The attempt is committed as a failure before the password is checked (so parallel tries
    count), forgiven on success; a failure is logged with the email and address, never the
    password. Unknown and known emails take the same path and time.
    """
    account = email.strip().lower()[:254]
    refusal = throttle.refused(session, account, address)
    if refusal is not None:
        return refusal
    throttle.record_attempt(session, account, address)
    session.commit()
    user = authenticate(session, account, password)
    if user is None:
        services.log(session, account or "(no email)", "failed sign-in", "sign-in", None,
                     email=account, address=address)
        session.commit()
        return None
    throttle.succeeded(session, account)
    return user


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
