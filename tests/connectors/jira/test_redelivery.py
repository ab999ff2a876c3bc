"""Through the real outbox: a worker writes to Jira and dies before settling; its claim is
retaken after the timeout and the second delivery edits what the first one made."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from connectors.jira import JiraConnector
from core import outbox
from core.connections import add_connection, build_connector
from core.contract import COMMENT, TEMPLATE, Connector, Intent
from core.model import Connection, WriteIntent, utcnow
from core.store import unit_of_work
from core.testing import payload_for
from tests.connectors.jira.harness import JiraHarness


@pytest.mark.parametrize("surface", [COMMENT, TEMPLATE])
def test_a_retaken_claim_edits_the_comment_the_dead_worker_posted(engine: Engine,
                                                                  surface: str) -> None:
    h = JiraHarness(n=4)
    (target,) = h.targets(surface)[:1]
    with unit_of_work(engine) as s:
        conn = add_connection(s, JiraConnector, "pay", h.config(), h.mapping())
        intent = outbox.enqueue(s, conn.id, target, surface, payload_for(surface, "once"))
        s.flush()
        intent_id = intent.id
    connectors: list[Connector] = []

    def connector_for(row: Connection) -> Connector:
        connectors.append(build_connector(row, JiraConnector))
        return connectors[-1]

    assert outbox.claim(engine) == [intent_id]
    with unit_of_work(engine) as s:  # the dead worker: its write reached Jira, nothing settled
        row = s.get(WriteIntent, intent_id)
        assert row is not None and row.tool_ref is None
        snapshot = Intent(row.id, row.target, row.surface, dict(row.payload), row.tool_ref)
        (first,) = connector_for(s.get(Connection, row.connection_id)).deliver(  # type: ignore[arg-type]
            [snapshot])
    assert first.ok and h.count(target, surface) == 1
    assert outbox.deliver(engine, connector_for).delivered == 0  # still held by the dead worker
    with unit_of_work(engine) as s:
        s.execute(update(WriteIntent).values(
            claimed_at=utcnow() - outbox.CLAIM_TIMEOUT - dt.timedelta(seconds=1)))
    assert outbox.deliver(engine, connector_for).delivered == 1
    assert h.count(target, surface) == 1 and "once" in h.read_back(target, surface)
    with unit_of_work(engine) as s:
        stored = s.scalars(select(WriteIntent.tool_ref)).one()
    assert stored == first.tool_ref and stored in h.emu.issues[target].comments
    assert h.unexpected() == []
