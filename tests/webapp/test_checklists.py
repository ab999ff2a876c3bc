"""Checklists over HTTP: a change the tool cannot make is done by a person, checked off, applied."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core import outbox, policy
from core.model import Activity, Connection, Proposal, Template, WriteIntent
from core.store import unit_of_work
from tests.fakes import FakeConfig, FakeConnector, FakeTool
from tests.webapp.test_web import _client, _token, app_engine  # noqa: F401  (a fixture)
from webapp.app import create_app

STEP = "Set the estimate of 'fix' from 8 to 16 (P80, P50 12; rule effort:type=Bug)."
SHOWN = str(escape(STEP))  # as Jinja shows it


@dataclass
class Accepted:
    proposal_id: int
    intent_id: int
    tool: FakeTool


def _deliver(engine: Engine, tool: FakeTool) -> outbox.DeliveryReport:
    return outbox.deliver(engine, lambda _c: FakeConnector(
        FakeConfig(template_checklist=True), tool=tool))


@pytest.fixture
def accepted(app_engine: Engine) -> Accepted:  # noqa: F811
    """A proposal accepted over the API whose template lives in a tool that answers with a
    checklist (as HubSpot sequences with a private-app token), delivered once."""
    with unit_of_work(app_engine) as s:
        conn = Connection(kind="fake", name="crm")
        s.add(conn)
        s.flush()
        s.add(Template(name="Sprint", connection_id=conn.id, external_id="tpl-1", body={
            "tasks": [{"name": "fix", "segments": {"type": "Bug"}, "estimate": 8}]}))
        prop = policy.propose(s, key="effort:type=Bug", selector={"type": "Bug"},
                              params={"p50": 1.5, "p80": 2.0, "p90": 2.5, "n": 40},
                              hypothesis="Bugs take 1.5x their estimate (n=40)",
                              evidence={"n": 40}, title="Bugs: plan for 2.0x")
        assert prop is not None
        proposal_id = prop.id
    api = TestClient(create_app(app_engine))
    owner = _token(app_engine, "template_owner")
    r = api.post(f"/api/proposals/{proposal_id}/accept", headers=owner, json={})
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    tool = FakeTool()
    report = _deliver(app_engine, tool)
    assert report.as_dict() == {"delivered": 0, "retrying": 0, "dead": 0, "checklist": 1}
    with unit_of_work(app_engine) as s:
        (intent,) = s.scalars(select(WriteIntent))
        return Accepted(proposal_id, intent.id, tool)


def _status(engine: Engine, proposal_id: int) -> str:
    api = TestClient(create_app(engine))
    r = api.get(f"/api/proposals/{proposal_id}", headers=_token(engine, "viewer"))
    return str(r.json()["status"])


def test_a_checklist_keeps_the_proposal_accepted_until_an_owner_marks_it_done(
        app_engine: Engine, accepted: Accepted) -> None:  # noqa: F811
    with unit_of_work(app_engine) as s:
        row = s.get_one(WriteIntent, accepted.intent_id)
        assert row.status == "checklist" and row.checklist is not None
        assert row.checklist[0] == "Open the project template 'Sprint' in the fake tool's 'tpl-1'."
        assert STEP in row.checklist and row.checked_by is None
    assert accepted.tool.writes == [] and accepted.tool.templates == {}  # nothing pretended
    assert _status(app_engine, accepted.proposal_id) == "accepted"

    viewer, owner = _client(app_engine, "viewer"), _client(app_engine, "template_owner")
    page = viewer.get(f"/proposals/{accepted.proposal_id}")
    assert page.status_code == 200 and SHOWN in page.text
    assert "mark done</button>" not in page.text  # a viewer sees the steps, not the button
    page = owner.get(f"/proposals/{accepted.proposal_id}")
    assert SHOWN in page.text and f'id="done-{accepted.intent_id}"' in page.text
    listed = owner.get("/checklists")
    assert SHOWN in listed.text and f"proposal #{accepted.proposal_id}" in listed.text

    path = f"/checklists/{accepted.intent_id}/done"
    assert viewer.post(path, data={"csrf_token": _csrf(viewer, "/checklists")}).status_code == 403
    assert owner.post(path, data={"back": "proposal"}).status_code == 403  # no CSRF token
    assert _status(app_engine, accepted.proposal_id) == "accepted"
    r = owner.post(path, data={"back": "proposal", "csrf_token": _csrf(owner, "/checklists")},
                   follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(
        f"/proposals/{accepted.proposal_id}?msg=")
    assert _status(app_engine, accepted.proposal_id) == "applied"
    page = owner.get(f"/proposals/{accepted.proposal_id}")
    assert "Checked off by template_owner@example.com" in page.text
    assert "Nothing to do by hand" in owner.get("/checklists").text
    with unit_of_work(app_engine) as s:
        row = s.get_one(WriteIntent, accepted.intent_id)
        assert (row.status, row.checked_by) == ("checked", "template_owner@example.com")
        assert row.checked_at is not None
        (logged,) = s.scalars(select(Activity).where(Activity.action == "checked off a checklist"))
        assert (logged.actor, logged.subject_type, logged.subject_id) == (
            "template_owner@example.com", "proposal", str(accepted.proposal_id))
        assert logged.detail["checklist"] == accepted.intent_id

    api = TestClient(create_app(app_engine))
    again = api.post(f"/api/checklists/{accepted.intent_id}/done",
                     headers=_token(app_engine, "template_owner"))
    assert again.status_code == 409 and "already checked off by template_owner" in again.text


def test_the_api_marks_a_checklist_done_and_a_viewer_may_not(
        app_engine: Engine, accepted: Accepted) -> None:  # noqa: F811
    api = TestClient(create_app(app_engine))
    viewer, owner = _token(app_engine, "viewer"), _token(app_engine, "template_owner")
    (open_one,) = api.get("/api/checklists", headers=viewer).json()
    assert open_one["id"] == accepted.intent_id and STEP in open_one["steps"]
    assert open_one["proposal_id"] == accepted.proposal_id and open_one["status"] == "checklist"
    path = f"/api/checklists/{accepted.intent_id}/done"
    r = api.post(path, headers=viewer)
    assert r.status_code == 403 and "template owner" in r.json()["detail"]
    assert api.post("/api/checklists/999999/done", headers=owner).status_code == 404
    r = api.post(path, headers=owner)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["checked_by"] == "template_owner@example.com" and body["status"] == "checked"
    assert body["proposal_status"] == "applied"
    assert api.get("/api/checklists", headers=viewer).json() == []
    with unit_of_work(app_engine) as s:
        assert s.get_one(Proposal, accepted.proposal_id).status == "applied"


def test_redelivering_a_checklist_intent_does_not_duplicate_it(
        app_engine: Engine, accepted: Accepted) -> None:  # noqa: F811
    with unit_of_work(app_engine) as s:
        row = s.get_one(WriteIntent, accepted.intent_id)
        steps, key, digest = list(row.checklist or []), row.idempotency_key, row.payload_hash
        # the worker that delivered it died before settling: its claim is retaken
        row.status, row.claimed_at = "delivering", row.created_at - outbox.CLAIM_TIMEOUT * 2
        policy_payload = dict(row.payload)
    assert _deliver(app_engine, accepted.tool).checklist == 1
    with unit_of_work(app_engine) as s:
        (row,) = s.scalars(select(WriteIntent))
        assert (row.id, row.status, row.checklist) == (accepted.intent_id, "checklist", steps)
        outbox.enqueue(s, row.connection_id, row.target, row.surface, policy_payload, key=key)
    with unit_of_work(app_engine) as s:
        (row,) = s.scalars(select(WriteIntent))
        assert row.status == "checklist" and row.attempts == 2  # the same payload: left as is
    api = TestClient(create_app(app_engine))
    owner = _token(app_engine, "template_owner")
    assert api.post(f"/api/checklists/{accepted.intent_id}/done", headers=owner).status_code == 200
    with unit_of_work(app_engine) as s:  # a late worker settling the same payload again
        assert outbox._settle_checklist(s, accepted.intent_id, steps, None, digest) == "checklist"
    with unit_of_work(app_engine) as s:
        (row,) = s.scalars(select(WriteIntent))
        assert (row.status, row.checked_by) == ("checked", "template_owner@example.com")
    assert _deliver(app_engine, accepted.tool).as_dict() == {
        "delivered": 0, "retrying": 0, "dead": 0}  # a checked-off checklist is never claimed
    assert _status(app_engine, accepted.proposal_id) == "applied"
    assert accepted.tool.writes == []


def _csrf(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)
