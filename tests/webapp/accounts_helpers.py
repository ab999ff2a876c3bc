"""Shared steps of the account tests: people of each role, signing in through the form."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core.model import User
from core.store import unit_of_work
from webapp import security
from webapp.app import create_app

PASSWORD = "a long enough password"


def people(engine: Engine, *roles: str) -> dict[str, int]:
    """One user per role (`admin@example.com`, ...); returns their ids by role."""
    with unit_of_work(engine) as s:
        return {role: security.create_user(s, f"{role}@example.com", PASSWORD,
                                           role.rstrip("2")).id for role in roles}


def form_token(text: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert found, text[:500]
    return found.group(1)


def attempt(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    """Sign in through the form (a fresh form each time); the answer to the POST."""
    token = form_token(client.get("/login").text)
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": token}, follow_redirects=False)


def login(client: TestClient, email: str, password: str = PASSWORD) -> int:
    """Sign in through the form; returns the status of the POST (303 when it worked)."""
    return attempt(client, email, password).status_code


def signed_in(engine: Engine, email: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(create_app(engine))
    assert login(client, email, password) == 303
    return client


def bearer(engine: Engine, email: str) -> dict[str, str]:
    with unit_of_work(engine) as s:
        user = s.scalars(select(User).where(User.email == email)).one()
        _, secret = security.create_token(s, user, "test")
    return {"Authorization": f"Bearer {secret}"}
