"""Faults mid-sync and mid-delivery: expired sessions (REST, Bulk 2.0, Metadata API), the
daily quota, failed Bulk jobs, 503s and 429s, malformed records, fields deleted under us.
Nothing is lost and nothing is written twice."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from connectors.salesforce import SalesforceConfig, SalesforceConnector
from connectors.salesforce.client import QuotaPaused
from core.connections import add_connection
from core.contract import FIELDS, Intent
from core.errors import LearnloopError
from core.model import Connection, Event, Item, QuarantinedRow
from core.store import unit_of_work
from core.sync import run_sync
from tests.connectors.salesforce.harness import SalesforceHarness


def _connector(h: SalesforceHarness, **over: Any) -> SalesforceConnector:
    return SalesforceConnector(SalesforceConfig(**{**h.config(), **over}), h.mapping())


def _add(engine: Engine, h: SalesforceHarness, mapping: dict[str, Any] | None = None) -> None:
    with unit_of_work(engine) as s:
        add_connection(s, SalesforceConnector, "sf", h.config(), mapping or h.mapping())


def _stored(engine: Engine) -> tuple[int, int]:
    with unit_of_work(engine) as s:
        return (s.scalar(select(func.count()).select_from(Item)) or 0,
                s.scalar(select(func.count()).select_from(Event)) or 0)


def _ids(batches: list[Any]) -> list[str]:
    return sorted(i.external_id for b in batches for i in b.items)


def test_sessions_expiring_mid_sync_sign_in_again_for_rest_and_bulk() -> None:
    h = SalesforceHarness(n=30)
    clean = _ids(list(_connector(h).pull(None)))
    h.emu.expire_after = 1  # after one more call every session is dead
    conn = _connector(h)
    assert _ids(list(conn.pull(None))) == clean
    assert conn.org.logins == 2
    bulk = _connector(h, bulk_threshold=10)
    h.emu.fail_on(r"GET /services/data/v[\d.]+/jobs/query/\w+/results", 401, 1)
    h.emu.expire_after = 6
    assert _ids(list(bulk.pull(None))) == clean
    assert bulk.org.logins >= 2 and any(c.status == 401 and "/jobs/query/" in c.path
                                        for c in h.emu.calls)
    h.emu.expire_sessions()  # the Metadata API answers a SOAP fault, not a 401
    assert bulk.install().created
    assert bulk.org.logins >= 3
    assert h.unexpected() == []


def test_the_daily_quota_hit_mid_sync_stops_and_resumes_without_loss(engine: Engine) -> None:
    h = SalesforceHarness(n=30)
    _add(engine, h)
    h.emu.quota_after = 1  # the composite, then the allowance is gone (at the history call)
    with pytest.raises(LearnloopError, match="daily API allowance is used up"):
        run_sync(engine, "sf", _connector(h))
    partial = _stored(engine)
    with unit_of_work(engine) as s:
        conn = s.scalars(select(Connection)).one()
        assert conn.cursor["paused"] is True and conn.health == "error"
    assert 0 < partial[0] < 3 + 30 * 4
    h.emu.daily_used = 0  # the next slot
    before = h.emu.api_calls()
    run_sync(engine, "sf", _connector(h))
    assert h.emu.api_calls() - before >= 2  # /limits first, then the composite
    assert any(c.path.endswith("/limits/") or c.path.endswith("/limits")
               for c in h.emu.calls[-40:])
    stored = _stored(engine)
    assert stored[0] == 3 + 30 * 4
    again = run_sync(engine, "sf", _connector(h))
    assert again.created == again.events == 0 and _stored(engine) == stored
    assert h.unexpected() == []


def test_the_quota_guard_stops_at_its_share_in_plain_words() -> None:
    h = SalesforceHarness(n=3)
    h.emu.daily_used = 90_000
    conn = _connector(h, quota_share=0.8, quota_pause_minutes=30)
    batches = []
    with pytest.raises(QuotaPaused) as err:
        for batch in conn.pull(None):
            batches.append(batch)
    assert "90,001 of 100,000 daily API requests used, the quota guard's share is 80%" in \
        str(err.value) and "resumes in 30 minutes" in str(err.value)
    assert err.value.retry_after == 1800
    assert batches[-1].cursor is not None and batches[-1].cursor["paused"] is True
    results = conn.deliver([Intent(1, f"opportunity:{h.ids['opportunities'][0]}", FIELDS,
                                   {"risk": "high"})])
    assert not results[0].ok and results[0].retry_after == 1800 and not results[0].permanent


def test_503s_and_429s_are_waited_out() -> None:
    h = SalesforceHarness(n=10)
    clean = _ids(list(_connector(h).pull(None)))
    h.emu.fail_503 = 3
    h.emu.fail_429 = 2
    conn = _connector(h)
    assert _ids(list(conn.pull(None))) == clean
    assert sum(1 for c in h.emu.calls if c.status in (429, 503)) == 5
    h.emu.fail_on(r"PATCH /services/data/v[\d.]+/composite/sobjects", 503, 2)
    conn.install()
    target = f"opportunity:{h.ids['opportunities'][0]}"
    assert conn.deliver([Intent(1, target, FIELDS, {"insight": "kept"})])[0].ok
    assert h.emu.get("Opportunity", h.ids["opportunities"][0])["Learnloop_Insight__c"] == "kept"
    assert h.unexpected() == []


def test_a_failed_bulk_job_is_read_again_through_rest() -> None:
    h = SalesforceHarness(n=30)
    clean = _ids(list(_connector(h).pull(None)))
    h.emu.bulk.fail_next = 3
    assert _ids(list(_connector(h, bulk_threshold=10).pull(None))) == clean
    assert sum(1 for j in h.emu.bulk.jobs.values() if j.state == "Failed") == 3
    assert h.unexpected() == []


def test_malformed_records_are_quarantined_and_the_rest_is_kept(engine: Engine) -> None:
    h = SalesforceHarness(n=4)
    h.emu.add("Opportunity", {"Name": "bad", "StageName": "Prospecting", "CloseDate": "soon"})
    h.emu.add("Task", {"Subject": "no date", "Status": "Open",
                       "WhatId": h.ids["opportunities"][0]}, created="2026-01-01T00:00:00Z")
    _add(engine, h)
    report = run_sync(engine, "sf", _connector(h))
    assert report.quarantined == 1 and report.created == 3 + 4 * 4
    with unit_of_work(engine) as s:
        row = s.scalars(select(QuarantinedRow)).one()
        assert "unreadable close date 'soon'" in row.reason


def test_a_field_deleted_under_us(engine: Engine) -> None:
    h = SalesforceHarness(n=4)
    h.emu.add_custom_field("Opportunity", "Region__c", "string")
    _add(engine, h, {"segments": ["Region__c"]})
    conn = SalesforceConnector(SalesforceConfig(**h.config()), {"segments": ["Region__c"]})
    conn.install()
    target = f"opportunity:{h.ids['opportunities'][1]}"
    assert conn.deliver([Intent(1, target, FIELDS, {"insight": "first"})])[0].ok
    h.emu.delete_field("Opportunity", "Learnloop_Insight__c")  # by an admin, under us
    h.emu.delete_field("Opportunity", "Region__c")
    result = conn.deliver([Intent(1, target, FIELDS, {"insight": "second"})])[0]
    assert result.ok
    assert h.emu.get("Opportunity", h.ids["opportunities"][1])["Learnloop_Insight__c"] == \
        "second"
    assert sum(1 for f in h.emu.schema["Opportunity"].fields
               if f.startswith("Learnloop_Insight")) == 1
    report = run_sync(engine, "sf", conn)
    assert report.created == 3 + 4 * 4
    assert [p.locator for p in report.problems] == ["Opportunity.Region__c"]
    assert h.unexpected() == []


def test_an_expired_query_locator_is_read_again_from_the_last_stored_record() -> None:
    h = SalesforceHarness(n=1)
    h.emu.seed_pipeline(4500, accounts=5, histories=1, modstamp="2026-02-01T00:00:00Z")
    seen: list[str] = []
    for batch in _connector(h).pull(None):
        got = [i.external_id for i in batch.items if i.kind == "opportunity"]
        if got and not seen:
            h.emu.cursors.clear()  # the next page's locator is gone (INVALID_QUERY_LOCATOR)
        seen += got
    assert len(seen) == len(set(seen)) == 4501
    assert any(c.status == 400 and "/query/01g" in c.path for c in h.emu.calls)
    assert h.unexpected() == []
