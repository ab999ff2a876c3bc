"""Plan baselines: committed vs current plan, re-planning events, deviations against both."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.file import FileConnector
from core import plans
from core.connections import add_connection, build_connector
from core.errors import ConfigError
from core.learning.run import run_learning
from core.model import Connection, Deviation, Event, Finding, Item
from core.store import unit_of_work
from core.sync import run_sync
from tests.core.plans_data import MAP, write_plan

UTC = dt.UTC


def _file(engine: Engine, path: Path, name: str = "plan",
          scope: dict[str, Any] | None = None) -> None:
    with unit_of_work(engine) as s:
        conn = add_connection(s, FileConnector, name, {"path": str(path)}, MAP)
        conn.scope = scope or {}


def _sync(engine: Engine, name: str = "plan") -> Any:
    with unit_of_work(engine) as s:
        conn = s.scalars(select(Connection).where(Connection.name == name)).one()
        connector = build_connector(conn, FileConnector)
    return run_sync(engine, name, connector)


def _devs(engine: Engine, key: str) -> dict[tuple[str, str], float]:
    with unit_of_work(engine) as s:
        rows = s.execute(select(Deviation.measure, Deviation.against, Deviation.value)
                         .join(Item, Item.id == Deviation.item_id)
                         .where(Item.external_id == key))
        return {(m, a): v for m, a, v in rows}


def test_three_syncs_keep_the_committed_plan_and_one_replanning_event(
        engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    write_plan(path, 1)
    _file(engine, path)
    assert _sync(engine).created == 6
    write_plan(path, 2)
    second = _sync(engine)
    assert (second.updated, second.events) == (1, 1)
    write_plan(path, 3)
    third = _sync(engine)
    assert (third.updated, third.events) == (1, 0)
    with unit_of_work(engine) as s:
        item = s.scalars(select(Item).where(Item.external_id == "P-1")).one()
        committed = plans.committed_plan(item)
        assert committed is not None
        assert committed["planned_due"] == dt.datetime(2025, 3, 20, tzinfo=UTC)
        assert item.planned_due == dt.datetime(2025, 3, 30, tzinfo=UTC)
        assert item.committed_at == dt.datetime(2025, 3, 1, tzinfo=UTC)  # when work started
        (event,) = s.scalars(select(Event).where(Event.item_id == item.id)).all()
        assert event.kind == "plan_changed"
        assert event.attributes["field"] == "planned_due"
        assert event.attributes["from"] == "2025-03-20T00:00:00+00:00"
        assert event.attributes["to"] == "2025-03-30T00:00:00+00:00"
    devs = _devs(engine, "P-1")
    assert devs[("slip_days", "committed")] == pytest.approx(10.0)
    assert devs[("slip_days", "current")] == pytest.approx(0.0)
    assert devs[("effort_ratio", "committed")] == devs[("effort_ratio", "current")] == 9 / 8
    assert _devs(engine, "P-2")[("slip_days", "committed")] == pytest.approx(0.0)

    with unit_of_work(engine) as s:  # re-read everything: no duplicate event, same plans
        s.scalars(select(Connection)).one().cursor = None
    again = _sync(engine)
    assert (again.updated, again.events) == (0, 0)
    assert _devs(engine, "P-1") == devs


def test_an_open_item_not_started_has_no_committed_plan_until_the_rule_says(
        engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    path.write_text("Key,Summary,Team,Estimate,Spent,Start,Due,Done,Status\n"
                    "N-1,not started,PAY,3,,,2025-04-01,,Open\n")
    _file(engine, path)
    _file(engine, path, "seen", scope={"commit_on": "first_seen"})
    _sync(engine)
    _sync(engine, "seen")
    with unit_of_work(engine) as s:
        by_conn = {c: (i.committed_plan, i.committed_at) for i, c in s.execute(
            select(Item, Connection.name).join(Connection))}
    assert by_conn["plan"] == (None, None)
    plan, at = by_conn["seen"]
    assert plan is not None and plan["planned_due"] == "2025-04-01T00:00:00+00:00"
    assert plan["planned_estimate"] == 3.0 and at is not None


def test_a_bad_commit_rule_fails_the_sync_with_one_clear_message(
        engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    write_plan(path, 1)
    _file(engine, path, scope={"commit_on": {"task": "whenever"}})
    with pytest.raises(ConfigError, match="commit_on rule 'whenever' for kind 'task'"):
        _sync(engine)


def _item(**values: Any) -> Item:
    base: dict[str, Any] = {"kind": "task", "status": "open", "created_at":
                            dt.datetime(2025, 1, 10, tzinfo=UTC)}
    return Item(**{**base, **values})


def test_commit_rules_per_kind() -> None:
    now = dt.datetime(2025, 6, 1, tzinfo=UTC)
    start = dt.datetime(2025, 2, 1, tzinfo=UTC)
    assert plans.rule_for({}, "Bug") == "start"
    assert plans.rule_for({}, "Deal") == "creation"
    assert plans.rule_for({"commit_on": {"deal": "stage:Commit", "*": "first_seen"}},
                          "deal") == "stage:Commit"
    assert plans.rule_for({"commit_on": {"deal": "stage:Commit", "*": "first_seen"}},
                          "task") == "first_seen"
    task = _item(actual_start=start)
    assert plans.commitment_time(task, "start", [], now) == start
    assert plans.commitment_time(_item(), "start", [], now) is None
    assert plans.commitment_time(_item(status="done"), "start", [], now) == now
    reopened = _item(committed_at=start)
    assert plans.commitment_time(reopened, "start", [], now) == start  # stays committed
    deal = _item(kind="deal", estimated_at=dt.datetime(2025, 1, 5, tzinfo=UTC))
    assert plans.commitment_time(deal, "creation", [], now) == deal.estimated_at
    stages = [(dt.datetime(2025, 3, 1, tzinfo=UTC), "Qualified"),
              (dt.datetime(2025, 4, 1, tzinfo=UTC), "commit")]
    assert plans.commitment_time(deal, "stage:Commit", stages, now) == stages[1][0]
    assert plans.commitment_time(deal, "stage:Closing", stages, now) is None
    changes = [(dt.datetime(2025, 3, 15, tzinfo=UTC), "a"),
               (dt.datetime(2025, 2, 15, tzinfo=UTC), "b")]
    assert plans.value_at(dt.datetime(2025, 3, 1, tzinfo=UTC), "now", changes) == "a"
    assert plans.value_at(dt.datetime(2025, 1, 1, tzinfo=UTC), "now", changes) == "b"
    assert plans.value_at(dt.datetime(2025, 4, 1, tzinfo=UTC), "now", changes) == "now"


def test_win_probability_can_be_mapped_and_is_checked(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    path.write_text("Id,Kind,Deal,Amount,Chance,Close\nD-1,deal,big,1000,70%,2025-05-01\n"
                    "D-2,deal,small,200,0.4,2025-05-02\nD-3,deal,odd,50,150,2025-05-03\n")
    with unit_of_work(engine) as s:
        add_connection(s, FileConnector, "deals", {"path": str(path)},
                       {"id": "Id", "kind": "Kind", "title": "Deal", "planned_amount": "Amount",
                        "planned_probability": "Chance", "planned_due": "Close"})
    report = _sync(engine, "deals")
    assert report.created == 2
    (problem,) = report.problems
    assert "column 'Chance'" in problem.reason and "between 0 and 1" in problem.reason
    with unit_of_work(engine) as s:
        got = dict(s.execute(select(Item.external_id, Item.planned_probability)).all())
    assert got == {"D-1": pytest.approx(0.7), "D-2": pytest.approx(0.4)}


def _moving_plan(path: Path, version: int) -> None:
    """12 PAY items in progress, 8 of them pushed 5 days then finished late; 12 WEB on plan."""
    rows = ["Key,Summary,Team,Estimate,Spent,Start,Due,Done,Status"]
    for i in range(24):
        team = "PAY" if i < 12 else "WEB"
        moved = team == "PAY" and i < 8
        due = dt.date(2025, 3, 10) + dt.timedelta(days=i % 5)
        done, status, spent = "", "In progress", ""
        if moved and version >= 2:
            due += dt.timedelta(days=5)
        if version >= 3:
            late = (1 + i % 3) if moved else 0
            done, status, spent = str(due + dt.timedelta(days=late)), "Done", "5"
        rows.append(f"{team}-{i},task {i},{team},4,{spent},2025-03-01,{due},{done},{status}")
    path.write_text("\n".join(rows) + "\n")


def test_learning_finds_where_plans_move_and_how_much_slip_it_hid(
        engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    for version in (1, 2, 3):
        _moving_plan(path, version)
        if version == 1:
            _file(engine, path)
        _sync(engine)
    report = run_learning(engine)
    assert any("re-planning" in f["statement"] for f in report.findings)
    with unit_of_work(engine) as s:
        found = s.scalars(select(Finding).where(Finding.kind == "replanning")).all()
    (pay,) = found  # WEB's plans never moved: nothing to say about them
    assert pay.segment == {"Team": "PAY"} and pay.measure == "planned_due" and pay.n == 12
    assert pay.effect == pytest.approx(8 / 12)
    assert pay.interval_low < 8 / 12 < pay.interval_high
    hidden = pay.evidence["hidden"]
    slips = [5 + 1 + i % 3 for i in range(8)]
    assert hidden["n"] == 8 and hidden["share"] == pytest.approx(40 / sum(slips))
    assert f"{40 / sum(slips):.0%} of the slip was hidden by re-planning" in pay.statement
    assert "0.7 times per item" in pay.statement and "n=12" in pay.statement
    assert pay.q_value < 0.05  # PAY moved, WEB did not
