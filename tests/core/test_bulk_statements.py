"""Statements the store runs do not grow with the rows: sync inserts and outbox settles in bulk
(counted with SQLAlchemy's `before_cursor_execute`, as benchmarks/runtime_counts.py does)."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from core import outbox
from core.contract import COMMENT, FIELDS
from core.model import Connection, Deviation, Event, Item, WriteIntent
from core.store import unit_of_work
from core.sync import run_sync
from tests.fakes import FakeConfig, FakeConnector, FakeTool


@contextmanager
def counting(engine: Engine) -> Iterator[collections.Counter[str]]:
    """Counts statements by their verb and table ("INSERT items", "UPDATE", "SELECT")."""
    seen: collections.Counter[str] = collections.Counter()

    def count(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        seen[f"{words[0]} {words[2]}" if words[0] == "INSERT" else words[0]] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _connection(engine: Engine, name: str) -> int:
    with unit_of_work(engine) as s:
        conn = Connection(kind="fake", name=name)
        s.add(conn)
        s.flush()
        return conn.id


def test_a_sync_inserts_items_events_and_deviations_in_batches(engine: Engine) -> None:
    counts, events = [], 0
    for n in (40, 400):
        _connection(engine, f"tool-{n}")
        connector = FakeConnector(FakeConfig(items=n, batch_size=n), tool=FakeTool())
        with counting(engine) as seen:
            report = run_sync(engine, f"tool-{n}", connector)
        assert report.created == n and report.events > n
        counts.append(seen)
        events += report.events
    small, large = counts
    for table in ("items", "events", "deviations"):
        assert large[f"INSERT {table}"] == small[f"INSERT {table}"] <= 3, (table, large)
    assert sum(large.values()) < 20  # lookups go 500 ids a statement; every insert is batched
    with unit_of_work(engine) as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 440
        assert s.scalar(select(func.count()).select_from(Event)) == events
        assert s.scalar(select(func.count()).select_from(Deviation)) > 0
        item = s.scalars(select(Item).where(Item.external_id == "F-5")).first()
        assert item is not None and item.kind == "task" and item.deleted is False


def test_settling_deliveries_takes_the_same_few_updates_per_chunk(engine: Engine) -> None:
    """One claim, then per chunk one settle (plus one executemany for failures), whatever
    the chunk holds; against a fast tool the chunks double (20, 40, 80, ...), so the
    statements grow with the log of the number delivered."""
    updates: dict[int | None, list[int]] = {}
    chunks: dict[int | None, list[int]] = {}
    for chunk in (None, 500):
        for n, failure_rate in ((30, 0.0), (300, 0.0), (300, 0.5)):
            cid = _connection(engine, f"tool-{n}-{failure_rate}-{chunk}")
            tool = FakeTool()
            connector = FakeConnector(FakeConfig(items=n, failure_rate=failure_rate), tool=tool)
            with unit_of_work(engine) as s:
                outbox.enqueue_many(s, [
                    (cid, f"F-{i + 1}", FIELDS, {"forecast_p80": float(i)}, None) if i % 2 else
                    (cid, f"F-{i + 1}", COMMENT, {"text": f"note {i}"}, None)
                    for i in range(n)])
            extra = {"chunk": chunk} if chunk else {}
            with counting(engine) as seen:
                report = outbox.deliver(engine, lambda _c, c=connector: c, connection_id=cid,
                                        **extra)
            assert report.delivered + report.retrying == n and report.dead == 0
            updates.setdefault(chunk, []).append(seen["UPDATE"])
            chunks.setdefault(chunk, []).append(tool.calls)  # one connector call per chunk
            with unit_of_work(engine) as s:
                rows = s.scalars(select(WriteIntent)
                                 .where(WriteIntent.connection_id == cid)).all()
            assert sum(r.status == "delivered" for r in rows) == report.delivered
            assert all(r.tool_ref for r in rows if r.status == "delivered")
            assert all(r.attempts == 1 and r.last_error for r in rows if r.status == "pending")
    # one claim, one settle per chunk (two with failures); against this fast tool 20 + 10
    # and 20 + 40 + 80 + 160 (a chunk grows at most 2x, and shrinks only if it took > 0.5 s)
    calls = chunks[None]
    assert updates[None] == [1 + calls[0], 1 + calls[1], 1 + 2 * calls[2]]
    assert calls[0] == 2 and all(4 <= c <= 8 for c in calls[1:])
    # one chunk: one claim and one settle, whatever the number; failures add one executemany
    assert updates[500] == [2, 2, 3] and chunks[500] == [1, 1, 1]
