"""The outbox: upserts, edits in place, retries honouring Retry-After, nothing lost."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core import outbox
from core.contract import COMMENT, FIELDS, Connector
from core.model import Connection, WriteIntent, utcnow
from core.store import open_store, unit_of_work
from tests.fakes import FakeConfig, FakeConnector, FakeTool


def _setup(engine: Engine) -> int:
    with unit_of_work(engine) as s:
        conn = Connection(kind="fake", name="fake")
        s.add(conn)
        s.flush()
        return conn.id


def _factory(tool: FakeTool, **knobs: object):
    def build(_conn: Connection) -> Connector:
        return FakeConnector(FakeConfig(**knobs), {"id": "key"}, tool=tool)  # type: ignore[arg-type]
    return build


def _rows(engine: Engine) -> list[WriteIntent]:
    with unit_of_work(engine) as s:
        return list(s.scalars(select(WriteIntent).order_by(WriteIntent.id)))


def test_same_payload_twice_is_one_write(engine: Engine) -> None:
    cid, tool = _setup(engine), FakeTool()
    for _ in range(2):
        with unit_of_work(engine) as s:
            outbox.enqueue(s, cid, "F-1", FIELDS, {"forecast_p80": 5.0})
        outbox.deliver(engine, _factory(tool))
    assert len(_rows(engine)) == 1 and tool.fields == {"F-1": {"forecast_p80": 5.0}}
    assert tool.calls == 1


def test_changed_comment_is_edited_in_place(engine: Engine) -> None:
    cid, tool = _setup(engine), FakeTool()
    for text in ("first", "second"):
        with unit_of_work(engine) as s:
            outbox.enqueue(s, cid, "F-1", COMMENT, {"text": text})
        report = outbox.deliver(engine, _factory(tool))
        assert report.delivered == 1
    assert tool.comments == {"F-1": {"c1": "second"}}
    assert _rows(engine)[0].tool_ref == "c1"


def test_failures_retry_with_retry_after_then_die(engine: Engine) -> None:
    cid, tool = _setup(engine), FakeTool()
    with unit_of_work(engine) as s:
        outbox.enqueue(s, cid, "F-1", FIELDS, {"x": 1})
    before = utcnow()
    report = outbox.deliver(engine, _factory(tool, failure_rate=1.0, retry_after=120.0))
    assert report.retrying == 1
    (row,) = _rows(engine)
    assert row.status == "pending" and row.attempts == 1 and row.last_error == "fake 503"
    assert row.next_attempt_at - before >= dt.timedelta(seconds=119)
    for _ in range(outbox.MAX_ATTEMPTS):
        with unit_of_work(engine) as s:
            s.get_one(WriteIntent, row.id).next_attempt_at = utcnow() - dt.timedelta(seconds=1)
        outbox.deliver(engine, _factory(tool, failure_rate=1.0))
    (row,) = _rows(engine)
    assert row.status == "dead" and row.attempts == outbox.MAX_ATTEMPTS
    with unit_of_work(engine) as s:  # a new payload revives a dead intent
        outbox.enqueue(s, cid, "F-1", FIELDS, {"x": 2})
    assert outbox.deliver(engine, _factory(tool)).delivered == 1


def test_a_crashing_connector_loses_nothing(engine: Engine) -> None:
    cid = _setup(engine)
    with unit_of_work(engine) as s:
        outbox.enqueue(s, cid, "F-1", FIELDS, {"x": 1})

    def broken(_conn: Connection) -> Connector:
        raise ConnectionError("tool down")

    report = outbox.deliver(engine, broken)
    assert report.retrying == 1
    (row,) = _rows(engine)
    assert row.status == "pending" and "tool down" in (row.last_error or "")


def test_payload_changed_during_delivery_is_written_again(engine: Engine) -> None:
    cid, tool = _setup(engine), FakeTool()
    with unit_of_work(engine) as s:
        outbox.enqueue(s, cid, "F-1", FIELDS, {"v": "old"})
    base = _factory(tool)

    def racing(conn: Connection) -> Connector:
        connector = base(conn)
        with unit_of_work(engine) as s:  # a learning run updates the payload meanwhile
            outbox.enqueue(s, cid, "F-1", FIELDS, {"v": "new"})
        return connector

    assert outbox.deliver(engine, racing).retrying == 1
    assert tool.fields["F-1"] == {"v": "old"}
    assert outbox.deliver(engine, base).delivered == 1
    assert tool.fields["F-1"] == {"v": "new"}


def test_concurrent_claims_never_share_an_intent(engine: Engine, db_url: str) -> None:
    cid = _setup(engine)
    with unit_of_work(engine) as s:
        for i in range(200):
            outbox.enqueue(s, cid, f"F-{i}", FIELDS, {"i": i})
    if engine.dialect.name != "postgresql":
        first = outbox.claim(engine, 500, worker="a")
        assert len(first) == 200 and outbox.claim(engine, 500, worker="b") == []
        return
    results: dict[str, list[int]] = {}
    engines = [open_store(db_url) for _ in range(4)]

    def grab(name: str, eng: Engine) -> None:
        got: list[int] = []
        while True:
            ids = outbox.claim(eng, 7, worker=name)
            if not ids:
                break
            got += ids
        results[name] = got

    threads = [threading.Thread(target=grab, args=(f"w{i}", e)) for i, e in enumerate(engines)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [i for ids in results.values() for i in ids]
    assert len(claimed) == 200 and len(set(claimed)) == 200
    assert sum(1 for ids in results.values() if ids) >= 2
    for e in engines:
        e.dispose()


@pytest.mark.parametrize("n", [3])
def test_enqueue_many_matches_enqueue(engine: Engine, n: int) -> None:
    cid = _setup(engine)
    with unit_of_work(engine) as s:
        assert outbox.enqueue_many(s, [(cid, f"F-{i}", FIELDS, {"i": i}, None) for i in range(n)]) == n
    with unit_of_work(engine) as s:
        assert outbox.enqueue_many(s, [(cid, f"F-{i}", FIELDS, {"i": i}, None) for i in range(n)]) == 0
        assert outbox.enqueue_many(s, [(cid, "F-0", FIELDS, {"i": 99}, None)]) == 1
