"""The first-run page under concurrency: exactly one first admin, the rest told it is set up."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from alembic import command
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from core.model import SetupClaim, User
from core.store import alembic_config, make_engine, migrate, unit_of_work
from tests.webapp.accounts_helpers import PASSWORD
from tests.webapp.server import LiveServer
from webapp import security

RACERS = 8


def test_eight_simultaneous_setup_posts_make_exactly_one_admin(engine: Engine) -> None:
    with LiveServer(engine) as url:
        clients = [httpx.Client(base_url=url) for _ in range(RACERS)]
        tokens = []
        for c in clients:
            found = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/setup").text)
            assert found
            tokens.append(found.group(1))
        start = threading.Barrier(RACERS)

        def post(i: int) -> httpx.Response:
            start.wait()
            return clients[i].post("/setup", data={
                "email": f"admin{i}@example.com", "password": PASSWORD,
                "csrf_token": tokens[i]})

        with ThreadPoolExecutor(RACERS) as pool:
            answers = list(pool.map(post, range(RACERS)))
        for c in clients:
            c.close()
    won = [r for r in answers if r.status_code == 303]
    assert len(won) == 1 and won[0].headers["location"] == "/admin/connections"
    lost = [r for r in answers if r.status_code != 303]
    assert {r.status_code for r in lost} == {409}
    assert all("learnloop is already set up" in r.text for r in lost)
    assert not any("Traceback" in r.text or "Internal" in r.text for r in answers)
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count(User.id))) == 1
        claim = s.get_one(SetupClaim, 1)
        assert s.get_one(User, claim.user_id).role == "admin"


def test_concurrent_first_admin_calls_make_exactly_one(engine: Engine) -> None:
    start = threading.Barrier(RACERS)

    def create(i: int) -> str:
        start.wait()
        try:
            with unit_of_work(engine) as s:
                security.create_first_admin(s, f"first{i}@example.com", PASSWORD, via="test")
        except security.AlreadySetUp as exc:
            return str(exc)
        return "created"

    with ThreadPoolExecutor(RACERS) as pool:
        results = list(pool.map(create, range(RACERS)))
    assert results.count("created") == 1
    assert all(r.startswith("there are users already") for r in results if r != "created")
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count(User.id))) == 1


def test_a_store_set_up_by_the_previous_release_is_claimed_on_upgrade(
        empty_url: str) -> None:
    engine = make_engine(empty_url)
    command.upgrade(alembic_config(engine), "0006")
    with engine.begin() as c:
        for uid, email, role in ((1, "viewer@example.com", "viewer"),
                                 (2, "boss@example.com", "admin")):
            c.execute(text("INSERT INTO users (id, email, name, role, password_hash, active,"
                           " created_at) VALUES (:id, :email, '', :role, 'x', true,"
                           " '2026-01-01')"), {"id": uid, "email": email, "role": role})
    migrate(engine)
    with unit_of_work(engine) as s:
        assert s.get_one(SetupClaim, 1).user_id == 2
        assert sorted(s.scalars(select(User.email))) == ["boss@example.com",
                                                         "viewer@example.com"]
    engine.dispose()
