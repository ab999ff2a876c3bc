"""The Salesforce connector through simple-salesforce against the strict emulator: sign-in,
sync (mapping, commit stage, cursor, deletes, Bulk 2.0), fields, Tasks and templates."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.salesforce import SalesforceConfig, SalesforceConnector
from connectors.salesforce.client import SalesforceError
from core.connections import add_connection
from core.contract import FIELDS, NOTE, TEMPLATE, Intent
from core.model import Enrollment, Event, Item, ItemLink
from core.store import unit_of_work
from core.sync import run_sync
from tests.connectors.salesforce.harness import COMMIT, DAY, T0, SalesforceHarness


def _connector(h: SalesforceHarness, **over: Any) -> SalesforceConnector:
    return SalesforceConnector(SalesforceConfig(**{**h.config(), **over}), h.mapping())


def _add(engine: Engine, h: SalesforceHarness, name: str = "sf",
         scope: dict[str, Any] | None = None, **over: Any) -> None:
    with unit_of_work(engine) as s:
        add_connection(s, SalesforceConnector, name, {**h.config(), **over}, h.mapping(),
                       scope=scope)


def _items(batches: list[Any]) -> list[Any]:
    return [i for b in batches for i in b.items]


def test_sync_maps_opportunities_accounts_activities_campaigns_and_cadences(
        engine: Engine) -> None:
    h = SalesforceHarness()
    _add(engine, h)
    kept = _connector(h)
    report = run_sync(engine, "sf", kept)
    assert report.quarantined == 0
    assert report.created == 3 + 12 + 12 + 12 + 12  # accounts, contacts, opps, members, steps
    opps, accounts = h.ids["opportunities"], h.ids["accounts"]
    with unit_of_work(engine) as s:
        items = {i.external_id: i for i in s.scalars(select(Item))}
        won = items[f"opportunity:{opps[0]}"]
        assert won.kind == "opportunity" and won.status == "done" and won.outcome == "won"
        assert won.actual_amount == pytest.approx(1200.0)
        assert won.segments == {"type": "New Business", "lead_source": "Web",
                                "forecast_category": "Closed", "owner": "Learnloop Integration"}
        lost = items[f"opportunity:{opps[3]}"]
        assert lost.outcome == "lost" and lost.actual_amount is None
        assert lost.actual_end == T0 + 3 * DAY + 30 * DAY + 21 * DAY - dt.timedelta(hours=9)
        open_opp = items[f"opportunity:{opps[2]}"]
        assert open_opp.status == "open" and open_opp.planned_probability == pytest.approx(0.75)
        account = items[f"account:{accounts[0]}"]
        assert account.segments == {"industry": "finance", "employee_band": "51-200",
                                    "billing_country": "DE"}
        links = {(lk.from_external_id, lk.relation, lk.to_external_id)
                 for lk in s.scalars(select(ItemLink))}
        assert (f"opportunity:{opps[0]}", "company", f"account:{accounts[0]}") in links
        assert (f"contact:{h.ids['contacts'][1]}", "company", f"account:{accounts[1]}") in links
        member = items[f"campaign-member:{h.ids['members'][1]}"]
        assert member.kind == "enrollment" and member.outcome == "responded"
        step = items[f"step-tracker:{h.ids['trackers'][0]}"]
        assert step.status == "done" and step.outcome == "replied"
        enrollments = {e.test: e for e in s.scalars(select(Enrollment))}
        cadence = enrollments["cadence Outbound Q1 step Intro email"]
        assert cadence.random and cadence.expected_split == {"A": 0.5, "B": 0.5}
        assert "campaign Spring webinar" in enrollments
        kinds = {(e.kind, (e.attributes or {}).get("field")) for e in s.scalars(select(Event))}
        assert kinds == {("status_changed", None), ("plan_changed", "planned_due"),
                         ("plan_changed", "planned_amount"),
                         ("plan_changed", "planned_probability"), ("activity", None)}
    before = h.emu.api_calls()
    again = run_sync(engine, "sf", kept)
    assert again.created == again.updated == again.events == 0
    assert h.emu.api_calls() - before == 1  # a sync with no change: one composite call
    assert h.unexpected() == []


def test_the_committed_plan_is_the_one_at_the_commit_stage(engine: Engine) -> None:
    h = SalesforceHarness(n=4)
    _add(engine, h, scope={"commit_on": {"opportunity": f"stage:{COMMIT}"}})
    run_sync(engine, "sf", _connector(h))
    opp = h.ids["opportunities"][1]  # created T0+1d, committed T0+6d, pushed a week at 11d
    with unit_of_work(engine) as s:
        item = s.scalars(select(Item).where(Item.external_id == f"opportunity:{opp}")).one()
        assert item.committed_at == T0 + 6 * DAY
        assert item.committed_plan is not None
        committed = dt.datetime.fromisoformat(item.committed_plan["planned_due"])
        assert committed.date() == (T0 + DAY + 30 * DAY).date()
        assert item.planned_due is not None
        assert item.planned_due.date() == (T0 + DAY + 37 * DAY).date()
        assert item.committed_plan["planned_amount"] == pytest.approx(2000.0)
        assert item.committed_plan["planned_probability"] == pytest.approx(0.75)
        assert item.planned_amount == pytest.approx(2400.0)


def test_an_edit_is_read_from_the_watermark_and_deletes_through_query_all(
        engine: Engine) -> None:
    h = SalesforceHarness(n=4)
    _add(engine, h)
    kept = _connector(h)
    run_sync(engine, "sf", kept)
    opp = h.ids["opportunities"][2]
    h.emu.edit("Opportunity", opp, {"StageName": "Closed Won"})
    h.emu.delete("Opportunity", h.ids["opportunities"][3])
    before = h.emu.api_calls()
    report = run_sync(engine, "sf", kept)
    assert report.updated >= 1 and report.created == 0 and report.deleted == 1
    assert report.events == 1  # the new OpportunityHistory row's stage change
    assert h.emu.api_calls() - before == 2  # the composite, and the changed page's history
    with unit_of_work(engine) as s:
        items = {i.external_id: i for i in s.scalars(select(Item))}
        assert items[f"opportunity:{opp}"].outcome == "won"
        assert items[f"opportunity:{h.ids['opportunities'][3]}"].deleted
    assert h.unexpected() == []


def test_a_bulk_load_sharing_one_timestamp_resumes_without_loss_or_duplicates() -> None:
    h = SalesforceHarness(n=1)
    h.emu.seed_pipeline(4500, accounts=5, histories=2, modstamp="2026-02-01T00:00:00Z")
    conn = _connector(h)
    pages = conn.pull(None)
    seen: list[str] = []
    cursor = None
    for batch in pages:  # stop after the first page of opportunities, as a crash would
        seen += [i.external_id for i in batch.items if i.kind == "opportunity"]
        cursor = batch.cursor
        if seen:
            break
    assert cursor is not None and cursor["streams"]["opportunities"]["done"] is False
    resumed = list(conn.pull(cursor))
    seen += [i.external_id for i in _items(resumed) if i.kind == "opportunity"]
    assert len(seen) == len(set(seen)) == 4501
    assert h.unexpected() == []


def test_above_the_threshold_bulk_2_reads_the_same_items_with_rest_fallbacks() -> None:
    h = SalesforceHarness(n=30)
    rest = sorted((i.external_id, i.planned_due, i.status) for i in _items(list(
        _connector(h).pull(None))))
    bulk = _connector(h, bulk_threshold=10)
    jobs = len(h.emu.bulk.jobs)
    got = sorted((i.external_id, i.planned_due, i.status) for i in _items(list(bulk.pull(None))))
    assert got == rest
    assert len(h.emu.bulk.jobs) - jobs >= 4  # contacts, opportunities, tasks, events, ...
    h.emu.bulk.unsupported = {"Task", "CampaignMember"}
    h.emu.bulk.fail_next = 1
    assert sorted((i.external_id, i.planned_due, i.status) for i in _items(list(
        _connector(h, bulk_threshold=10).pull(None)))) == rest
    assert h.unexpected() == []


def test_an_org_without_sales_engagement_is_read_without_cadences() -> None:
    h = SalesforceHarness(n=3)
    h.emu.sales_engagement = False
    items = _items(list(_connector(h).pull(None)))
    assert items and not any(i.external_id.startswith("step-tracker:") for i in items)
    assert any(i.kind == "opportunity" for i in items)
    assert h.unexpected() == []


def test_client_credentials_and_the_password_fallback_warn_in_one_line(
        caplog: pytest.LogCaptureFixture) -> None:
    h = SalesforceHarness(n=1)
    cc = _connector(h, private_key=None, consumer_secret=h.emu.consumer_secret)
    assert cc.check().ok
    fallback = {**h.config(), "private_key": None, "password": h.emu.password,
                "security_token": h.emu.security_token, "api_version": "59.0"}
    with caplog.at_level(logging.WARNING):
        health = SalesforceConnector(SalesforceConfig(**fallback)).check()
    assert health.ok and "retires username/password" in health.message
    warned = [r.getMessage() for r in caplog.records if "retires" in r.getMessage()]
    assert warned and all("\n" not in w for w in warned)
    too_new = SalesforceConnector(SalesforceConfig(**{**fallback, "api_version": "65.0"}))
    health = too_new.check()
    assert not health.ok and "INVALID_OPERATION" in health.message
    assert h.emu.password not in health.message


def test_a_refused_sign_in_is_plain_and_carries_no_secret() -> None:
    from tests.emulators.salesforce import tls

    h = SalesforceHarness(n=1)
    other = tls._make("someone-else", san_ip=False)[0]
    health = _connector(h, private_key=other).check()
    assert not health.ok and "refused learnloop's sign-in (JWT bearer)" in health.message
    assert "invalid assertion" in health.message and "PRIVATE KEY" not in health.message
    with pytest.raises(ValidationError, match="My Domain"):
        SalesforceConfig(domain="https://.salesforce.com", private_key=h.emu.keys.private_key_pem)
    with pytest.raises(ValidationError, match="must be a PEM private key"):
        SalesforceConfig(domain="acme.my", private_key="not a key", consumer_key="k",
                         username="u")
    pasted = " ".join(h.emu.keys.private_key_pem.split("\n"))  # a one-line form field
    health = _connector(h, private_key=pasted).check()
    assert health.ok, health.message
    with pytest.raises(ValidationError, match="client credentials need the org's My Domain"):
        SalesforceConfig(domain="login", consumer_key="k", consumer_secret="s")


def test_install_is_idempotent_and_a_missing_permission_is_one_line() -> None:
    h = SalesforceHarness(n=1)
    conn = _connector(h)
    first = conn.install()
    assert "Opportunity.Learnloop_Win_Probability__c" in first.created
    assert conn.install().created == []
    assert [f.id for f in conn.discover_fields() if f.id.startswith("Learnloop_")]
    h.emu.reset()
    h.emu.metadata.denied = True
    with pytest.raises(SalesforceError) as err:
        conn.install()
    assert str(err.value) == (
        "the Salesforce user learnloop signs in as lacks the permission to create custom "
        "fields and grant them to itself (it needs Modify Metadata or Customize Application, "
        "and Assign Permission Sets; see the connector's README)")
    assert h.unexpected() == []


def _fields(n: int, marker: str, risk: str = "medium") -> dict[str, Any]:
    return {"forecast_finish_p80": "2026-04-01", "risk": risk, "insight": f"{marker} {n}",
            "win_probability": 0.425}


def test_fields_go_200_a_call_and_a_failed_record_is_retried_alone() -> None:
    h = SalesforceHarness(n=1)
    ids = h.emu.seed_pipeline(450, accounts=3, histories=1)
    conn = _connector(h)
    conn.install()
    h.emu.record_errors[ids[7]] = ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access "
                                   "to this record", 1)
    intents = [Intent(n, f"opportunity:{rid}", FIELDS, _fields(n, "x")) for n, rid in
               enumerate(ids, 1)]
    before = h.emu.api_calls()
    results = conn.deliver(intents)
    assert all(r.ok for r in results) and len(results) == 450
    assert h.emu.api_calls() - before == 4  # 3 collections, and the locked record alone
    assert h.emu.get("Opportunity", ids[7])["Learnloop_Insight__c"] == "x 8"
    assert h.emu.get("Opportunity", ids[-1])["Learnloop_Slip_Risk__c"] == "medium"
    assert h.emu.get("Opportunity", ids[0])["Learnloop_P80_Close_Date__c"] == "2026-04-01"
    assert h.emu.get("Opportunity", ids[0])["Learnloop_Win_Probability__c"] == 42.5
    assert h.unexpected() == []


def _note(risk: str, marker: str) -> dict[str, Any]:
    return {"kind": "task", "reason": "risk", "status": "open", "risk": risk,
            "subject": f"learnloop: risk is {risk}", "body": f"Deal slipping [{marker}]"}


def test_one_completed_task_per_risk_change_never_repeated() -> None:
    h = SalesforceHarness(n=2)
    conn = _connector(h)
    target = f"opportunity:{h.ids['opportunities'][1]}"
    first = conn.deliver([Intent(1, target, NOTE, _note("high", "a"))])[0]
    again = conn.deliver([Intent(1, target, NOTE, _note("high", "a"))])[0]  # ref lost
    assert first.ok and again.tool_ref == first.tool_ref and len(h.tasks(target)) == 1
    task = h.tasks(target)[0]
    assert task["Status"] == "Completed" and task["IsClosed"] is True
    changed = conn.deliver([Intent(1, target, NOTE, _note("medium", "b"), first.tool_ref)])[0]
    assert changed.ok and changed.tool_ref != first.tool_ref and len(h.tasks(target)) == 2
    conn.deliver([Intent(1, target, NOTE, _note("medium", "c"), changed.tool_ref)])
    assert len(h.tasks(target)) == 2 and "[c]" in h.read_back(target, NOTE)
    assert h.unexpected() == []


def _template(version: int, variant: str | None, segment: str = "segment all") -> dict[str, Any]:
    rows = [{"name": segment, "variant": variant, "rule": "playbook:t:all"}] if variant else []
    return {"name": "Outbound Q1", "version": version, "kind": "sequence", "rendered": rows,
            "why": "proposal #3 accepted by owner@example.com: B replies 1.5x (n=240)"}


def test_playbooks_write_email_templates_and_cadence_splits_or_checklists() -> None:
    h = SalesforceHarness(n=2)
    conn = _connector(h)
    intro, efficient = h.ids["templates"]
    done = conn.deliver([Intent(1, f"email-template:{intro}", TEMPLATE,
                                _template(2, "Intro B"))])[0]
    assert done.ok and done.checklist is None
    now = h.emu.get("EmailTemplate", intro)
    assert now["Subject"] == "Running lean" and now["Body"] == "Operational efficiency first."
    assert now["Name"] == "Intro A (learnloop v2)" and "B replies 1.5x" in now["HtmlValue"]
    step = h.ids["step"][0]
    split = conn.deliver([Intent(2, f"cadence-step:{step}", TEMPLATE, _template(2, "B"))])[0]
    assert split.ok and split.tool_ref == f"cadence-step:{step}"
    shares = {v["Name"]: v["SplitPercentage"] for v in h.emu.records("ActionCadenceStepVariant")}
    assert shares == {"A": 10, "B": 90}
    variants = len(h.emu.records("ActionCadenceStepVariant"))
    again = conn.deliver([Intent(2, f"cadence-step:{step}", TEMPLATE, _template(2, "B"))])[0]
    assert again.ok and again.tool_ref == split.tool_ref  # delivered twice: the same split
    assert len(h.emu.records("ActionCadenceStepVariant")) == variants
    assert {v["Name"]: v["SplitPercentage"]
            for v in h.emu.records("ActionCadenceStepVariant")} == shares
    h.emu.variant_testing = False
    listed = conn.deliver([Intent(3, f"cadence-step:{step}", TEMPLATE, _template(3, "A"))])[0]
    assert listed.ok and listed.checklist is not None
    assert any("variant 'A' to 90%, variant 'B' to 10%" in step_ for step_ in listed.checklist)
    h.emu.edit("EmailTemplate", efficient, {"IsBuilderContent": True})
    built = conn.deliver([Intent(4, f"email-template:{efficient}", TEMPLATE,
                                 _template(4, "Intro A"))])[0]
    assert built.ok and built.checklist and "Intro A" in " ".join(built.checklist)
    assert h.unexpected() == []


def test_the_lookback_rereads_only_what_may_have_committed_late() -> None:
    from connectors.salesforce.reads import bound

    ten = dt.timedelta(minutes=10)
    last = {"stamp": "2026-03-01T12:00:00.000+0000", "id": "0065g0000000009AAA", "done": True}
    assert bound(last, ten) == "SystemModstamp >= 2026-03-01T11:50:00.000Z"  # no query time
    soon = {**last, "queried": "2026-03-01T12:04:00+00:00"}
    assert bound(soon, ten) == "SystemModstamp >= 2026-03-01T11:54:00.000Z"
    later = {**last, "queried": "2026-03-02T08:00:00+00:00"}  # everything had committed
    assert bound(later, ten) == ("(SystemModstamp > 2026-03-01T12:00:00.000Z OR (SystemModstamp"
                                 " = 2026-03-01T12:00:00.000Z AND Id > '0065g0000000009AAA'))")
    assert bound({**last, "done": False}, ten) == bound(later, ten)
    assert bound({}, ten) is None
