"""Offboarding over HTTP: disable, re-enable, change roles, reset passwords, revoke access."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core.model import Activity, ApiToken
from core.store import unit_of_work
from tests.webapp.accounts_helpers import PASSWORD, bearer, form_token, login, people, signed_in
from webapp.app import create_app


def _act(admin: TestClient, user_id: int, action: str, **form: str) -> str:
    """An action on the people page; returns the page it leads to."""
    token = form_token(admin.get("/admin/users").text)
    r = admin.post(f"/admin/users/{user_id}/{action}", data={"csrf_token": token, **form})
    assert r.status_code == 200, r.text
    return r.text


def _actions(engine: Engine) -> list[tuple[str, str, str | None]]:
    with unit_of_work(engine) as s:
        return [(a.actor, a.action, a.subject_id) for a in s.scalars(
            select(Activity).where(Activity.subject_type == "user",
                                   Activity.action != "signed in").order_by(Activity.id))]


def test_a_disabled_user_loses_sessions_and_tokens_at_once_and_can_be_enabled(
        engine: Engine) -> None:
    ids = people(engine, "admin", "viewer")
    admin, viewer = signed_in(engine, "admin@example.com"), signed_in(engine, "viewer@example.com")
    token = bearer(engine, "viewer@example.com")
    assert viewer.get("/items").status_code == 200
    assert viewer.get("/api/me", headers=token).status_code == 200

    page = _act(admin, ids["viewer"], "disable")
    assert "viewer@example.com disabled: 1 sessions ended, 1 API tokens revoked" in page
    assert viewer.get("/items", follow_redirects=False).headers["location"].startswith("/login")
    assert TestClient(create_app(engine)).get("/api/me", headers=token).status_code == 401
    assert login(TestClient(create_app(engine)), "viewer@example.com") == 401

    page = _act(admin, ids["viewer"], "enable")
    assert "viewer@example.com enabled" in page
    assert login(TestClient(create_app(engine)), "viewer@example.com") == 303
    assert TestClient(create_app(engine)).get("/api/me", headers=token).status_code == 401
    assert _actions(engine) == [
        ("admin@example.com", "disabled a user", str(ids["viewer"])),
        ("admin@example.com", "enabled a user", str(ids["viewer"]))]


def test_roles_change_and_the_last_active_admin_stays(engine: Engine) -> None:
    ids = people(engine, "admin", "viewer")
    admin = signed_in(engine, "admin@example.com")
    page = _act(admin, ids["admin"], "role", role="viewer")
    assert "admin@example.com is the last active admin: make someone else an admin first" in page
    page = _act(admin, ids["admin"], "disable")
    assert "you cannot disable your own account" in page
    page = _act(admin, ids["viewer"], "role", role="template_owner")
    assert "viewer@example.com is now template owner" in page

    api, headers = TestClient(create_app(engine)), bearer(engine, "admin@example.com")
    r = api.patch(f"/api/users/{ids['viewer']}", headers=headers, json={"role": "admin"})
    assert r.status_code == 200 and r.json()["role"] == "admin"
    second = bearer(engine, "viewer@example.com")  # now an admin too
    r = api.patch(f"/api/users/{ids['admin']}", headers=second, json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    r = api.patch(f"/api/users/{ids['viewer']}", headers=second, json={"role": "viewer"})
    assert r.status_code == 422
    assert r.json()["detail"] == ("viewer@example.com is the last active admin: make someone "
                                  "else an admin first")
    assert api.get("/api/me", headers=headers).status_code == 401  # the disabled admin's token
    r = api.patch(f"/api/users/{ids['admin']}", headers=second, json={"role": "nope"})
    assert r.status_code == 422
    assert api.patch("/api/users/999", headers=second, json={"active": True}).status_code == 404
    listed = {u["email"]: u for u in api.get("/api/users", headers=second).json()}
    assert listed["admin@example.com"]["active"] is False
    assert listed["viewer@example.com"]["role"] == "admin"


def test_passwords_are_reset_once_or_set_by_the_admin(engine: Engine) -> None:
    ids = people(engine, "admin", "viewer")
    admin, viewer = signed_in(engine, "admin@example.com"), signed_in(engine, "viewer@example.com")
    page = _act(admin, ids["viewer"], "reset")
    found = re.search(r'<code id="new-password">([^<]+)</code>', page)
    assert found and "not shown again" in page
    new = found.group(1)
    assert new not in admin.get("/admin/users").text  # shown once
    assert viewer.get("/items", follow_redirects=False).status_code == 303  # signed out
    assert login(TestClient(create_app(engine)), "viewer@example.com") == 401
    assert login(TestClient(create_app(engine)), "viewer@example.com", new) == 303

    page = _act(admin, ids["viewer"], "password", password="aaaaaaaaaaaa")
    assert "choose a password of at least 10 characters" in page
    page = _act(admin, ids["viewer"], "password", password="chosen by the admin, long")
    assert "new password set for viewer@example.com" in page
    assert login(TestClient(create_app(engine)), "viewer@example.com",
                 "chosen by the admin, long") == 303

    api, headers = TestClient(create_app(engine)), bearer(engine, "admin@example.com")
    r = api.post(f"/api/users/{ids['viewer']}/password-reset", headers=headers)
    assert r.status_code == 200 and r.json()["email"] == "viewer@example.com"
    assert login(TestClient(create_app(engine)), "viewer@example.com", r.json()["password"]) == 303
    with unit_of_work(engine) as s:
        details = [str(a.detail) for a in s.scalars(select(Activity))]
    assert not any(new in d or r.json()["password"] in d for d in details)
    assert [a for _, a, _ in _actions(engine)] == [
        "reset a password", "set a password", "reset a password"]


def test_an_admin_revokes_another_users_sessions_and_tokens(engine: Engine) -> None:
    ids = people(engine, "admin", "viewer")
    viewer = signed_in(engine, "viewer@example.com")
    token = bearer(engine, "viewer@example.com")
    api, headers = TestClient(create_app(engine)), bearer(engine, "admin@example.com")
    r = api.post(f"/api/users/{ids['viewer']}/revoke", headers=headers)
    assert r.status_code == 200
    assert r.json()["message"] == "viewer@example.com: 1 sessions ended, 1 API tokens revoked"
    assert viewer.get("/items", follow_redirects=False).status_code == 303
    assert api.get("/api/me", headers=token).status_code == 401
    assert login(TestClient(create_app(engine)), "viewer@example.com") == 303  # still active
    r = api.post(f"/api/users/{ids['admin']}/revoke", headers=headers)
    assert r.status_code == 422 and "your own access" in r.json()["detail"]
    with unit_of_work(engine) as s:
        assert all(t.revoked_at is not None for t in s.scalars(
            select(ApiToken).where(ApiToken.user_id == ids["viewer"])))


def test_offboarding_is_admin_only_and_csrf_protected(engine: Engine) -> None:
    ids = people(engine, "admin", "template_owner")
    owner, admin = (signed_in(engine, f"{r}@example.com") for r in ("template_owner", "admin"))
    token = form_token(owner.get("/items").text)
    r = owner.post(f"/admin/users/{ids['admin']}/disable", data={"csrf_token": token})
    assert r.status_code == 403
    api, own = TestClient(create_app(engine)), bearer(engine, "template_owner@example.com")
    assert api.patch(f"/api/users/{ids['admin']}", headers=own,
                     json={"active": False}).status_code == 403
    assert api.post(f"/api/users/{ids['admin']}/revoke", headers=own).status_code == 403
    r = admin.post(f"/admin/users/{ids['template_owner']}/disable")  # no CSRF token
    assert r.status_code == 403 and "expired" in r.text
    r = admin.patch(f"/api/users/{ids['template_owner']}", json={"active": False})
    assert r.status_code == 403  # a cookie without the X-CSRF-Token header
    r = admin.patch(f"/api/users/{ids['template_owner']}", json={"active": False},
                    headers={"X-CSRF-Token": form_token(admin.get("/admin/users").text)})
    assert r.status_code == 200 and r.json()["active"] is False
    assert owner.get("/items", follow_redirects=False).status_code == 303
    assert login(TestClient(create_app(engine)), "template_owner@example.com", PASSWORD) == 401
