"""A tool that echoes the request's credentials in its errors: no secret, in any encoding,
reaches any output, page, API answer, table or log line."""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core.model import Base, Connection
from core.store import open_store, unit_of_work
from tests.connectors.jira.harness import JiraHarness
from webapp import jobs, security
from webapp.app import create_app
from webapp.cli import main

EMAIL = "bot@example.com"
TOKEN = 'Zq9/tok+en="leak"& 1234'  # a token whose every encoding differs from the others
PASSWORD = "a long enough password"
ROOT = Path(__file__).resolve().parents[2]


def forms() -> dict[str, str]:
    """Every form of the token a client sends or a tool echoes."""
    basic = f"{EMAIL}:{TOKEN}".encode()
    found = {"token": TOKEN, "url-encoded": quote(TOKEN, safe=""), "form-encoded":
             quote_plus(TOKEN), "json-escaped": json.dumps(TOKEN)[1:-1],
             "html-escaped": html.escape(TOKEN),
             "base64 of email:token": base64.b64encode(basic).decode(),
             "base64url of email:token": base64.urlsafe_b64encode(basic).decode().rstrip("="),
             "base64 of the token": base64.b64encode(TOKEN.encode()).decode().rstrip("=")}
    return found


class Seen:
    """Everything shown or written, scanned at the end."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, text: str) -> str:
        self.texts.append((where, text))
        return text

    def leaks(self) -> list[str]:
        return [f"{name} in {where}: ...{text[max(0, text.find(form) - 60):][:140]!r}"
                for where, text in self.texts for name, form in forms().items() if form in text]


@pytest.fixture
def jira() -> Iterator[JiraHarness]:
    h = JiraHarness(n=40)
    yield h
    h.emu.echo_status, h.emu.echo_server_info = 0, False
    h.emu.echo_methods.clear()


def _cli(seen: Seen, capsys: pytest.CaptureFixture[str], *args: str) -> int:
    code = main(list(args))
    got = capsys.readouterr()
    seen.add(f"`learnloop {' '.join(args)}` stdout", got.out)
    seen.add(f"`learnloop {' '.join(args)}` stderr", got.err)
    assert "Traceback" not in got.err
    return code


def _admin(engine: Engine) -> tuple[TestClient, dict[str, str]]:
    with unit_of_work(engine) as s:
        user = security.create_user(s, "admin@example.com", PASSWORD, "admin")
        _, secret = security.create_token(s, user, "test")
    client = TestClient(create_app(engine))
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    r = client.post("/login", data={"email": "admin@example.com", "password": PASSWORD,
                                     "csrf_token": csrf.group(1)}, follow_redirects=False)
    assert r.status_code == 303
    return client, {"Authorization": f"Bearer {secret}"}


def _csrf(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def _worker_process(seen: Seen, db_url: str, home: Path) -> int:
    """`learnloop worker --once` as its own process: its log stream is what an operator sees."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNLOOP_")}
    env.update(LEARNLOOP_DATABASE_URL=db_url, LEARNLOOP_HOME=str(home), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", "import sys; from webapp.cli import main; "
                           "sys.exit(main(['worker', '--once']))"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    seen.add("worker stdout", done.stdout)
    seen.add("worker log (stderr)", done.stderr)
    assert done.returncode == 1, done.stderr
    return done.returncode


def test_an_echoing_tool_leaks_no_secret_anywhere(
        jira: JiraHarness, use_store: str, tmp_path: Path, learnloop_home: Path,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen = Seen()
    emu = jira.emu
    key = tmp_path / "token.txt"
    key.write_text(TOKEN)
    assert _cli(seen, capsys, "connections", "add", "jira", "j", "--set", f"url={emu.base}",
                "--set", f"email={EMAIL}", "--set", "jql=project = PAY",
                "--secret-file", f"api_token={key}") == 0

    # The CLI, with every answer (401, 403, 500) echoing the credentials.
    for status in (403, 401, 500):
        emu.echo_status = status
        assert _cli(seen, capsys, "connections", "test", "j") == 1
        assert _cli(seen, capsys, "connections", "test", "j", "--json") == 1
        assert _cli(seen, capsys, "sync", "j") == 2
        assert _cli(seen, capsys, "sync", "--json") == 2
    emu.echo_status, emu.echo_server_info = 0, True  # serverInfo echoes; `jira` logs it
    assert _cli(seen, capsys, "connections", "test", "j") == 1
    assert _cli(seen, capsys, "sync", "j") == 2
    assert any("invalid server_info" in r.getMessage() for r in caplog.records)
    for args in (("connections", "list"), ("connections", "list", "--json")):
        assert _cli(seen, capsys, *args) == 0

    # Write-back: reads work, every write is refused with the echo.
    emu.echo_server_info = False
    engine = open_store(use_store)
    client, api = _admin(engine)
    with unit_of_work(engine) as s:
        conn_id = s.scalars(select(Connection.id)).one()
    r = client.post(f"/api/connections/{conn_id}/install", headers=api)
    assert r.status_code == 200, r.text
    assert _cli(seen, capsys, "sync", "j") == 0
    emu.echo_status, emu.echo_methods = 403, {"PUT", "POST"}
    assert _cli(seen, capsys, "learn") == 0
    assert _cli(seen, capsys, "deliver", "--json") == 0
    emu.echo_methods = {"PUT"}
    emu.echo_status = 500
    assert _cli(seen, capsys, "proposals", "list") == 0

    # The worker process, its log stream included (serverInfo echoing: the `jira` ERROR line).
    emu.echo_status, emu.echo_methods, emu.echo_server_info = 0, set(), True
    assert _worker_process(seen, use_store, learnloop_home) == 1
    assert "invalid server_info" in seen.texts[-1][1]

    # The API and the pages: connection test, a queued sync run by the worker's job function.
    emu.echo_status, emu.echo_server_info = 403, False
    seen.add("POST /api/connections/{id}/test",
             client.post(f"/api/connections/{conn_id}/test", headers=api).text)
    r = client.post(f"/api/connections/{conn_id}/sync", headers=api)
    assert r.status_code == 202
    job_id = r.json()["id"]
    (done,) = jobs.run_queued(engine)
    assert done["status"] == "error"
    seen.add("run_queued result", json.dumps(done))
    job = client.get(f"/api/jobs/{job_id}", headers=api).json()
    assert job["status"] == "error" and "HTTP 403" in job["error"]
    seen.add("GET /api/jobs/{id}", json.dumps(job))
    form = {"csrf_token": _csrf(client, f"/admin/connections/{conn_id}")}
    r = client.post(f"/admin/connections/{conn_id}/test", data=form)
    seen.add("admin test page", r.text)
    r = client.post(f"/admin/connections/{conn_id}/sync", data=form)
    seen.add("admin sync page", r.text)
    jobs.run_queued(engine)
    for path in ("/api/connections", f"/api/connections/{conn_id}",
                 f"/api/connections/{conn_id}/fields", "/api/activity"):
        seen.add(f"GET {path}", client.get(path, headers=api).text)
    for path in ("/admin/connections", f"/admin/connections/{conn_id}", "/activity",
                 f"/admin/jobs/{job_id}"):
        page = client.get(path)
        assert page.status_code == 200, path
        seen.add(f"GET {path}", page.text)

    # Every text and JSON column of every table, and every log line.
    rows = 0
    with engine.connect() as c:
        for table in Base.metadata.sorted_tables:
            for row in c.execute(select(table)):
                rows += 1
                for column, value in zip(table.columns, row, strict=True):
                    if value is not None:
                        shown = json.dumps(value, default=str) if isinstance(value, dict | list) \
                            else str(value)
                        seen.add(f"{table.name}.{column.name}", shown)
    engine.dispose()
    seen.add("caplog", caplog.text)
    for record in caplog.records:
        seen.add(f"log record {record.name}", record.getMessage())
    assert rows > 100
    assert seen.leaks() == []
    errors = [text for where, text in seen.texts
              if where.split(".")[-1] in ("last_error", "error")]
    assert sum("***" in e for e in errors) >= 3, errors  # the echoes were there, and hidden


def test_text_stored_in_clear_by_an_older_release_is_hidden_when_shown(
        jira: JiraHarness, engine: Engine) -> None:
    from connectors import registry
    from core.connections import add_connection
    from core.model import Activity, JobRun
    from core.scheduler import record_job

    leaked = f"403: Authorization: Basic {forms()['base64 of email:token']} token {TOKEN}"
    with unit_of_work(engine) as s:
        conn = add_connection(s, registry.get("jira"), "old", {**jira.config(), "email": EMAIL,
                                                                "api_token": TOKEN}, {})
        conn.last_error, conn_id = leaked, conn.id
        s.add(Activity(actor="old", action="ran test", subject_type="connection",
                       subject_id=str(conn.id), note=leaked))
    job_id = record_job(engine, "sync_job", "error", {}, leaked, conn_id)
    with unit_of_work(engine) as s:  # an older release stored it as it came
        s.get_one(JobRun, job_id).error = leaked
    shown = Seen()
    client, api = _admin(engine)
    for path in ("/api/connections", f"/api/jobs/{job_id}", "/api/activity"):
        shown.add(path, client.get(path, headers=api).text)
    for path in ("/admin/connections", f"/admin/connections/{conn_id}", f"/admin/jobs/{job_id}",
                 "/activity"):
        page = client.get(path)
        assert page.status_code == 200
        shown.add(path, page.text)
    assert shown.leaks() == []
    assert "Basic ***" in shown.texts[0][1]
