"""The Jira connector through the real clients against the local Jira emulator."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from connectors import runtime
from connectors.jira import JiraConfig, JiraConnector
from core.connections import add_connection
from core.contract import FIELDS, Intent
from core.errors import ConnectorError
from core.model import Connection, Deviation, Event, Item
from core.store import unit_of_work
from core.sync import run_sync
from tests.connectors.jira.harness import T0, JiraHarness
from tests.emulators.jira.server import jira_time


def _connector(h: JiraHarness, **over: object) -> JiraConnector:
    return JiraConnector(JiraConfig(**{**h.config(), **over}), h.mapping())


def _add(engine: Engine, h: JiraHarness, name: str = "pay") -> None:
    with unit_of_work(engine) as s:
        add_connection(s, JiraConnector, name, h.config(), h.mapping())


def test_sync_maps_plans_actuals_and_replanning_events(engine: Engine) -> None:
    h = JiraHarness()
    _add(engine, h)
    report = run_sync(engine, "pay", _connector(h))
    assert (report.created, report.events, report.quarantined) == (20, 60, 0)
    with unit_of_work(engine) as s:
        item = s.scalars(select(Item).where(Item.external_id == "PAY-3")).one()
        assert item.status == "done" and item.planned_estimate == 4.0 and item.actual_effort == 8.0
        assert item.actual_start == T0 + dt.timedelta(days=1)
        assert item.segments["issuetype"] == "Bug" and item.segments["components"] == "api"
        assert item.url is not None and item.url.endswith("/browse/PAY-3")
        kinds = set(s.scalars(select(Event.kind)))
        assert kinds == {"plan_changed", "status_changed"}
    before = len(h.emu.requests)
    again = run_sync(engine, "pay", _connector(h))
    assert again.created == 0 and again.events == 0
    assert len(h.emu.requests) - before == 3  # a new client: serverInfo, field list, search
    kept = _connector(h)
    run_sync(engine, "pay", kept)
    before = len(h.emu.requests)
    run_sync(engine, "pay", kept)  # a connector kept between syncs (the worker's case)
    assert len(h.emu.requests) - before == 1


def _history(hid: int, at: dt.datetime, *items: dict[str, object]) -> dict[str, object]:
    return {"id": str(hid), "created": jira_time(at), "author": {"accountId": "dev-2"},
            "items": list(items)}


def test_the_committed_plan_comes_from_the_changelog(engine: Engine) -> None:
    h = JiraHarness(n=2)
    issue = h.emu.issues["PAY-1"]
    issue.fields.update({"duedate": "2025-03-14", "timeoriginalestimate": 7200})
    due = {"field": "duedate", "fieldtype": "jira", "fieldId": "duedate"}
    estimate = {"field": "timeoriginalestimate", "fieldtype": "jira",
                "fieldId": "timeoriginalestimate"}
    issue.histories = [  # planned, started a day later, then re-planned twice
        _history(1, T0, {**due, "from": "2025-03-05", "fromString": "2025-03-05 00:00:00.0",
                         "to": "2025-03-10", "toString": "2025-03-10 00:00:00.0"}),
        _history(2, T0 + dt.timedelta(days=1), {"field": "status", "fieldtype": "jira",
                                                "fromString": "To Do",
                                                "toString": "In Progress"}),
        _history(3, T0 + dt.timedelta(days=2),
                 {**due, "from": "2025-03-10", "fromString": "2025-03-10 00:00:00.0",
                  "to": "2025-03-12", "toString": "2025-03-12 00:00:00.0"},
                 {**estimate, "from": "3600", "fromString": "3600", "to": "7200",
                  "toString": "7200"}),
        _history(4, T0 + dt.timedelta(days=2, hours=3),
                 {**due, "from": "2025-03-12", "fromString": "2025-03-12 00:00:00.0",
                  "to": "2025-03-14", "toString": "2025-03-14 00:00:00.0"}),
    ]
    _add(engine, h)
    _add(engine, h, "pay-created")
    with unit_of_work(engine) as s:  # the same site, committed at creation instead
        conn = s.scalars(select(Connection).where(Connection.name == "pay-created")).one()
        conn.scope = {"commit_on": "creation"}
    run_sync(engine, "pay", _connector(h))
    run_sync(engine, "pay-created", _connector(h))
    with unit_of_work(engine) as s:
        rows = s.execute(select(Item, Connection.name).join(Connection)
                         .where(Item.external_id == "PAY-1")).all()
        got = {name: item for item, name in rows}
        started = got["pay"]
        assert started.committed_at == T0 + dt.timedelta(days=1)
        assert started.committed_plan is not None
        assert started.committed_plan["planned_due"] == "2025-03-10T00:00:00+00:00"
        assert started.committed_plan["planned_estimate"] == 1.0  # hours, from 3600 seconds
        assert started.planned_due == dt.datetime(2025, 3, 14, tzinfo=dt.UTC)
        assert started.planned_estimate == 2.0
        created = got["pay-created"]
        assert created.committed_plan is not None
        assert created.committed_plan["planned_due"] == "2025-03-05T00:00:00+00:00"
        moved = s.scalars(select(Event).where(Event.item_id == started.id,
                                              Event.kind == "plan_changed")).all()
        assert len(moved) == 4 and {e.attributes["source"] for e in moved} == {"jira changelog"}
        devs = {(d.measure, d.against): d.value for d in s.scalars(
            select(Deviation).where(Deviation.item_id == started.id))}
    done = T0 + dt.timedelta(days=3)  # resolutiondate of the seeded issue
    committed_due = dt.datetime(2025, 3, 10, tzinfo=dt.UTC)
    assert devs[("slip_days", "committed")] == pytest.approx(
        (done - committed_due).total_seconds() / 86400)
    assert devs[("slip_days", "current")] == pytest.approx(
        (done - dt.datetime(2025, 3, 14, tzinfo=dt.UTC)).total_seconds() / 86400)
    assert devs[("effort_ratio", "committed")] == pytest.approx(2.0)  # 2 h spent / 1 h committed
    assert devs[("effort_ratio", "current")] == pytest.approx(1.0)
    again = run_sync(engine, "pay", _connector(h))  # no derived duplicates of Jira's own events
    assert again.events == 0
    assert h.emu.unexpected == []


def test_incremental_sync_uses_epoch_millis_and_a_lookback(engine: Engine) -> None:
    h = JiraHarness()
    _add(engine, h)
    run_sync(engine, "pay", _connector(h))
    h.emu.issues["PAY-4"].fields["timeoriginalestimate"] = 7200
    h.emu.touch(h.emu.issues["PAY-4"], T0 + dt.timedelta(hours=5))
    report = run_sync(engine, "pay", _connector(h))
    assert report.updated == 1 and report.created == 0
    jql = [p for m, p in h.emu.requests if "search/jql" in p][-1]
    assert "updated+%3E%3D+1" in jql or "updated%20%3E%3D%201" in jql or "updated >= 1" in jql


def test_a_crash_between_pages_resumes_without_loss_or_duplicates(engine: Engine) -> None:
    h = JiraHarness(n=250)
    _add(engine, h)
    h.emu.throttle = 0
    conn = _connector(h)
    pages = conn.pull(None)
    first = next(pages)
    assert len(first.items) == 100 and first.cursor and first.cursor["page_token"]
    h.emu.throttle = 1
    with pytest.raises(ConnectorError, match="429"):
        run_sync(engine, "pay", conn)
    h.emu.throttle = 0
    run_sync(engine, "pay", conn)
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 250
        assert s.scalar(select(func.count()).select_from(Event)) == 750


def test_truncated_changelogs_are_fetched_in_full(engine: Engine) -> None:
    h = JiraHarness(n=1)
    long = [{"id": str(50_000 + k), "created": jira_time(T0 + dt.timedelta(minutes=k)),
             "items": [{"field": "duedate", "fromString": "a", "toString": "b"}]}
            for k in range(150)]
    h.emu.issues["PAY-1"].histories = long
    (batch,) = list(_connector(h).pull(None))
    assert len(batch.events) == 150
    assert any("/changelog" in p for _, p in h.emu.requests)


def test_fields_written_quietly_or_with_notifications_when_not_allowed() -> None:
    h = JiraHarness()
    conn = _connector(h)
    report = conn.install()
    assert len(report.created) == 4 and conn.install().created == []
    assert len(h.emu.on_screen) == 4
    p80 = next(f["id"] for f in h.emu.fields if f["name"] == "learnloop Forecast P80")
    before = len(h.emu.requests)
    (res,) = conn.deliver([Intent(1, "PAY-4", FIELDS, {"forecast_p80": 5.5, "insight": "x"})])
    puts = [p for m, p in h.emu.requests[before:] if m == "PUT"]
    assert res.ok and h.emu.issues["PAY-4"].fields[p80] == 5.5
    assert len(puts) == 2 and "notifyUsers=false" in puts[0] and "notifyUsers=true" in puts[1]
    h.emu.admin = True
    before = len(h.emu.requests)
    conn.deliver([Intent(2, "PAY-4", FIELDS, {"forecast_p80": 6.0})])
    assert [p for m, p in h.emu.requests[before:] if m == "PUT"] == [
        next(p for m, p in h.emu.requests[before:] if m == "PUT")]
    (missing,) = conn.deliver([Intent(3, "PAY-999", FIELDS, {"forecast_p80": 1.0})])
    assert not missing.ok and missing.permanent
    assert h.emu.unexpected == []


def test_rate_limit_on_write_asks_for_retry_after(engine: Engine) -> None:
    h = JiraHarness()
    conn = _connector(h)
    conn.install()
    h.emu.admin = True
    h.emu.throttle = 1  # the outbox, not a sleeping client, is told when to come back
    (res,) = conn.deliver([Intent(2, "PAY-1", FIELDS, {"forecast_p80": 3.0})])
    assert not res.ok and res.retry_after == 1.0 and "429" in (res.error or "")
    (res,) = conn.deliver([Intent(3, "PAY-1", FIELDS, {"forecast_p80": 3.0})])
    assert res.ok


def test_end_to_end_sync_learn_write_back(engine: Engine) -> None:
    h = JiraHarness(n=240)
    h.emu.admin = True
    _add(engine, h)
    runtime.sync(engine, "pay")
    learned = runtime.learn(engine)
    assert learned.finished["task/effort"] == 180  # Jira issues are tasks
    delivered = runtime.deliver(engine)
    assert delivered.delivered > 0 and delivered.dead == 0
    p80 = next(f["id"] for f in h.emu.fields if f["name"] == "learnloop Forecast P80")
    open_issue = h.emu.issues["PAY-4"]
    assert isinstance(open_issue.fields.get(p80), float) and open_issue.fields[p80] > 0
    assert h.emu.unexpected == [] and h.emu.spec_errors == [], h.emu.spec_errors[:3]


def test_comment_in_adf_edited_in_place_property_and_one_remote_link() -> None:
    from core.contract import COMMENT, LINK, PROPERTY

    h = JiraHarness()
    conn = _connector(h)
    (first,) = conn.deliver([Intent(1, "PAY-4", COMMENT, {"text": "P80: 9 hours"})])
    assert first.ok and first.tool_ref
    (second,) = conn.deliver([Intent(2, "PAY-4", COMMENT, {"text": "P80: 11 hours"},
                                     first.tool_ref)])
    issue = h.emu.issues["PAY-4"]
    assert second.tool_ref == first.tool_ref and len(issue.comments) == 1
    body = issue.comments[first.tool_ref]
    assert body["type"] == "doc" and body["content"][0]["content"][0]["text"] == "P80: 11 hours"
    issue.comments.clear()  # someone deleted our comment: the next write posts a new one
    (third,) = conn.deliver([Intent(3, "PAY-4", COMMENT, {"text": "P80: 12 hours"},
                                    first.tool_ref)])
    assert third.ok and len(issue.comments) == 1
    for n in range(2):
        results = conn.deliver([
            Intent(10 + n, "PAY-4", PROPERTY, {"forecast_p80": 11.0, "item_id": 4}),
            Intent(20 + n, "PAY-4", LINK, {"url": "http://learnloop.local/items/4",
                                           "title": "learnloop"})])
        assert all(r.ok for r in results), results
    assert issue.properties["learnloop"]["forecast_p80"] == 11.0
    assert len(issue.links) == 1
    assert next(iter(issue.links.values()))["object"]["url"] == "http://learnloop.local/items/4"
    assert h.emu.unexpected == [] and h.emu.spec_errors == [], h.emu.spec_errors[:3]


def test_learning_run_comments_only_where_a_threshold_is_crossed(engine: Engine) -> None:
    h = JiraHarness(n=240)
    h.emu.admin = True
    _add(engine, h)
    runtime.sync(engine, "pay")
    runtime.learn(engine)
    assert runtime.deliver(engine).dead == 0
    open_keys = [k for k, i in h.emu.issues.items()
                 if i.fields["status"]["statusCategory"]["key"] != "done"]
    commented = [k for k in open_keys if h.emu.issues[k].comments]
    assert commented and len(commented) < len(open_keys)
    assert all(h.emu.issues[k].fields["issuetype"]["name"] == "Bug" for k in commented)
    assert all(len(h.emu.issues[k].links) == 1 for k in open_keys)
    runtime.learn(engine)
    runtime.deliver(engine)
    assert all(len(h.emu.issues[k].comments) <= 1 for k in open_keys)


def test_a_malformed_issue_is_quarantined_and_the_others_kept(engine: Engine) -> None:
    h = JiraHarness(n=5)
    h.emu.issues["PAY-2"].fields["resolutiondate"] = "yesterday-ish"
    h.emu.issues["PAY-2"].fields["status"] = {"name": "Done", "statusCategory": {"key": "done"}}
    _add(engine, h)
    report = run_sync(engine, "pay", _connector(h))
    assert report.created == 4 and report.quarantined == 1
    assert report.problems[0].locator == "issue PAY-2"
    assert "malformed issue" in report.problems[0].reason


def test_issues_deleted_in_jira_are_marked_deleted_on_reconciliation(engine: Engine) -> None:
    h = JiraHarness(n=10)
    _add(engine, h)
    conn = _connector(h, reconcile_hours=0.0001)
    run_sync(engine, "pay", conn)
    del h.emu.issues["PAY-3"]
    import time

    time.sleep(0.5)  # past reconcile_hours: the next sync reads the whole scope again
    report = run_sync(engine, "pay", conn)
    assert report.deleted == 1
    with unit_of_work(engine) as s:
        gone = s.scalars(select(Item).where(Item.external_id == "PAY-3")).one()
        assert gone.deleted


def test_outages_and_per_issue_write_limits_lose_nothing(engine: Engine) -> None:
    h = JiraHarness(n=5)
    h.emu.admin = True
    _add(engine, h)
    h.emu.fail_5xx = 1
    with pytest.raises(ConnectorError, match=r"503|Service Unavailable"):
        run_sync(engine, "pay", _connector(h))
    assert run_sync(engine, "pay", _connector(h)).created == 5
    conn = _connector(h)
    conn.install()
    h.emu.write_limit = 1
    ok, limited = (conn.deliver([Intent(n, "PAY-1", FIELDS, {"forecast_p80": float(n)})])[0]
                   for n in (1, 2))
    assert ok.ok and not limited.ok and limited.retry_after == 60.0 and not limited.permanent
    h.emu.fail_5xx = 1
    (down,) = conn.deliver([Intent(3, "PAY-2", FIELDS, {"forecast_p80": 1.0})])
    assert not down.ok and not down.permanent


def test_accepted_proposal_updates_template_children_with_a_comment(engine: Engine) -> None:
    from core import policy
    from core.model import Proposal, Template

    h = JiraHarness(n=240)
    h.emu.admin = True
    tpl = h.emu.add_issue("OPS-1", {"summary": "Bug-fix template", "labels": ["learnloop-template"],
                                    "project": {"key": "OPS"}, "issuetype": {"name": "Epic"},
                                    "status": {"name": "Open", "statusCategory": {"key": "new"}}})
    for name, hours in (("Fix login bug", 8), ("Write release note", 1)):
        h.emu.add_issue(f"OPS-{len(h.emu.issues)}", {
            "summary": name, "parent": {"key": tpl.key}, "project": {"key": "OPS"},
            "timeoriginalestimate": hours * 3600, "issuetype": {"name": "Sub-task"},
            "status": {"name": "Open", "statusCategory": {"key": "new"}}})
    _add(engine, h)
    runtime.sync(engine, "pay")
    with unit_of_work(engine) as s:
        from core.model import Connection

        conn_id = s.scalars(select(Connection.id)).one()
        s.add(Template(name="bugfix", connection_id=conn_id, external_id="OPS-1", body={"tasks": [
            {"name": "Fix login bug", "segments": {"issuetype": "Bug"}, "estimate": 8},
            {"name": "Write release note", "segments": {"issuetype": "Task"}, "estimate": 1}]}))
    runtime.learn(engine)
    with unit_of_work(engine) as s:
        prop = s.scalars(select(Proposal).where(
            Proposal.dedupe_key == "effort:issuetype=Bug")).one()
        policy.accept(s, prop.id, "owner@example.com", "bugs run long")
    assert runtime.deliver(engine).dead == 0
    with unit_of_work(engine) as s:  # every write of the accepted change arrived
        assert s.get(Proposal, prop.id).status == "applied"  # type: ignore[union-attr]
    child = next(i for i in h.emu.issues.values() if i.fields.get("summary") == "Fix login bug")
    note = next(i for i in h.emu.issues.values() if i.fields.get("summary") == "Write release note")
    assert child.fields["timeoriginalestimate"] > 8 * 3600 * 1.5
    assert note.fields["timeoriginalestimate"] == 3600
    (comment,) = tpl.comments.values()
    text = comment["content"][0]["content"][0]["text"]
    assert "Fix login bug: 8h ->" in text and "owner@example.com" in text
    assert h.emu.unexpected == [] and h.emu.spec_errors == [], h.emu.spec_errors[:3]


def test_a_429_storm_through_the_outbox_delivers_everything_once(engine: Engine) -> None:
    import datetime as _dt

    from core import outbox
    from core.model import WriteIntent, utcnow

    h = JiraHarness(n=12)
    h.emu.admin = True
    _add(engine, h)
    runtime.sync(engine, "pay")
    conn = _connector(h)
    conn.install()
    with unit_of_work(engine) as s:
        conn_id = s.scalars(select(Item.connection_id)).first()
        assert conn_id is not None
        for i in range(1, 13):
            outbox.enqueue(s, conn_id, f"PAY-{i}", FIELDS, {"forecast_p80": float(i)})
    h.emu.throttle = 7  # a storm: the next seven calls are refused
    for _ in range(20):
        runtime.deliver(engine)
        with unit_of_work(engine) as s:  # let the retries come due at once
            for row in s.scalars(select(WriteIntent).where(WriteIntent.status == "pending")):
                row.next_attempt_at = utcnow() - _dt.timedelta(seconds=1)
            left = s.scalar(select(func.count()).select_from(WriteIntent).where(
                WriteIntent.status != "delivered"))
        if not left:
            break
    assert left == 0
    p80 = next(f["id"] for f in h.emu.fields if f["name"] == "learnloop Forecast P80")
    assert all(h.emu.issues[f"PAY-{i}"].fields[p80] == float(i) for i in range(1, 13))
    assert sum(h.emu.writes.get(f"PAY-{i}", 0) for i in range(1, 13)) == 12  # once each


def test_the_emulator_is_checked_against_the_official_spec() -> None:
    from tests.emulators.jira import spec

    if not spec.available():
        pytest.skip(f"{spec.SPEC} is not here (a clone without ../shared): spec check skipped")
    assert spec.validate("GET", "/rest/api/2/serverInfo", 200, {"deploymentType": 5})
    assert spec.validate("GET", "/rest/api/2/not-a-route", 200, {})
    h = JiraHarness(n=3)
    conn = _connector(h)
    list(conn.pull(None))
    conn.install()
    assert h.emu.spec_errors == [] and len(h.emu.requests) > 3


def test_emulator_webhooks_are_signed_like_jiras() -> None:
    import hashlib
    import hmac
    import json as _json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got: list[tuple[bytes, str]] = []

    class Receiver(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((raw, self.headers.get("X-Hub-Signature", "")))
            self.send_response(200)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        h = JiraHarness(n=2)
        h.emu.admin = True
        conn = _connector(h)
        from connectors.jira.client import writer

        client = writer(conn.config)
        client.post("rest/webhooks/1.0/webhook", data={
            "name": "learnloop", "url": f"http://127.0.0.1:{server.server_address[1]}/hook",
            "events": ["jira:issue_updated"], "secret": "s3cret"})
        conn.deliver([Intent(1, "PAY-1", FIELDS, {"forecast_p80": 2.0})])
        (raw, signature), = got
        expected = hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
        assert signature == f"sha256={expected}"
        event = _json.loads(raw)
        assert event["webhookEvent"] == "jira:issue_updated" and event["issue"]["key"] == "PAY-1"
    finally:
        server.shutdown()
        server.server_close()


def test_timeouts_fail_cleanly_and_are_retried(engine: Engine) -> None:
    h = JiraHarness(n=3)
    h.emu.admin = True
    _add(engine, h)
    conn = _connector(h, timeout_seconds=1)
    conn.install()
    h.emu.delay = 1.6
    try:
        with pytest.raises(ConnectorError):
            run_sync(engine, "pay", _connector(h, timeout_seconds=1))
        (res,) = conn.deliver([Intent(1, "PAY-1", FIELDS, {"forecast_p80": 1.0})])
        assert not res.ok and not res.permanent
    finally:
        h.emu.delay = 0.0
    assert run_sync(engine, "pay", _connector(h)).created == 3
