"""What the runtime does per job, counted: Jira requests, SQL statements, client constructions.

Real clients against the local Jira emulator, statements counted with SQLAlchemy's
`before_cursor_execute` event (an executemany counts as one):

- requests for a no-change Jira sync through the worker (`webapp.worker.sync_job`), and with a
  connector built per job (what the worker did before);
- statements for a first sync of 1,000 issues, on SQLite and (with --postgres) PostgreSQL;
- UPDATE statements and `atlassian.Jira` clients built to deliver 800 intents;
- requests and re-stored items for the sync that follows learnloop's own write-back to 240
  issues (fields, comment, issue property and remote link on each);
- how long "Sync now" takes to answer, and the job it queued once the worker runs it.

    python -m benchmarks.runtime_counts --postgres postgresql://postgres@127.0.0.1:5432/test

With --postgres a database of its own is created on that server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

NOW = dt.datetime(2025, 6, 2, 10, 20, tzinfo=dt.UTC)


@contextmanager
def statements(engine: Engine) -> Iterator[collections.Counter[str]]:
    """Count the statements `engine` runs, by verb ("SELECT", "INSERT", "UPDATE", ...)."""
    seen: collections.Counter[str] = collections.Counter()

    def count(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        seen[statement.split()[0].upper()] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


@contextmanager
def writer_clients() -> Iterator[list[int]]:
    """Count `atlassian.Jira` clients built meanwhile (measurement only: restored after)."""
    from atlassian import Jira

    built = [0]
    original = Jira.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        built[0] += 1
        original(self, *args, **kwargs)

    Jira.__init__ = counting  # type: ignore[method-assign]
    try:
        yield built
    finally:
        Jira.__init__ = original  # type: ignore[method-assign]


def _site(n: int) -> tuple[Any, dict[str, Any]]:
    from tests.connectors.jira.harness import JiraHarness

    h = JiraHarness(n=n)
    return h.emu, h.config()


def _store(url: str | None, tmp: Path, name: str) -> Engine:
    from core.store import open_store

    return open_store(url or f"sqlite:///{tmp / f'{name}.db'}")


def _connection(engine: Engine, config: dict[str, Any]) -> int:
    from connectors.jira import JiraConnector
    from core.connections import add_connection
    from core.store import unit_of_work

    with unit_of_work(engine) as s:
        return add_connection(s, JiraConnector, "pay", config, {}, "every 1h").id


def worker_sync_requests(tmp: Path) -> dict[str, int]:
    """Requests of a no-change sync: through the worker, and with a connector built per job."""
    from connectors import registry
    from core.connections import build_connector, get_connection
    from core.store import unit_of_work
    from core.sync import run_sync
    from webapp import worker

    emu, config = _site(1000)
    engine = _store(None, tmp, "worker")
    cid = _connection(engine, config)
    worker.sync_job(cid, engine=engine, learn=False, now=NOW)
    before = len(emu.requests)
    worker.sync_job(cid, engine=engine, learn=False, now=NOW + dt.timedelta(hours=1))
    kept = len(emu.requests) - before
    with unit_of_work(engine) as s:
        fresh = build_connector(get_connection(s, "pay"), registry.get("jira"))
    before = len(emu.requests)
    run_sync(engine, "pay", fresh)
    per_job = len(emu.requests) - before
    engine.dispose()
    return {"worker_no_change_sync_requests": kept,
            "connector_per_job_no_change_sync_requests": per_job}


def sync_statements(url: str | None, tmp: Path, n: int = 1000) -> dict[str, int]:
    """Statements of a first sync of `n` issues (items, events, deviations, cursor)."""
    from connectors import runtime

    _emu, config = _site(n)
    engine = _store(url, tmp, "sync")
    _connection(engine, config)
    with statements(engine) as seen:
        report = runtime.sync(engine, "pay")
    engine.dispose()
    return {"issues": report.created, "events": report.events,
            "statements": sum(seen.values()), "inserts": seen["INSERT"]}


def _enqueue(engine: Engine, cid: int, keys: list[str],
             surfaces: list[tuple[str, Callable[[str], dict[str, Any]]]]) -> None:
    from core import outbox
    from core.store import unit_of_work

    with unit_of_work(engine) as s:
        outbox.enqueue_many(s, [(cid, key, surface, payload(key), None)
                                for key in keys for surface, payload in surfaces])


FIELDS_PAYLOAD = ("fields", lambda key: {"forecast_p80": 6.5, "insight": f"{key} runs long"})
COMMENT_PAYLOAD = ("comment", lambda key: {"text": f"learnloop: {key} tends to run 30% over"})
PROPERTY_PAYLOAD = ("property", lambda key: {"item_id": int(key.split("-")[1]),
                                             "forecast_p80": 6.5})
LINK_PAYLOAD = ("link", lambda key: {"url": f"http://learnloop.local/items/{key}",
                                     "title": "learnloop"})


def settle_statements(url: str | None, tmp: Path) -> dict[str, int]:
    """UPDATE statements and writer clients to deliver 800 intents (400 issues x fields and
    comment) through the runtime."""
    from connectors import runtime

    emu, config = _site(400)
    engine = _store(url, tmp, "settle")
    cid = _connection(engine, config)
    with writer_clients() as built:  # the connector's life: its sync and its deliveries
        runtime.sync(engine, "pay")
        _enqueue(engine, cid, sorted(emu.issues), [FIELDS_PAYLOAD, COMMENT_PAYLOAD])
        with statements(engine) as seen:
            report = runtime.deliver(engine)
    engine.dispose()
    claims = -(-report.delivered // 500)  # one UPDATE claims up to 500
    return {"delivered": report.delivered, "updates": seen["UPDATE"],
            "settle_updates": seen["UPDATE"] - claims, "writer_clients": built[0]}


def own_write_back(url: str | None, tmp: Path) -> dict[str, int]:
    """The sync after learnloop wrote fields, a comment, a property and a link to 240 issues."""
    from connectors import runtime

    emu, config = _site(240)
    engine = _store(url, tmp, "own")
    cid = _connection(engine, config)
    runtime.sync(engine, "pay")
    _enqueue(engine, cid, sorted(emu.issues),
             [FIELDS_PAYLOAD, COMMENT_PAYLOAD, PROPERTY_PAYLOAD, LINK_PAYLOAD])
    delivered = runtime.deliver(engine).delivered
    before = len(emu.requests)
    report = runtime.sync(engine, "pay")
    engine.dispose()
    return {"issues_written": len(emu.issues), "intents_delivered": delivered,
            "next_sync_requests": len(emu.requests) - before,
            "re_stored": report.updated + report.created, "unchanged": report.unchanged}


def sync_now_answer(tmp: Path) -> dict[str, Any]:
    """How long `POST /api/connections/{id}/sync` takes to answer, and the job it queued
    (a first sync of 1,000 issues and a learning run) once the worker runs it."""
    import time

    from fastapi.testclient import TestClient

    from core.store import unit_of_work
    from webapp import security, worker
    from webapp.app import create_app

    _emu, config = _site(1000)
    engine = _store(None, tmp, "sync_now")
    cid = _connection(engine, config)
    with unit_of_work(engine) as s:
        admin = security.create_user(s, "admin@example.com", "a long enough password", "admin")
        _, secret = security.create_token(s, admin, "bench")
    api = TestClient(create_app(engine))
    started = time.perf_counter()
    answer = api.post(f"/api/connections/{cid}/sync", headers={"Authorization": f"Bearer {secret}"})
    answered = time.perf_counter() - started
    if answer.status_code == 200:  # code from before the queue: it ran inside the request
        engine.dispose()
        return {"answer_ms": round(answered * 1000, 1), "job_status": "ran in the request"}
    assert answer.status_code == 202, answer.text
    started = time.perf_counter()
    (job,) = worker.queued_job(engine=engine)["jobs"]
    ran = time.perf_counter() - started
    engine.dispose()
    return {"answer_ms": round(answered * 1000, 1), "job_seconds": round(ran, 1),
            "job_status": job["status"]}


@contextmanager
def scratch_database(server: str) -> Iterator[str]:
    """A fresh PostgreSQL database on `server`, dropped afterwards."""
    admin = create_engine(make_url(server).set(drivername="postgresql+psycopg"),
                          isolation_level="AUTOCOMMIT")
    name = f"learnloop_bench_runtime_{os.getpid()}"
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _fresh(url: str) -> str:
    from core.model import Base

    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    with engine.begin() as c:
        c.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
                       + " RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


def run(postgres: str | None) -> dict[str, Any]:
    """Every count, on SQLite and (when given a server) PostgreSQL."""
    os.environ.setdefault("LEARNLOOP_HOME", tempfile.mkdtemp(prefix="learnloop-bench-"))
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        out.update(worker_sync_requests(tmp))
        out["sync_now"] = sync_now_answer(tmp)
        out["sqlite"] = {"sync_1000": sync_statements(None, tmp),
                         "settle_800": settle_statements(None, tmp),
                         "after_own_write_back_240": own_write_back(None, tmp)}
        if postgres:
            with scratch_database(postgres) as url:
                from core.store import open_store

                open_store(url).dispose()  # migrate once
                out["postgresql"] = {
                    "sync_1000": sync_statements(_fresh(url), tmp),
                    "settle_800": settle_statements(_fresh(url), tmp),
                    "after_own_write_back_240": own_write_back(_fresh(url), tmp)}
    return out


def main() -> int:
    """Print the counts as JSON."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", metavar="URL",
                        help="a PostgreSQL server to count on as well (a scratch database)")
    args = parser.parse_args()
    print(json.dumps(run(args.postgres), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
