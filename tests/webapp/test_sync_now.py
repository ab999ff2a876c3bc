""""Sync now": queued for the worker, answered at once, its progress visible while it runs."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core.connections import add_connection
from core.contract import Batch
from core.model import JobRun
from core.store import unit_of_work
from tests.fakes import FakeConnector
from tests.webapp import worker_proc
from webapp import jobs, security, worker
from webapp.app import create_app
from webapp.cli import main

PASSWORD = "a long enough password"


class ObservedConnector(FakeConnector):
    """The fake tool, reading its own job run between batches (what the page would show)."""

    name: ClassVar[str] = "observed"
    engine: ClassVar[Engine | None] = None
    seen: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        for batch in super().pull(cursor):
            yield batch
            assert self.engine is not None
            with unit_of_work(self.engine) as s:  # the batch before this one is stored
                run = s.scalars(select(JobRun).where(JobRun.job == jobs.SYNC_NOW)).one()
                type(self).seen.append((run.status, dict(run.stats)))


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, engine: Engine) -> Engine:
    from connectors import registry

    monkeypatch.setattr(registry, "BUILTINS", (*registry.BUILTINS,
                                                f"{__name__}:ObservedConnector"))
    worker_proc.register(str(tmp_path / "writes.log"))
    monkeypatch.setattr(ObservedConnector, "engine", engine)
    monkeypatch.setattr(ObservedConnector, "seen", [])
    with unit_of_work(engine) as s:
        security.create_user(s, "admin@example.com", PASSWORD, "admin")
        security.create_user(s, "viewer@example.com", PASSWORD, "viewer")
    return engine


def _token(engine: Engine, email: str) -> dict[str, str]:
    with unit_of_work(engine) as s:
        user = s.scalars(select(security.User).where(security.User.email == email)).one()
        _, secret = security.create_token(s, user, "test")
    return {"Authorization": f"Bearer {secret}"}


def _add(engine: Engine, factory: type[FakeConnector], name: str, **config: object) -> int:
    with unit_of_work(engine) as s:
        return add_connection(s, factory, name, {"items": 20, **config}, {"id": "key"}).id


def test_the_api_queues_and_the_worker_runs_it_with_progress(registered: Engine) -> None:
    engine = registered
    cid = _add(engine, ObservedConnector, "tool", batch_size=5)
    api, admin = TestClient(create_app(engine)), _token(engine, "admin@example.com")
    viewer = _token(engine, "viewer@example.com")
    assert api.post(f"/api/connections/{cid}/sync", headers=viewer).status_code == 403
    r = api.post(f"/api/connections/{cid}/sync", headers=admin)
    assert r.status_code == 202 and r.json()["status"] == "queued"
    job = r.json()["id"]
    assert r.headers["location"] == f"/api/jobs/{job}"
    assert "waiting for the worker" in r.json()["message"]
    assert api.get(f"/api/jobs/{job}", headers=viewer).status_code == 403
    with unit_of_work(engine) as s:
        assert s.scalars(select(JobRun.job)).all() == [jobs.SYNC_NOW]  # nothing ran yet

    (ran,) = worker.queued_job(engine=engine)["jobs"]
    assert ran["status"] == "ok" and ran["id"] == job
    # While it ran, the job said so, batch after batch.
    assert [(st, p["phase"], p["items"], p["batches"]) for st, p in ObservedConnector.seen] == [
        ("running", "syncing", 5 * k, k) for k in range(1, 5)]
    # ...and which process ran it, so a job whose worker was killed is closed as interrupted.
    assert all(p["pid"] == os.getpid() and p["host"] for _, p in ObservedConnector.seen)
    done = api.get(f"/api/jobs/{job}", headers=admin).json()
    assert done["status"] == "ok" and done["stats"]["phase"] == "done"
    assert (done["stats"]["created"], done["stats"]["items"]) == (20, 20)
    assert done["stats"]["learning_run"] >= 1 and "20 new" in done["message"]
    assert worker.queued_job(engine=engine)["jobs"] == []  # run once, by one worker


def test_the_page_queues_shows_progress_and_the_cli_worker_runs_it(
        registered: Engine, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, db_url: str) -> None:
    engine = registered
    cid = _add(engine, ObservedConnector, "tool")
    client = TestClient(create_app(engine))
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    client.post("/login", data={"email": "admin@example.com", "password": PASSWORD,
                                "csrf_token": token.group(1)})
    conn_page = client.get(f"/admin/connections/{cid}")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', conn_page.text)
    assert csrf
    r = client.post(f"/admin/connections/{cid}/sync", data={"csrf_token": csrf.group(1)},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/jobs/")
    shown = client.get(r.headers["location"])
    assert 'id="job-status">queued<' in shown.text and 'http-equiv="refresh"' in shown.text
    assert "sync queued as job" in shown.text

    monkeypatch.setenv("LEARNLOOP_DATABASE_URL", db_url)
    assert main(["worker", "--once"]) == 0
    assert re.search(r"sync now #\d+ tool: 20 new, 0 updated", capsys.readouterr().out)
    shown = client.get(r.headers["location"])
    assert 'id="job-status">ok<' in shown.text and 'http-equiv="refresh"' not in shown.text
    assert "20 new" in shown.text
    assert "sync now #" in client.get(f"/admin/connections/{cid}").text.lower()  # recent runs


def test_a_failed_sync_now_is_one_line_without_the_token(registered: Engine) -> None:
    engine = registered
    token = "tok-SECRET-12345"
    cid = _add(engine, worker_proc.LeakyConnector, "leaky", api_token=token)
    with unit_of_work(engine) as s:
        from core.model import Connection

        run, new = jobs.queue_sync(s, s.get_one(Connection, cid))
        again, second = jobs.queue_sync(s, s.get_one(Connection, cid))
        assert new and not second and again.id == run.id
    (ran,) = jobs.run_queued(engine)
    assert ran["status"] == "error"
    with unit_of_work(engine) as s:
        row = s.scalars(select(JobRun).where(JobRun.job == jobs.SYNC_NOW)).one()
        assert row.status == "error" and row.stats["phase"] == "failed"
        assert row.error == "sync failed: RuntimeError: 401 Unauthorized for token ***"
        assert token not in jobs.summary(row) and row.finished_at is not None
