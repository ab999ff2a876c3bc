"""Sync: upserts without duplicates, resumable after a crash, deletions, quarantine, deviations."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from core.connections import add_connection, build_connector
from core.contract import Batch, ItemRecord, Problem
from core.model import Connection, Deviation, Event, Item, JobRun, QuarantinedRow
from core.store import unit_of_work
from core.sync import run_sync
from tests.fakes import FakeConfig, FakeConnector


def _count(engine: Engine, model: Any, *where: Any) -> int:
    with unit_of_work(engine) as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _connector(engine: Engine, **knobs: Any) -> FakeConnector:
    with unit_of_work(engine) as s:
        conn = s.scalar(select(Connection).where(Connection.name == "fake"))
        if conn is None:
            conn = add_connection(s, FakeConnector, "fake", {}, {"id": "key"})
    return FakeConnector(FakeConfig(**knobs), {"id": "key"})


def test_first_sync_stores_items_events_deviations_and_second_changes_nothing(engine: Engine) -> None:
    report = run_sync(engine, "fake", _connector(engine, items=10))
    assert (report.created, report.updated, report.events) == (10, 0, 10)
    assert _count(engine, Item) == 10 and _count(engine, Event) == 10
    with unit_of_work(engine) as s:
        item = s.scalars(select(Item).where(Item.external_id == "F-1")).one()
        dev = s.scalars(select(Deviation).where(Deviation.item_id == item.id,
                                                Deviation.measure == "effort_ratio")).one()
        assert item.actual_effort is not None and item.planned_estimate is not None
        assert dev.value == pytest.approx(item.actual_effort / item.planned_estimate)
        slip = s.scalars(select(Deviation).where(Deviation.item_id == item.id,
                                                 Deviation.measure == "slip_days")).one()
        assert item.actual_end is not None and item.planned_due is not None
        assert slip.value == pytest.approx((item.actual_end - item.planned_due).days)
    with unit_of_work(engine) as s:
        s.get_one(Connection, 1).cursor = None
    again = run_sync(engine, "fake", _connector(engine, items=10))
    assert (again.created, again.updated, again.unchanged, again.events) == (0, 0, 10, 0)
    assert _count(engine, Item) == 10 and _count(engine, Event) == 10
    assert _count(engine, JobRun, JobRun.status == "ok") == 2


def test_crash_mid_sync_loses_nothing_and_duplicates_nothing(engine: Engine) -> None:
    broken = _connector(engine, items=10, batch_size=3, fail_pull_after=2)
    with pytest.raises(RuntimeError, match="went away"):
        run_sync(engine, "fake", broken)
    assert _count(engine, Item) == 6
    with unit_of_work(engine) as s:
        conn = s.scalars(select(Connection)).one()
        assert conn.cursor == {"offset": 6}
        assert conn.health == "error" and "went away" in (conn.last_error or "")
    assert _count(engine, JobRun, JobRun.status == "error") == 1
    report = run_sync(engine, "fake", _connector(engine, items=10, batch_size=3))
    assert report.created == 4
    assert _count(engine, Item) == 10 and _count(engine, Event) == 10


class _Snapshot:
    """A tool that lists every live item each time, with one bad row."""

    def __init__(self, ids: list[str], bad: bool = True) -> None:
        self.ids, self.bad = ids, bad

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        problems = [Problem("plan.csv row 9", "column 'Due': unparseable date 'x'")] \
            if self.bad else []
        yield Batch(items=[ItemRecord(i, planned_estimate=1.0) for i in self.ids],
                    problems=problems, snapshot=True)


def test_snapshot_marks_missing_items_deleted_and_quarantine_is_kept_once(engine: Engine) -> None:
    _connector(engine)
    run_sync(engine, "fake", _Snapshot(["a", "b", "c"]))  # type: ignore[arg-type]
    run_sync(engine, "fake", _Snapshot(["a", "b", "c"]))  # type: ignore[arg-type]
    assert _count(engine, QuarantinedRow) == 1
    report = run_sync(engine, "fake", _Snapshot(["a", "c"], bad=False))  # type: ignore[arg-type]
    assert report.deleted == 1
    assert _count(engine, Item, Item.deleted.is_(True)) == 1
    assert _count(engine, QuarantinedRow) == 0  # fixed at the source: no longer reported
    report = run_sync(engine, "fake", _Snapshot(["a", "b", "c"], bad=False))  # type: ignore[arg-type]
    assert report.updated == 1 and _count(engine, Item, Item.deleted.is_(True)) == 0


def test_build_connector_applies_env_overrides(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEARNLOOP_FAKE__ITEMS", "3")
    with unit_of_work(engine) as s:
        conn = add_connection(s, FakeConnector, "env", {"items": 7}, {"id": "key"})
        connector = build_connector(conn, FakeConnector)
    assert connector.config.items == 3  # type: ignore[attr-defined]
