"""The web app through HTTP: auth, roles, CSRF, tokens, admin actions and the JSON API."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core.model import Activity, Connection, Proposal
from core.store import unit_of_work
from tests.connectors.jira.harness import JiraHarness
from webapp import security, worker
from webapp.app import create_app

PASSWORD = "a long enough password"


@pytest.fixture
def app_engine(engine: Engine) -> Engine:
    with unit_of_work(engine) as s:
        for role in ("admin", "template_owner", "viewer"):
            security.create_user(s, f"{role}@example.com", PASSWORD, role)
    return engine


def _client(engine: Engine, role: str | None) -> TestClient:
    client = TestClient(create_app(engine))
    if role:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        r = client.post("/login", data={"email": f"{role}@example.com", "password": PASSWORD,
                                         "csrf_token": token.group(1)}, follow_redirects=False)
        assert r.status_code == 303, r.text
    return client


def _csrf(client: TestClient, path: str = "/account/tokens") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def _token(engine: Engine, role: str) -> dict[str, str]:
    with unit_of_work(engine) as s:
        user = s.scalars(select(security.User).where(
            security.User.email == f"{role}@example.com")).one()
        _, secret = security.create_token(s, user, "test")
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def jira() -> Iterator[JiraHarness]:
    h = JiraHarness(n=120)
    yield h


def test_api_needs_credentials_and_tokens_can_be_revoked(app_engine: Engine) -> None:
    anon = TestClient(create_app(app_engine))
    for path in ("/api/me", "/api/items", "/api/proposals", "/api/connections", "/api/audit"):
        r = anon.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
    assert anon.get("/api/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    headers = _token(app_engine, "viewer")
    assert anon.get("/api/me", headers=headers).json()["role"] == "viewer"
    created = anon.post("/api/tokens", headers=headers, json={"name": "ci"}).json()
    second = {"Authorization": f"Bearer {created['token']}"}
    assert anon.get("/api/me", headers=second).status_code == 200
    assert anon.delete(f"/api/tokens/{created['id']}", headers=second).status_code == 200
    assert anon.get("/api/me", headers=second).status_code == 401
    listed = anon.get("/api/tokens", headers=headers).json()
    assert all("token" not in t for t in listed) and len(listed) == 2


def test_roles_see_only_what_they_may(app_engine: Engine) -> None:
    viewer, owner = _client(app_engine, "viewer"), _client(app_engine, "template_owner")
    for path in ("/admin/connections", "/admin/users", "/activity"):
        assert viewer.get(path).status_code == 403, path
        assert owner.get(path).status_code == 403, path
    for path in ("/", "/items", "/findings", "/proposals", "/experiments", "/audit"):
        assert viewer.get(path).status_code == 200, path
    v, o, a = (_token(app_engine, r) for r in ("viewer", "template_owner", "admin"))
    api = TestClient(create_app(app_engine))
    assert api.get("/api/connections", headers=v).status_code == 403
    assert api.get("/api/activity", headers=o).status_code == 403
    assert api.get("/api/connections", headers=a).status_code == 200
    scores = {"self_scores": dict.fromkeys(
        ("signal_capture", "feedback_loop_integrity", "planned_vs_actual",
         "institutional_memory", "experimentation_cadence", "agent_human_loop"), 3)}
    assert api.post("/api/audit", headers=v, json=scores).status_code == 403
    r = api.post("/api/audit", headers=o, json=scores)
    assert r.status_code == 201 and r.json()["self_total"] == 18
    assert r.json()["self_maturity"] == "Learning"
    bad = api.post("/api/audit", headers=o, json={"self_scores": {"signal_capture": 9}})
    assert bad.status_code == 422 and "signal_capture" in bad.json()["detail"]


def test_forms_without_the_csrf_token_are_refused(app_engine: Engine) -> None:
    admin = _client(app_engine, "admin")
    r = admin.post("/account/tokens", data={"name": "x"})
    assert r.status_code == 403 and "expired" in r.text
    r = admin.post("/account/tokens", data={"name": "x", "csrf_token": _csrf(admin)})
    assert r.status_code == 200 and "ll_" in r.text
    r = admin.post("/admin/users", data={"email": "new@example.com", "password": PASSWORD,
                                         "role": "viewer"})
    assert r.status_code == 403
    login = TestClient(create_app(app_engine)).post(
        "/login", data={"email": "admin@example.com", "password": PASSWORD})
    assert login.status_code == 403  # the login form carries its own token too


def test_first_run_page_makes_one_admin_then_closes(engine: Engine) -> None:
    client = TestClient(create_app(engine))
    assert client.get("/login", follow_redirects=False).headers["location"] == "/setup"
    page = client.get("/setup")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post("/setup", data={"email": "me@example.com", "password": "short",
                                     "csrf_token": token.group(1)})
    assert r.status_code == 422 and "10 characters" in r.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text)  # a fresh form token
    assert token
    r = client.post("/setup", data={"email": "me@example.com", "password": PASSWORD,
                                     "csrf_token": token.group(1)})
    assert r.status_code == 200 and r.url.path == "/admin/connections"
    assert client.get("/setup", follow_redirects=False).headers["location"] == "/login"
    with unit_of_work(engine) as s:
        user = s.scalars(select(security.User)).one()
        assert user.role == "admin" and user.password_hash.startswith("$argon2id$")


def test_admin_installs_maps_and_syncs_jira_through_the_api(
        app_engine: Engine, jira: JiraHarness) -> None:
    api, a = TestClient(create_app(app_engine)), _token(app_engine, "admin")
    kinds = {k["name"]: k for k in api.get("/api/connectors", headers=a).json()}
    assert kinds["jira"]["config_schema"]["properties"]["api_token"]["format"] == "password"
    bad = api.post("/api/connections", headers=a, json={"kind": "jira", "name": "pay",
                                                          "config": {"url": jira.emu.base}})
    assert bad.status_code == 422 and "email" in bad.json()["detail"].lower()
    r = api.post("/api/connections", headers=a, json={
        "kind": "jira", "name": "pay", "config": jira.config(), "schedule": "every 30m"})
    assert r.status_code == 201, r.text
    conn = r.json()
    assert "api_token" not in conn["config"] and jira.config()["api_token"] not in r.text
    assert api.put(f"/api/connections/{conn['id']}/schedule", headers=a,
                   json={"schedule": "every sometimes"}).status_code == 422
    fields = api.get(f"/api/connections/{conn['id']}/fields", headers=a).json()
    assert any(f["id"] == "timespent" for f in fields)
    r = api.put(f"/api/connections/{conn['id']}/mapping", headers=a,
                json={"mapping": {"actual_effort": "timespent", "segments": ["issuetype"]}})
    assert r.status_code == 200 and r.json()["mapping"]["segments"] == ["issuetype"]
    r = api.post(f"/api/connections/{conn['id']}/sync", headers=a)
    assert r.status_code == 202 and r.json()["status"] == "queued", r.text
    job = r.headers["location"]
    assert job == f"/api/jobs/{r.json()['id']}" and api.get(job, headers=a).json()["stats"] \
        == {"phase": "queued"}
    again = api.post(f"/api/connections/{conn['id']}/sync", headers=a)
    assert again.json()["id"] == r.json()["id"]  # still waiting: the same job, not a second
    (ran,) = worker.run_worker(app_engine, once=True)["queued"]  # the worker's next tick
    assert ran["status"] == "ok"
    done = api.get(job, headers=a).json()
    assert done["status"] == "ok" and done["stats"]["created"] == 120
    assert done["stats"]["items"] == 120 and done["stats"]["batches"] == 2
    assert "120 new" in done["message"] and done["finished_at"] is not None
    assert api.get("/api/jobs/999", headers=a).status_code == 404
    assert api.post(f"/api/connections/{conn['id']}/explode", headers=a).status_code == 422
    items = api.get("/api/items?size=10", headers=a).json()
    assert len(items["items"]) == 10 and items["more"]
    detail = api.get(f"/api/items/{items['items'][0]['id']}", headers=a).json()
    assert any(t["kind"] == "forecast" for t in detail["timeline"])
    summary = api.get("/api/summary", headers=a).json()
    assert summary["counts"]["items"] == 120
    with unit_of_work(app_engine) as s:
        stored = s.scalars(select(Connection)).one()
        assert jira.config()["api_token"] not in (stored.secrets or "")
        actions = [x.action for x in s.scalars(select(Activity).order_by(Activity.id))]
    assert actions[:3] == ["installed a connection", "changed the field mapping",
                           "queued a sync"]


def test_template_owner_accepts_with_an_edit_and_the_decision_is_logged(
        app_engine: Engine, jira: JiraHarness) -> None:
    api, a = TestClient(create_app(app_engine)), _token(app_engine, "admin")
    conn = api.post("/api/connections", headers=a, json={
        "kind": "jira", "name": "pay", "config": jira.config()}).json()
    api.post(f"/api/connections/{conn['id']}/sync", headers=a)
    worker.run_worker(app_engine, once=True)
    pending = api.get("/api/proposals?status=pending", headers=a).json()
    assert pending, "the learning run after the sync proposes changes"
    prop = pending[0]
    number = next(k for k, v in prop["change"]["new"].items()
                  if isinstance(v, float) and not isinstance(v, bool))
    v, o = _token(app_engine, "viewer"), _token(app_engine, "template_owner")
    assert api.post(f"/api/proposals/{prop['id']}/accept", headers=v, json={}).status_code == 403
    r = api.post(f"/api/proposals/{prop['id']}/accept", headers=o,
                 json={"note": "a bit less", "params": {number: 1.25}})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted" and r.json()["decided_by"] == "template_owner@example.com"
    assert r.json()["change"]["new"][number] == 1.25
    again = api.post(f"/api/proposals/{prop['id']}/reject", headers=o, json={})
    assert again.status_code == 409 and "not pending" in again.json()["detail"]
    page = _client(app_engine, "viewer").get(f"/proposals/{prop['id']}")
    assert "a bit less" in page.text and "Accept</button>" not in page.text
    with unit_of_work(app_engine) as s:
        assert s.get(Proposal, prop["id"]).policy_version == 2  # type: ignore[union-attr]


def test_nul_characters_are_refused_not_stored(app_engine: Engine) -> None:
    api, v = TestClient(create_app(app_engine)), _token(app_engine, "viewer")
    r = api.post("/api/tokens", headers=v, json={"name": "a\u0000b"})
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    assert api.get("/api/items?q=%00", headers=v).status_code == 422
    assert api.post("/api/tokens", headers=v, json={"name": "fine"}).status_code == 201


def test_init_creates_the_first_admin_once(use_store: str, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from webapp.cli import main

    monkeypatch.setenv("LEARNLOOP_ADMIN_PASSWORD", PASSWORD)
    assert main(["init", "--admin-email", "First@Example.com"]) == 0
    assert "admin first@example.com created" in capsys.readouterr().out
    assert main(["init", "--admin-email", "second@example.com"]) == 2
    assert "there are users already" in capsys.readouterr().err
    with unit_of_work(create_app().state.engine) as s:
        users = s.scalars(select(security.User.email)).all()
    assert users == ["first@example.com"]
