"""Sync: upserts without duplicates, resumable after a crash, deletions, quarantine, deviations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from core.connections import add_connection
from core.contract import Batch, ItemRecord, Problem
from core.model import Connection, Deviation, Event, Item, JobRun, QuarantinedRow
from core.store import unit_of_work
from core.sync import run_sync
from tests.fakes import T0, FakeConfig, FakeConnector, FakeTool, events_of

DAY = 86400.0


def _count(engine: Engine, model: Any, *where: Any) -> int:
    with unit_of_work(engine) as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _connector(engine: Engine, tool: FakeTool | None = None, **knobs: Any) -> FakeConnector:
    """The stored connection "fake" (added once) and a connector over `tool`."""
    with unit_of_work(engine) as s:
        if s.scalar(select(Connection.id).where(Connection.name == "fake")) is None:
            add_connection(s, FakeConnector, "fake", {}, {"id": "key"})
    return FakeConnector(FakeConfig(**knobs), {"id": "key"}, tool=tool or FakeTool())


def _forget_cursor(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        s.scalars(select(Connection)).one().cursor = None


def _deviations(engine: Engine, against: str = "current") -> dict[tuple[str, str], float]:
    with unit_of_work(engine) as s:
        rows = s.execute(select(Item.external_id, Deviation.measure, Deviation.value)
                         .join(Item, Item.id == Deviation.item_id)
                         .where(Deviation.against == against))
        return {(ext, measure): value for ext, measure, value in rows}


def test_first_sync_stores_items_events_and_deviations(engine: Engine) -> None:
    connector = _connector(engine, items=10)
    report = run_sync(engine, "fake", connector)
    recs = connector.records()
    n_events = sum(len(events_of(r)) for r in recs)
    assert n_events > 10  # some items had their estimate changed
    assert (report.created, report.updated, report.events, report.batches) == (10, 0, n_events, 3)
    assert _count(engine, Item) == 10 and _count(engine, Event) == n_events
    with unit_of_work(engine) as s:
        item = s.scalars(select(Item).where(Item.external_id == "F-3")).one()
        assert item.segments == recs[2].segments and item.url == "https://fake.example/F-3"
        assert item.planned_at == recs[2].estimated_at == T0 + dt.timedelta(days=2)
        changed = s.scalars(select(Event).where(Event.kind == "estimate_changed",
                                                Event.item_id == item.id)).one()
        assert changed.actor == "bob" and changed.attributes["to"] == recs[2].planned_estimate
        conn = s.scalars(select(Connection)).one()
        assert conn.cursor == {"offset": 10} and conn.health == "ok" and conn.last_sync_at
        run = s.scalars(select(JobRun)).one()
        assert (run.job, run.status, run.connection_id) == ("sync", "ok", conn.id)
        assert run.finished_at and run.stats["created"] == 10 and run.stats["events"] == n_events

    expected: dict[tuple[str, str], float] = {}
    for r in recs:
        if r.status != "done":
            continue
        assert r.actual_effort and r.planned_estimate and r.actual_end and r.planned_due
        expected[(r.external_id, "effort_ratio")] = r.actual_effort / r.planned_estimate
        expected[(r.external_id, "slip_days")] = (r.actual_end - r.planned_due).total_seconds() / DAY
    assert len(expected) == 16  # 8 done items x 2 measures; open items have none
    assert _deviations(engine) == pytest.approx(expected)
    assert _deviations(engine, "committed") == pytest.approx(expected)  # nothing re-planned
    with unit_of_work(engine) as s:
        f1 = recs[0]
        assert f1.actual_effort and f1.planned_estimate
        dev = s.scalars(select(Deviation).join(Item, Item.id == Deviation.item_id).where(
            Item.external_id == "F-1", Deviation.measure == "effort_ratio",
            Deviation.against == "committed")).one()
        assert (dev.planned, dev.actual) == (f1.planned_estimate, f1.actual_effort)


def test_a_second_sync_of_the_same_data_changes_nothing(engine: Engine) -> None:
    tool = FakeTool()
    run_sync(engine, "fake", _connector(engine, tool, items=10))
    with unit_of_work(engine) as s:
        before = {i.external_id: i.updated_at for i in s.scalars(select(Item))}
    caught_up = run_sync(engine, "fake", _connector(engine, tool, items=10))
    assert (caught_up.batches, caught_up.created, caught_up.unchanged) == (0, 0, 0)
    _forget_cursor(engine)  # read everything again
    again = run_sync(engine, "fake", _connector(engine, tool, items=10))
    assert (again.created, again.updated, again.unchanged, again.events) == (0, 0, 10, 0)
    assert _count(engine, Item) == 10 and _count(engine, Deviation) == 2 * 16
    with unit_of_work(engine) as s:
        assert {i.external_id: i.updated_at for i in s.scalars(select(Item))} == before
    assert _count(engine, JobRun, JobRun.status == "ok") == 3


def test_a_change_in_the_tool_updates_the_item_and_its_deviations(engine: Engine) -> None:
    tool = FakeTool()
    run_sync(engine, "fake", _connector(engine, tool, items=5))
    first = tool.items["F-1"].planned_estimate
    assert first is not None and first != 4.0
    tool.change("F-1", actual_effort=12.0, planned_estimate=4.0)
    tool.change("F-2", status="open", actual_effort=None, actual_end=None)
    _forget_cursor(engine)
    report = run_sync(engine, "fake", _connector(engine, tool, items=5))
    assert (report.created, report.updated, report.unchanged) == (0, 2, 3)
    devs = _deviations(engine)
    assert devs[("F-1", "effort_ratio")] == pytest.approx(3.0)
    assert not [k for k in devs if k[0] == "F-2"]  # reopened: no outcome to compare yet
    # The estimate was changed after the plan was committed: against that plan, 12 / first.
    assert _deviations(engine, "committed")[("F-1", "effort_ratio")] == pytest.approx(12 / first)
    assert report.events == 1  # the re-planning, derived from what the first sync stored


def test_a_crash_mid_sync_keeps_what_was_stored_and_resumes(engine: Engine) -> None:
    tool = FakeTool()
    broken = _connector(engine, tool, items=10, batch_size=3, fail_pull_after=2)
    with pytest.raises(RuntimeError, match="went away"):
        run_sync(engine, "fake", broken)
    with unit_of_work(engine) as s:
        assert sorted(s.scalars(select(Item.external_id))) == sorted(
            f"F-{i}" for i in range(1, 7))
        conn = s.scalars(select(Connection)).one()
        assert conn.cursor == {"offset": 6} and conn.last_sync_at is None
        assert conn.health == "error" and conn.last_error == "RuntimeError: fake tool went away mid-sync"
        run = s.scalars(select(JobRun)).one()
        assert run.status == "error" and run.error == conn.last_error
        assert run.stats["created"] == 6 and run.finished_at is not None
    report = run_sync(engine, "fake", _connector(engine, tool, items=10, batch_size=3))
    assert (report.created, report.updated, report.unchanged) == (4, 0, 0)
    n_events = sum(len(events_of(r)) for r in tool.items.values())
    assert _count(engine, Item) == 10 and _count(engine, Event) == n_events
    with unit_of_work(engine) as s:
        conn = s.scalars(select(Connection)).one()
        assert conn.health == "ok" and conn.last_error is None and conn.cursor == {"offset": 10}
        assert sorted(s.scalars(select(JobRun.status))) == ["error", "ok"]


class _Snapshot:
    """A tool that lists every live item each time (like a file), with an optional bad row."""

    def __init__(self, ids: list[str], bad: bool = True) -> None:
        self.ids, self.bad = ids, bad

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        problems = [Problem("plan.csv row 9", "column 'Due': unparseable date 'x'", {"Due": "x"})]
        items = [ItemRecord(i, status="done", planned_estimate=2.0, actual_effort=3.0)
                 for i in self.ids]
        yield Batch(items=items[:2], problems=problems if self.bad else [], snapshot=True)
        yield Batch(items=items[2:], snapshot=True, cursor={"sha": ",".join(self.ids)})


def test_a_snapshot_marks_missing_items_deleted_and_revives_them(engine: Engine) -> None:
    _connector(engine)
    run_sync(engine, "fake", _Snapshot(["a", "b", "c"], bad=False))  # type: ignore[arg-type]
    assert _count(engine, Deviation, Deviation.against == "committed") == 3
    report = run_sync(engine, "fake", _Snapshot(["a", "c"], bad=False))  # type: ignore[arg-type]
    assert (report.deleted, report.unchanged) == (1, 2)
    with unit_of_work(engine) as s:
        assert s.scalars(select(Item.external_id).where(Item.deleted.is_(True))).all() == ["b"]
    assert ("b", "effort_ratio") not in _deviations(engine)  # deleted items leave the stats
    report = run_sync(engine, "fake", _Snapshot(["a", "b", "c"], bad=False))  # type: ignore[arg-type]
    assert (report.created, report.updated, report.deleted) == (0, 1, 0)
    assert _count(engine, Item, Item.deleted.is_(True)) == 0 and _count(engine, Item) == 3
    assert ("b", "effort_ratio") in _deviations(engine)


def test_a_quarantined_row_is_kept_once_until_it_is_fixed(engine: Engine) -> None:
    _connector(engine)
    for _ in range(3):
        report = run_sync(engine, "fake", _Snapshot(["a", "b", "c"]))  # type: ignore[arg-type]
        assert [str(p) for p in report.problems] == [
            "plan.csv row 9: column 'Due': unparseable date 'x'"]
    with unit_of_work(engine) as s:
        row = s.scalars(select(QuarantinedRow)).one()
        assert row.raw == {"Due": "x"} and row.last_seen_at > row.first_seen_at
        run = s.scalars(select(JobRun).order_by(JobRun.id.desc())).first()
        assert run is not None and run.stats["quarantined"] == 1
    run_sync(engine, "fake", _Snapshot(["a", "b", "c"], bad=False))  # type: ignore[arg-type]
    assert _count(engine, QuarantinedRow) == 0  # no longer reported by a full snapshot


class _WithNul:
    """A tool whose export carries a NUL character in one title and one event."""

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        from core.contract import EventRecord

        good = ItemRecord("a", title="fine", status="done", planned_estimate=2.0,
                          actual_effort=3.0)
        bad = ItemRecord("b", title="bro\x00ken", status="done", planned_estimate=2.0,
                         actual_effort=3.0, raw={"Summary": "bro\x00ken"})
        events = [EventRecord("a", "e1", T0, "status_changed", attributes={"to": "Do\x00ne"}),
                  EventRecord("a", "e2", T0, "status_changed", attributes={"to": "Done"})]
        yield Batch(items=[good, bad], events=events, snapshot=True)


def test_nul_characters_quarantine_their_row_and_keep_the_rest(engine: Engine) -> None:
    _connector(engine)
    report = run_sync(engine, "fake", _WithNul())  # type: ignore[arg-type]
    assert (report.created, report.events) == (1, 1)
    assert sorted(p.locator for p in report.problems) == ["b", "e1"]
    assert "NUL" in report.problems[0].reason
    with unit_of_work(engine) as s:
        assert s.scalars(select(Item.external_id)).all() == ["a"]
        rows = {r.locator: r.raw for r in s.scalars(select(QuarantinedRow))}
    assert rows["b"] == {"Summary": "bro\\0ken"} and rows["e1"] == {"to": "Do\\0ne"}
