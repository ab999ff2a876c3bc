"""The outbox: upserts, edits in place, retries honouring Retry-After, nothing lost or doubled."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.engine import Engine

from core import outbox
from core.contract import COMMENT, FIELDS, Connector, Delivery, Intent
from core.model import Connection, WriteIntent, utcnow
from core.store import open_store, unit_of_work
from tests.fakes import FakeConfig, FakeConnector, FakeTool

Build = Callable[[Connection], Connector]


@pytest.fixture
def cid(engine: Engine) -> int:
    with unit_of_work(engine) as s:
        conn = Connection(kind="fake", name="fake")
        s.add(conn)
        s.flush()
        return conn.id


@pytest.fixture
def other(db_url: str) -> Iterator[Engine]:
    """A second engine on the same store: another worker or another process."""
    eng = open_store(db_url)
    yield eng
    eng.dispose()


def _factory(tool: FakeTool, **knobs: Any) -> Build:
    def build(_conn: Connection) -> Connector:
        return FakeConnector(FakeConfig(**knobs), {"id": "key"}, tool=tool)
    return build


def _enqueue(engine: Engine, cid: int, target: str, surface: str, payload: dict[str, Any]) -> None:
    with unit_of_work(engine) as s:
        outbox.enqueue(s, cid, target, surface, payload)


def _rows(engine: Engine) -> list[WriteIntent]:
    with unit_of_work(engine) as s:
        return list(s.scalars(select(WriteIntent).order_by(WriteIntent.id)))


def _make_due(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        s.execute(update(WriteIntent).values(next_attempt_at=utcnow() - dt.timedelta(seconds=1)))


def test_the_same_payload_twice_is_one_row_written_once(engine: Engine, cid: int) -> None:
    tool = FakeTool()
    for _ in range(2):
        _enqueue(engine, cid, "F-1", FIELDS, {"forecast_p80": 5.0, "risk": "high"})
        outbox.deliver(engine, _factory(tool))
    (row,) = _rows(engine)
    assert row.status == "delivered" and row.attempts == 1 and row.delivered_at is not None
    assert tool.fields == {"F-1": {"forecast_p80": 5.0, "risk": "high"}}
    assert tool.writes == [("F-1", FIELDS, "F-1")]
    _enqueue(engine, cid, "F-1", FIELDS, {"risk": "high", "forecast_p80": 5.0})  # same, reordered
    assert outbox.deliver(engine, _factory(tool)).as_dict() == {
        "delivered": 0, "retrying": 0, "dead": 0}


def test_a_changed_comment_is_edited_in_place(engine: Engine, cid: int) -> None:
    tool = FakeTool()
    for text_ in ("Runs 1.8x over plan (n=12)", "Runs 2.1x over plan (n=15)"):
        _enqueue(engine, cid, "F-1", COMMENT, {"text": text_})
        assert outbox.deliver(engine, _factory(tool)).delivered == 1
    assert tool.comments == {"F-1": {"c1": "Runs 2.1x over plan (n=15)"}}
    assert [w[2] for w in tool.writes] == ["c1", "c1"]
    (row,) = _rows(engine)
    assert row.tool_ref == "c1" and row.status == "delivered"


def test_failures_honour_retry_after_then_back_off_then_die(engine: Engine, cid: int) -> None:
    tool = FakeTool()
    _enqueue(engine, cid, "F-1", FIELDS, {"forecast_p80": 1.0})
    before = utcnow()
    report = outbox.deliver(engine, _factory(tool, failure_rate=1.0, retry_after=120.0))
    assert report.retrying == 1
    (row,) = _rows(engine)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "fake 503: try again")
    wait = (row.next_attempt_at - before).total_seconds()
    assert 120 <= wait < 125
    assert outbox.deliver(engine, _factory(tool)).delivered == 0  # not due yet
    for attempt in range(2, outbox.MAX_ATTEMPTS + 1):
        _make_due(engine)
        before = utcnow()
        outbox.deliver(engine, _factory(tool, failure_rate=1.0))
        (row,) = _rows(engine)
        if attempt == 2:  # no Retry-After: exponential backoff from BASE_BACKOFF
            wait = (row.next_attempt_at - before).total_seconds()
            assert outbox.BASE_BACKOFF * 2 <= wait < outbox.BASE_BACKOFF * 2 + 5
    assert row.status == "dead" and row.attempts == outbox.MAX_ATTEMPTS
    assert row.last_error == "fake 503: try again" and tool.writes == []
    _make_due(engine)
    assert outbox.deliver(engine, _factory(tool)).delivered == 0  # dead stays dead
    _enqueue(engine, cid, "F-1", FIELDS, {"forecast_p80": 1.0})  # the next learning run revives it
    assert outbox.deliver(engine, _factory(tool)).delivered == 1
    assert tool.fields == {"F-1": {"forecast_p80": 1.0}}


def test_a_permanent_failure_dies_at_once(engine: Engine, cid: int) -> None:
    _enqueue(engine, cid, "NOPE-1", FIELDS, {"forecast_p80": 1.0})
    assert outbox.deliver(engine, _factory(FakeTool())).dead == 1
    (row,) = _rows(engine)
    assert row.status == "dead" and row.attempts == 1 and "404" in (row.last_error or "")


class _Broken:
    """A connector whose deliver() raises once, then works."""

    def __init__(self, tool: FakeTool) -> None:
        self.fake = FakeConnector(FakeConfig(), tool=tool)
        self.failed = False

    def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
        if not self.failed:
            self.failed = True
            raise ConnectionError("tool down")
        return self.fake.deliver(intents)


def test_a_raising_connector_loses_nothing(engine: Engine, cid: int) -> None:
    tool = FakeTool()
    for i in range(1, 4):
        _enqueue(engine, cid, f"F-{i}", FIELDS, {"forecast_p80": float(i)})

    def cannot_build(_conn: Connection) -> Connector:
        raise RuntimeError("no client")

    assert outbox.deliver(engine, cannot_build).retrying == 3
    assert {r.last_error for r in _rows(engine)} == {"RuntimeError: no client"}
    broken = _Broken(tool)
    _make_due(engine)
    assert outbox.deliver(engine, lambda _c: broken).retrying == 3  # type: ignore[arg-type, return-value]
    rows = _rows(engine)
    assert {(r.status, r.attempts, r.last_error) for r in rows} == {
        ("pending", 2, "ConnectionError: tool down")}
    _make_due(engine)
    assert outbox.deliver(engine, lambda _c: broken).delivered == 3  # type: ignore[arg-type, return-value]
    assert sorted(tool.writes) == [(f"F-{i}", FIELDS, f"F-{i}") for i in range(1, 4)]


def test_a_payload_changed_during_delivery_is_written_again(engine: Engine, cid: int) -> None:
    tool = FakeTool()
    _enqueue(engine, cid, "F-1", COMMENT, {"text": "old"})
    base = _factory(tool)

    def racing(conn: Connection) -> Connector:
        connector = base(conn)
        _enqueue(engine, cid, "F-1", COMMENT, {"text": "new"})  # a learning run, meanwhile
        return connector

    assert outbox.deliver(engine, racing).retrying == 1
    (row,) = _rows(engine)
    assert row.status == "pending" and row.payload == {"text": "new"} and row.tool_ref == "c1"
    assert tool.comments["F-1"] == {"c1": "old"}
    assert outbox.deliver(engine, base).delivered == 1
    assert tool.comments["F-1"] == {"c1": "new"}


def _wait_until_blocked(engine: Engine, seconds: float = 5.0) -> None:
    """Return once some session of this PostgreSQL waits on a lock (on SQLite: a short pause)."""
    if engine.dialect.name != "postgresql":
        time.sleep(0.3)
        return
    deadline = time.monotonic() + seconds
    with engine.connect() as c:
        while time.monotonic() < deadline:
            waiting = c.execute(text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()")).scalar()
            if waiting:
                return
            c.rollback()  # pg_stat_activity is read once per transaction
            time.sleep(0.02)
    raise AssertionError("nobody ever waited for the lock")


def test_a_payload_enqueued_while_settling_is_not_marked_delivered(
        engine: Engine, other: Engine, cid: int) -> None:
    """The settle transaction has written "delivered" and is about to commit when a learning
    run (another engine) repoints the intent; the new payload must stay pending."""
    tool = FakeTool()
    _enqueue(engine, cid, "F-1", FIELDS, {"insight": "old"})
    threads: list[threading.Thread] = []

    def learning_run() -> None:
        with unit_of_work(other) as s:
            outbox.enqueue_many(s, [(cid, "F-1", FIELDS, {"insight": "new"}, None)])

    def before_commit(_conn: Any) -> None:
        if not threads:
            threads.append(threading.Thread(target=learning_run))
            threads[0].start()
            _wait_until_blocked(other)

    def build(conn: Connection) -> Connector:
        event.listen(engine, "commit", before_commit)  # the next commit is the settle's
        return _factory(tool)(conn)

    try:
        outbox.deliver(engine, build)
    finally:
        event.remove(engine, "commit", before_commit)
    threads[0].join()
    (row,) = _rows(engine)
    assert (row.status, row.payload) == ("pending", {"insight": "new"})
    assert outbox.deliver(engine, _factory(tool)).delivered == 1
    assert tool.fields["F-1"] == {"insight": "new"}


def test_a_payload_committed_just_before_settling_is_not_marked_delivered(
        engine: Engine, other: Engine, cid: int) -> None:
    """A learning run (another engine) repoints the intent while it is in the tool and commits
    only once the worker's settle waits for it."""
    tool = FakeTool()
    _enqueue(engine, cid, "F-1", FIELDS, {"insight": "old"})
    in_commit = threading.Event()

    def before_commit(_conn: Any) -> None:
        in_commit.set()
        _wait_until_blocked(engine)

    def learning_run() -> None:
        event.listen(other, "commit", before_commit)
        try:
            with unit_of_work(other) as s:
                outbox.enqueue_many(s, [(cid, "F-1", FIELDS, {"insight": "new"}, None)])
        finally:
            event.remove(other, "commit", before_commit)

    class Racing(FakeConnector):
        def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
            result = super().deliver(intents)
            thread = threading.Thread(target=learning_run)
            thread.start()
            threads.append(thread)
            assert in_commit.wait(5)
            return result

    threads: list[threading.Thread] = []
    outbox.deliver(engine, lambda _c: Racing(FakeConfig(), tool=tool))
    threads[0].join()
    (row,) = _rows(engine)
    assert (row.status, row.payload) == ("pending", {"insight": "new"})
    assert tool.fields["F-1"] == {"insight": "old"}


def test_interleaved_claims_never_share_an_intent(engine: Engine, other: Engine, cid: int) -> None:
    """Worker b claims everything between worker a's SELECT and its UPDATE."""
    with unit_of_work(engine) as s:
        outbox.enqueue_many(s, [(cid, f"F-{i}", FIELDS, {"i": i}, None) for i in range(5)])
    got_b: list[int] = []

    def between(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE") and not got_b:
            got_b.extend(outbox.claim(other, 10, worker="b"))

    event.listen(engine, "before_cursor_execute", between)
    try:
        got_a = outbox.claim(engine, 10, worker="a")
    finally:
        event.remove(engine, "before_cursor_execute", between)
    assert sorted(got_a + got_b) == sorted({*got_a, *got_b}) and len(got_a + got_b) == 5
    with unit_of_work(engine) as s:
        owners = dict(s.execute(select(WriteIntent.id, WriteIntent.claimed_by)).all())
    assert {owners[i] for i in got_a} <= {"a"} and {owners[i] for i in got_b} <= {"b"}


def test_a_claim_is_held_until_it_times_out(engine: Engine, cid: int) -> None:
    with unit_of_work(engine) as s:
        outbox.enqueue_many(s, [(cid, f"F-{i}", FIELDS, {"i": i}, None) for i in range(3)])
    first = outbox.claim(engine, 10, worker="a")
    assert len(first) == 3 and outbox.claim(engine, 10, worker="b") == []
    with unit_of_work(engine) as s:  # worker a died 11 minutes ago
        s.execute(update(WriteIntent).values(
            claimed_at=utcnow() - outbox.CLAIM_TIMEOUT - dt.timedelta(minutes=1)))
    assert outbox.claim(engine, 10, worker="b") == first


def test_each_chunk_is_settled_as_soon_as_it_lands(engine: Engine, cid: int) -> None:
    """A worker that dies mid-claim has recorded every chunk but the one in flight."""
    with unit_of_work(engine) as s:
        outbox.enqueue_many(s, [(cid, f"F-{i + 1}", FIELDS, {"forecast_p80": float(i)}, None)
                                for i in range(100)])
    tool, seen = FakeTool(), []

    class Watching(FakeConnector):
        def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
            with unit_of_work(engine) as s:  # what the store says when each chunk starts
                seen.append((len(intents), len(s.scalars(select(WriteIntent.id).where(
                    WriteIntent.status == "delivered")).all())))
            return super().deliver(intents)

    report = outbox.deliver(engine, lambda _c: Watching(FakeConfig(items=100), tool=tool))
    assert report.delivered == 100 and sum(n for n, _ in seen) == 100
    assert seen[0] == (outbox.FIRST_CHUNK, 0) and len(seen) >= 3
    assert [done for _, done in seen] == [sum(n for n, _ in seen[:k]) for k in range(len(seen))]
    assert len(tool.writes) == 100


def test_a_live_worker_keeps_its_claim_past_the_timeout(engine: Engine, other: Engine, cid: int,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The heartbeat renews the claim of a slow delivery; a dead worker's claim returns."""
    monkeypatch.setenv("LEARNLOOP_CLAIM_TIMEOUT", "0.6")
    with unit_of_work(engine) as s:
        outbox.enqueue_many(s, [(cid, f"F-{i + 1}", COMMENT, {"text": f"c{i}"}, None)
                                for i in range(30)])
    tool, retaken = FakeTool(), []
    started = threading.Event()

    class Slow(FakeConnector):
        def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
            started.set()
            time.sleep(1.0)  # longer than the claim timeout, for every chunk
            return super().deliver(intents)

    def rival() -> None:
        started.wait(5)
        for _ in range(6):  # another worker tries for 1.8 s, three claim timeouts
            retaken.extend(outbox.claim(other, 100, worker="rival"))
            time.sleep(0.3)

    thread = threading.Thread(target=rival)
    thread.start()
    report = outbox.deliver(engine, lambda _c: Slow(FakeConfig(items=30), tool=tool), chunk=10)
    thread.join()
    assert report.delivered == 30 and retaken == []
    assert len(tool.writes) == 30 and sum(len(c) for c in tool.comments.values()) == 30
    # a worker that claimed and died: after one timeout (not ten minutes) the rows return
    _enqueue(engine, cid, "F-1", COMMENT, {"text": "again"})
    (dead,) = outbox.claim(engine, 10, worker="dead")
    assert outbox.claim(other, 10, worker="b") == []
    time.sleep(0.7)
    assert outbox.claim(other, 10, worker="b") == [dead]


def test_concurrent_workers_never_share_an_intent(engine: Engine, db_url: str, cid: int) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("several workers share PostgreSQL; SQLite is covered by the interleaved test")
    with unit_of_work(engine) as s:
        outbox.enqueue_many(s, [(cid, f"F-{i}", FIELDS, {"i": i}, None) for i in range(200)])
    results: dict[str, list[int]] = {}
    engines = [open_store(db_url) for _ in range(4)]
    start = threading.Barrier(len(engines))

    def grab(name: str, eng: Engine) -> None:
        got: list[int] = []
        start.wait()
        while ids := outbox.claim(eng, 7, worker=name):
            got += ids
        results[name] = got

    threads = [threading.Thread(target=grab, args=(f"w{i}", e)) for i, e in enumerate(engines)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    claimed = [i for ids in results.values() for i in ids]
    assert len(claimed) == 200 and len(set(claimed)) == 200
    assert sum(1 for ids in results.values() if ids) >= 2


def test_enqueue_many_matches_enqueue(engine: Engine, cid: int) -> None:
    writes: list[tuple[int, str, str, dict[str, Any], int | None]] = [(cid, f"F-{i}", FIELDS, {"i": i}, None) for i in range(3)]
    with unit_of_work(engine) as s:
        assert outbox.enqueue_many(s, writes) == 3
    with unit_of_work(engine) as s:
        assert outbox.enqueue_many(s, writes) == 0
    held = outbox.claim(engine, 1, worker="a")
    with unit_of_work(engine) as s:
        assert outbox.enqueue_many(s, [(cid, "F-0", FIELDS, {"i": 99}, None),
                                       (cid, "F-1", FIELDS, {"i": 98}, None)]) == 2
    rows = {r.target: r for r in _rows(engine)}
    assert rows["F-0"].id == held[0] and rows["F-0"].status == "delivering"  # still held
    assert rows["F-0"].payload == {"i": 99} and rows["F-1"].payload == {"i": 98}
    assert outbox.claim(engine, 10, worker="b") == [rows["F-1"].id, rows["F-2"].id]
