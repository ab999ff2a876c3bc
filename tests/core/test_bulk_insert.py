"""`core.bulk.insert_rows` stores exactly what SQLAlchemy's own executemany stores."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Table, delete, insert, select

from core.bulk import insert_rows
from core.model import Connection, Forecast, Item, WriteIntent
from core.store import unit_of_work

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=dt.UTC)
# The same instant in another zone, and 01:30 on the night New York's clocks went back,
# before and after the fold: equal as Python values, not the same time.
PARIS = NOW.astimezone(ZoneInfo("Europe/Paris"))
EARLY = dt.datetime(2025, 11, 2, 1, 30, tzinfo=ZoneInfo("America/New_York"))
LATE = EARLY.replace(fold=1)
TEXT = "1.6\u00d7 \u2013 \u201cquoted\u201d"  # not ASCII: stored as the JSON type writes it


def _forecasts(item_id: int) -> list[dict[str, Any]]:
    times = [NOW, PARIS, EARLY, LATE, NOW, dt.datetime(2026, 3, 1, 12)]  # the last one naive
    return [{"item_id": item_id, "run_id": None, "measure": "effort", "model_version": "m",
             "segment": f"team=é{i}", "planned": 2.0, "issued_at": when, "p50": 1.0 + i,
             "p80": 1e-300 if i == 2 else 2.5, "p90": None, "p95": None, "probability": None}
            for i, when in enumerate(times)]


def _intents(conn_id: int, item_id: int, prefix: str) -> list[dict[str, Any]]:
    return [{"connection_id": conn_id, "item_id": item_id, "target": f"T-{i}",
             "surface": "fields", "idempotency_key": f"{prefix}:{i}",
             "payload": {"insight": TEXT, "p80": 0.1 * i, "nested": [None, True]},
             "payload_hash": "h", "status": "pending", "attempts": 0,
             "next_attempt_at": NOW, "created_at": PARIS} for i in range(3)]


def _stored(engine: Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with engine.connect() as c:
        forecasts = [tuple(r)[1:] for r in c.execute(
            select(Forecast.__table__).order_by(Forecast.id))]
        intents = [tuple(r)[1:] for r in c.execute(
            select(WriteIntent.__table__).order_by(WriteIntent.id))]
    return forecasts, [(*r[:4], r[4].split(":")[1], *r[5:]) for r in intents]


def test_insert_rows_stores_what_the_ordinary_executemany_stores(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        conn = Connection(kind="bulk", name="bulk")
        s.add(conn)
        s.flush()
        item = Item(connection_id=conn.id, external_id="B-1", kind="task", title="",
                    segments={}, status="open", raw={})
        s.add(item)
        s.flush()
        conn_id, item_id = conn.id, item.id
    forecasts, intents = cast(Table, Forecast.__table__), cast(Table, WriteIntent.__table__)
    with engine.begin() as c:
        c.execute(insert(forecasts), _forecasts(item_id))
        c.execute(insert(intents), _intents(conn_id, item_id, "a"))
    expected = _stored(engine)
    with engine.begin() as c:
        c.execute(delete(forecasts))
        c.execute(delete(intents))
        insert_rows(c, forecasts, _forecasts(item_id))
        insert_rows(c, intents, _intents(conn_id, item_id, "b"))
        insert_rows(c, intents, [])
    got = _stored(engine)
    assert got == expected
    times = [r[3] for r in got[0]]
    assert times[0] == times[1] and times[2] != times[3]  # the fold kept apart
    assert got[1][0][5] == {"insight": TEXT, "p80": 0.0, "nested": [None, True]}


def test_insert_rows_fills_python_defaults_the_rows_leave_out(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        conn = Connection(kind="bulk", name="defaults")
        s.add(conn)
        s.flush()
        conn_id = conn.id
    with engine.begin() as c:
        insert_rows(c, cast(Table, WriteIntent.__table__), [
            {"connection_id": conn_id, "item_id": None, "target": "page", "surface": "insights",
             "idempotency_key": f"{conn_id}:page:insights", "payload_hash": "h"}])
    with unit_of_work(engine) as s:
        row = s.scalars(select(WriteIntent).where(WriteIntent.connection_id == conn_id)).one()
        assert (row.payload, row.status, row.attempts) == ({}, "pending", 0)
        assert row.created_at is not None and row.next_attempt_at is not None
