"""After the secret key changes, re-entering a connection's secrets repairs it, data kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from connectors import runtime
from core.model import Item
from core.store import unit_of_work
from tests.connectors.jira.harness import JiraHarness
from tests.webapp.accounts_helpers import bearer, form_token, people, signed_in
from webapp.app import create_app
from webapp.cli import main


def _synced_jira(engine: Engine, jira: JiraHarness) -> int:
    api, headers = TestClient(create_app(engine)), bearer(engine, "admin@example.com")
    r = api.post("/api/connections", headers=headers, json={
        "kind": "jira", "name": "pay", "config": jira.config()})
    assert r.status_code == 201, r.text
    conn_id: int = r.json()["id"]
    assert runtime.sync(engine, "pay").created == 20
    return conn_id


def _items(engine: Engine) -> int:
    with unit_of_work(engine) as s:
        return s.scalar(select(func.count(Item.id))) or 0


def test_re_entering_the_token_on_the_form_repairs_the_connection(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    people(engine, "admin")
    jira = JiraHarness(n=20)
    conn_id = _synced_jira(engine, jira)
    monkeypatch.setenv("LEARNLOOP_SECRET_KEY", "the key after a restore from backup")
    admin = signed_in(engine, "admin@example.com")
    page = admin.get(f"/admin/connections/{conn_id}")
    assert "cannot be decrypted with the current secret key" in page.text
    assert "re-enter api_token and save; the synced data is kept" in page.text

    plain = {k: v for k, v in jira.config().items() if k != "api_token"}
    token = form_token(page.text)
    r = admin.post(f"/admin/connections/{conn_id}/config", data={**plain, "csrf_token": token})
    assert "re-enter api_token" in r.text and "settings saved" not in r.text
    r = admin.post(f"/admin/connections/{conn_id}/config", data={
        **plain, "api_token": jira.config()["api_token"], "csrf_token": token})
    assert "settings saved" in r.text and "cannot be decrypted" not in r.text
    r = admin.post(f"/admin/connections/{conn_id}/test", data={"csrf_token": token})
    assert "Connection works" in r.text, r.text
    assert _items(engine) == 20


def test_connections_set_secret_repairs_it_from_the_command_line(
        engine: Engine, use_store: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    people(engine, "admin")
    jira = JiraHarness(n=20)
    _synced_jira(engine, jira)
    monkeypatch.setenv("LEARNLOOP_SECRET_KEY", "another key altogether")
    assert main(["connections", "test", "pay"]) == 1
    assert "cannot be decrypted" in capsys.readouterr().err

    secret = tmp_path / "token.txt"
    secret.write_text(jira.config()["api_token"] + "\n")
    assert main(["connections", "set-secret", "pay", "email", "--from-file", str(secret)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'email' is not a secret field of jira" in err
    assert main(["connections", "set-secret", "pay", "api_token", "--from-file",
                 str(secret)]) == 0
    out = capsys.readouterr()
    assert "api_token saved (encrypted)" in out.out and jira.config()["api_token"] not in out.out
    assert main(["connections", "test", "pay"]) == 0
    assert _items(engine) == 20
