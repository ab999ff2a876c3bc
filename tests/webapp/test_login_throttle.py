"""Sign-in throttling over HTTP: per account and per address, growing delays, logged failures."""

from __future__ import annotations

import datetime as dt
import statistics
import time

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from core.model import Activity, LoginFailure
from core.store import unit_of_work
from tests.webapp.accounts_helpers import PASSWORD, attempt, login, people
from webapp import throttle
from webapp.app import create_app

WRONG = "not the password at all"


def _age(engine: Engine, seconds: float) -> None:
    """Let time pass for the throttle: every recorded attempt moves `seconds` into the past."""
    with unit_of_work(engine) as s:
        for row in s.scalars(select(LoginFailure)):
            row.at -= dt.timedelta(seconds=seconds)


def test_failed_sign_ins_are_throttled_with_a_growing_delay_and_logged(engine: Engine) -> None:
    people(engine, "admin")
    client = TestClient(create_app(engine))
    for _ in range(throttle.ACCOUNT_FREE):
        assert login(client, "admin@example.com", WRONG) == 401
    r = attempt(client, "Admin@Example.com ")
    assert r.status_code == 429  # even the right password waits (and is not checked)
    wait = int(r.headers["retry-after"])  # 30 s, less the time the attempts themselves took
    assert 25 <= wait <= 30
    assert f"too many failed sign-ins for this account; try again in {wait} seconds" in r.text

    _age(engine, 31)
    assert login(client, "admin@example.com", WRONG) == 401  # the 6th failure: 60 s now
    r = attempt(client, "admin@example.com")
    assert r.status_code == 429 and 55 <= int(r.headers["retry-after"]) <= 60
    _age(engine, 61)
    assert login(client, "admin@example.com") == 303
    with unit_of_work(engine) as s:  # a success forgives the account's failures
        assert s.scalar(select(func.count(LoginFailure.id))) == 0
        failed = s.scalars(select(Activity).where(Activity.action == "failed sign-in")).all()
    assert len(failed) == throttle.ACCOUNT_FREE + 1
    assert {(a.actor, a.detail["address"]) for a in failed} == {("admin@example.com",
                                                                 "testclient")}
    assert all(WRONG not in str(a.detail) and PASSWORD not in str(a.detail) for a in failed)


def test_unknown_emails_are_throttled_alike_and_state_is_shared_between_processes(
        engine: Engine) -> None:
    people(engine, "admin")
    first, second = TestClient(create_app(engine)), TestClient(create_app(engine))
    for i in range(throttle.ACCOUNT_FREE):  # two app instances: like two web workers
        assert login(first if i % 2 else second, "nobody@example.com", WRONG) == 401
    assert login(first, "nobody@example.com", WRONG) == 429
    assert login(second, "nobody@example.com", WRONG) == 429
    assert login(second, "admin@example.com") == 303  # another account is not held up


def test_one_address_trying_many_accounts_is_throttled(engine: Engine) -> None:
    people(engine, "admin")
    client = TestClient(create_app(engine))
    for i in range(throttle.ADDRESS_FREE):
        assert login(client, f"guess{i}@example.com", WRONG) == 401
    r = attempt(client, "admin@example.com")
    assert r.status_code == 429 and "too many failed sign-ins for this address" in r.text


def test_unknown_and_known_emails_take_the_same_time(engine: Engine) -> None:
    people(engine, "admin")
    client = TestClient(create_app(engine))

    def timed(email: str) -> float:
        start = time.perf_counter()
        assert login(client, email, WRONG) == 401
        return time.perf_counter() - start

    known = [timed("admin@example.com") for _ in range(4)]
    unknown = [timed(f"nobody{i}@example.com") for i in range(4)]
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2.0, (known, unknown)
