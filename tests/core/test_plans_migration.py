"""Migration 0004 on a store made at revision 0003 with data: committed plans, nothing lost."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from alembic import command
from sqlalchemy import MetaData, func, select
from sqlalchemy.engine import Engine

from core.model import Deviation, Event, Item
from core.store import alembic_config, make_engine, migrate, unit_of_work

T0 = dt.datetime(2025, 3, 3, 9, 0)  # naive UTC, as the store holds it
UTC = dt.UTC


def _at_0003(url: str) -> tuple[Engine, dict[str, int]]:
    engine = make_engine(url)
    command.upgrade(alembic_config(engine), "0003")
    meta = MetaData()
    meta.reflect(engine)
    t = meta.tables
    common = {"config": {}, "mapping": {}, "scope": {}, "health": "ok", "created_at": T0}
    item = {"kind": "Story", "title": "", "segments": {"project": "PAY"}, "unit": "hours",
            "deleted": False, "raw": {}, "created_at": T0, "updated_at": T0 + dt.timedelta(days=5),
            **dict.fromkeys(("planned_start", "planned_due", "planned_estimate", "planned_amount",
                             "estimated_at", "actual_start", "actual_end", "actual_effort"))}
    with engine.begin() as c:
        c.execute(t["connections"].insert(), [
            {"id": 1, "kind": "jira", "name": "pay", **common},
            {"id": 2, "kind": "file", "name": "plan", **common}])
        c.execute(t["items"].insert(), [
            {**item, "id": 1, "connection_id": 1, "external_id": "PAY-1", "status": "done",
             "planned_due": dt.datetime(2025, 3, 14), "planned_estimate": 2.0,
             "actual_start": T0 + dt.timedelta(days=1), "actual_end": T0 + dt.timedelta(days=3),
             "actual_effort": 2.0, "estimated_at": T0 - dt.timedelta(days=1)},
            {**item, "id": 2, "connection_id": 1, "external_id": "PAY-2", "status": "open",
             "planned_due": dt.datetime(2025, 3, 20), "planned_estimate": 1.0},
            {**item, "id": 3, "connection_id": 2, "external_id": "F-1", "status": "done",
             "planned_due": dt.datetime(2025, 2, 1), "planned_estimate": 4.0,
             "actual_end": dt.datetime(2025, 2, 3), "actual_effort": 6.0,
             "planned_amount": 100.0}])
        c.execute(t["events"].insert(), [
            {"connection_id": 1, "item_id": 1, "external_id": "PAY-1:1:0",
             "occurred_at": T0, "kind": "due_date_moved", "actor": "dev", "actor_kind": "human",
             "attributes": {"from": "2025-03-05", "to": "2025-03-10"}},
            {"connection_id": 1, "item_id": 1, "external_id": "PAY-1:2:0",
             "occurred_at": T0 + dt.timedelta(days=1), "kind": "status_changed",
             "actor": "dev", "actor_kind": "human",
             "attributes": {"from": "To Do", "to": "In Progress"}},
            {"connection_id": 1, "item_id": 1, "external_id": "PAY-1:3:0",
             "occurred_at": T0 + dt.timedelta(days=2), "kind": "due_date_moved", "actor": "dev",
             "actor_kind": "human", "attributes": {"from": "2025-03-10", "to": "2025-03-14"}},
            {"connection_id": 1, "item_id": 1, "external_id": "PAY-1:3:1",
             "occurred_at": T0 + dt.timedelta(days=2), "kind": "estimate_changed",
             "actor": "dev", "actor_kind": "human", "attributes": {"from": "3600", "to": "7200"}}])
        slip_now = (dt.datetime(2025, 3, 6, 9) - dt.datetime(2025, 3, 14)).total_seconds() / 86400
        c.execute(t["deviations"].insert(), [
            {"item_id": 1, "measure": "effort_ratio", "planned": 2.0, "actual": 2.0,
             "value": 1.0, "computed_at": T0},
            {"item_id": 1, "measure": "slip_days", "planned": 0.0, "actual": slip_now,
             "value": slip_now, "computed_at": T0},
            {"item_id": 3, "measure": "effort_ratio", "planned": 4.0, "actual": 6.0,
             "value": 1.5, "computed_at": T0}])
        counts = {name: int(c.execute(select(func.count()).select_from(table)).scalar_one())
                  for name, table in t.items() if name != "alembic_version"}
    return engine, counts


def test_upgrade_from_0003_keeps_everything_and_derives_committed_plans(
        empty_url: str) -> None:
    engine, before = _at_0003(empty_url)
    migrate(engine)
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as c:
        after = {name: int(c.execute(select(func.count()).select_from(meta.tables[name]))
                           .scalar_one()) for name in before}
    assert after == {**before, "deviations": before["deviations"] + 4}
    with unit_of_work(engine) as s:
        items: dict[str, Any] = {i.external_id: i for i in s.scalars(select(Item))}
        pay1, pay2, f1 = items["PAY-1"], items["PAY-2"], items["F-1"]
        assert pay1.committed_at == dt.datetime(2025, 3, 4, 9, tzinfo=UTC)  # when it started
        assert pay1.committed_plan == {
            "planned_start": None, "planned_due": "2025-03-10T00:00:00+00:00",
            "planned_estimate": 1.0, "planned_amount": None, "planned_probability": None}
        assert (pay1.planned_due, pay1.planned_estimate) == (
            dt.datetime(2025, 3, 14, tzinfo=UTC), 2.0)  # the current plan is untouched
        assert pay2.committed_plan is None and pay2.committed_at is None  # not started yet
        assert f1.committed_plan is not None
        assert f1.committed_plan["planned_due"] == "2025-02-01T00:00:00+00:00"
        assert f1.committed_plan["planned_amount"] == 100.0
        events = {e.external_id: e for e in s.scalars(select(Event))}
        assert events["PAY-1:3:0"].kind == "plan_changed"
        assert events["PAY-1:3:0"].attributes["field"] == "planned_due"
        assert events["PAY-1:3:0"].attributes["from"] == "2025-03-10T00:00:00+00:00"
        assert events["PAY-1:3:1"].attributes == {
            "field": "planned_estimate", "from": 1.0, "to": 2.0, "from_text": "3600",
            "to_text": "7200", "source": "jira changelog"}
        assert events["PAY-1:2:0"].kind == "status_changed"
        assert events["PAY-1:2:0"].actor == "dev"
        devs = {(d.item_id, d.measure, d.against): d for d in s.scalars(select(Deviation))}
    assert {k: d.value for k, d in devs.items() if k[2] == "current"} == {
        (1, "effort_ratio", "current"): 1.0,
        (1, "slip_days", "current"): pytest.approx(-7.625),
        (3, "effort_ratio", "current"): 1.5}  # the stored rows, measured against the last plan
    assert devs[(1, "effort_ratio", "committed")].value == pytest.approx(2.0)
    done = dt.datetime(2025, 3, 6, 9, tzinfo=UTC)
    assert devs[(1, "slip_days", "committed")].value == pytest.approx(
        (done - dt.datetime(2025, 3, 10, tzinfo=UTC)).total_seconds() / 86400)
    assert devs[(3, "effort_ratio", "committed")].value == pytest.approx(1.5)
    assert devs[(3, "slip_days", "committed")].value == pytest.approx(2.0)
    engine.dispose()
