"""Jira in the product's own paths: the worker's syncs, and the sync after learnloop's own
write-back (its fields, comment, issue property and remote link all bump Jira's `updated`)."""

from __future__ import annotations

import datetime as dt

from atlassian import Jira
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors import runtime
from connectors.jira import JiraConnector
from core import outbox
from core.connections import add_connection
from core.contract import COMMENT, FIELDS, LINK, PROPERTY
from core.model import Connection, Event
from core.store import unit_of_work
from tests.connectors.jira.harness import JiraHarness
from webapp import worker

NOW = dt.datetime(2025, 6, 2, 10, 20, tzinfo=dt.UTC)


def _add(engine: Engine, h: JiraHarness) -> int:
    with unit_of_work(engine) as s:
        return add_connection(s, JiraConnector, "pay", h.config(), h.mapping(), "every 1h").id


def test_a_no_change_sync_through_the_worker_costs_one_request(engine: Engine) -> None:
    h = JiraHarness()
    cid = _add(engine, h)
    first = worker.sync_job(cid, engine=engine, learn=False, now=NOW)
    assert first["status"] == "ok" and first["stats"]["created"] == 20
    for hour in (1, 2):
        before = len(h.emu.requests)
        later = worker.sync_job(cid, engine=engine, learn=False,
                                now=NOW + dt.timedelta(hours=hour))
        assert later["status"] == "ok" and later["stats"]["updated"] == 0
        made = h.emu.requests[before:]  # the search; the client's start-up is not repaid
        assert len(made) == 1 and made[0][0] == "GET" and "/search/jql" in made[0][1], made
    with unit_of_work(engine) as s:  # a changed setting builds a new connector (and client)
        conn = s.get_one(Connection, cid)
        conn.config = {**conn.config, "lookback_minutes": 5}
    before = len(h.emu.requests)
    assert worker.sync_job(cid, engine=engine, learn=False,
                           now=NOW + dt.timedelta(hours=3))["status"] == "ok"
    assert [p.split("?")[0] for _, p in h.emu.requests[before:]] == [
        "/rest/api/2/serverInfo", "/rest/api/2/field", "/rest/api/2/search/jql"]
    assert h.emu.unexpected == []


def _write_back_everything(engine: Engine, cid: int, keys: list[str]) -> int:
    with unit_of_work(engine) as s:
        for key in keys:
            for surface, payload in (
                    (FIELDS, {"forecast_p80": 6.5, "effort_factor": 1.3, "insight": "runs long"}),
                    (COMMENT, {"text": f"learnloop: {key} tends to run 30% over"}),
                    (PROPERTY, {"item_id": int(key.split("-")[1]), "forecast_p80": 6.5}),
                    (LINK, {"url": f"http://learnloop.local/items/{key}", "title": "learnloop"})):
                outbox.enqueue(s, cid, key, surface, payload)
    return runtime.deliver(engine).delivered


def test_the_sync_after_our_own_write_back_re_stores_nothing(engine: Engine) -> None:
    h = JiraHarness(n=60)
    cid = _add(engine, h)
    assert runtime.sync(engine, "pay").created == 60
    updated = {k: i.updated for k, i in h.emu.issues.items()}
    histories = {k: len(i.histories) for k, i in h.emu.issues.items()}
    assert _write_back_everything(engine, cid, sorted(h.emu.issues)) == 240
    for key, issue in h.emu.issues.items():  # Jira saw our writes as changes
        assert issue.updated > updated[key]
        ours = issue.histories[histories[key]:]
        assert {i["field"] for hist in ours for i in hist["items"]} >= {
            "learnloop Forecast P80", "RemoteIssueLink"}
        assert {hist["author"]["accountId"] for hist in ours} == {"bot-1"}
    before = len(h.emu.requests)
    report = runtime.sync(engine, "pay")
    assert (report.created, report.updated, report.events, report.unchanged) == (0, 0, 0, 60)
    assert len(h.emu.requests) - before == 1  # the 60 issues came back, on one page

    # A person's change is still a change, even to an issue learnloop just wrote to.
    person = Jira(url=h.emu.base, username="pm@example.com", password="pm-token", cloud=True)
    person.update_issue_field("PAY-7", {"duedate": "2025-04-30"})
    report = runtime.sync(engine, "pay")
    assert (report.updated, report.unchanged, report.events) == (1, 59, 1)
    with unit_of_work(engine) as s:
        moved = s.scalars(select(Event).where(Event.kind == "plan_changed")
                          .order_by(Event.id.desc())).first()
        assert moved is not None and moved.attributes["field"] == "planned_due"
        assert moved.attributes["to_text"] == "2025-04-30"
        assert moved.actor != "bot-1"
    assert h.emu.unexpected == [] and h.emu.spec_errors == []
