"""Sign-in throttling per account and per client address, with a growing delay.

State lives in the store (`login_failures`), so every web process and worker shares it. An
attempt is written (and committed) before its password is checked, so attempts running in
parallel count against each other; a success deletes the account's rows.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.model import LoginFailure, utcnow

WINDOW = dt.timedelta(minutes=15)
ACCOUNT_FREE = 5  # failures per account in the window before a delay applies
ADDRESS_FREE = 20  # per address: higher, as one address may be a whole office behind NAT
FIRST_DELAY = dt.timedelta(seconds=30)
MAX_DELAY = dt.timedelta(minutes=15)
KEEP = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Refusal:
    """A sign-in refused for now: what was throttled and how long until the next try."""

    what: str  # "account" | "address"
    retry_after: int  # seconds

    @property
    def message(self) -> str:
        """The plain sentence shown to the person."""
        minutes = math.ceil(self.retry_after / 60)
        wait = f"{self.retry_after} seconds" if self.retry_after < 120 else f"{minutes} minutes"
        who = "this account" if self.what == "account" else "this address"
        return f"too many failed sign-ins for {who}; try again in {wait}"


def _delay(failures: int, free: int) -> dt.timedelta:
    """No delay up to `free` failures, then 30 s doubling with each one, at most 15 minutes."""
    if failures < free:
        return dt.timedelta(0)
    doubled: dt.timedelta = FIRST_DELAY * (2 ** min(failures - free, 10))
    return min(doubled, MAX_DELAY)


def _check(session: Session, column: InstrumentedAttribute[str], value: str, free: int,
           now: dt.datetime) -> int:
    count, last = session.execute(
        select(func.count(LoginFailure.id), func.max(LoginFailure.at))
        .where(column == value, LoginFailure.at > now - WINDOW)).one()
    if not count or last is None:
        return 0
    wait = last + _delay(count, free) - now
    return max(0, math.ceil(wait.total_seconds()))


def refused(session: Session, account: str, address: str,
            now: dt.datetime | None = None) -> Refusal | None:
    """Whether a sign-in for `account` from `address` must wait, and how long."""
    now = now or utcnow()
    for what, column, value, free in (("account", LoginFailure.account, account, ACCOUNT_FREE),
                                      ("address", LoginFailure.address, address, ADDRESS_FREE)):
        wait = _check(session, column, value, free, now)
        if wait > 0:
            return Refusal(what, wait)
    return None


def record_attempt(session: Session, account: str, address: str) -> int:
    """Note an attempt as failed until it succeeds (the caller commits); returns its row id."""
    now = utcnow()
    session.execute(delete(LoginFailure).where(LoginFailure.at < now - KEEP))
    row = LoginFailure(at=now, account=account[:254], address=address[:64])
    session.add(row)
    session.flush()
    return row.id


def succeeded(session: Session, account: str) -> None:
    """A correct password: the account's failures are forgiven."""
    session.execute(delete(LoginFailure).where(LoginFailure.account == account[:254]))
