"""Checklists in the store: what migration 0007 adds, and marking one done."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core import checklists, outbox
from core.errors import LearnloopError, NotFoundError
from core.model import Connection, WriteIntent
from core.store import alembic_config, make_engine, migrate, unit_of_work


def test_a_store_of_the_previous_release_upgrades_and_keeps_its_intents(
        empty_url: str) -> None:
    engine = make_engine(empty_url)
    command.upgrade(alembic_config(engine), "0003")
    with engine.begin() as c:
        c.execute(text("INSERT INTO connections (id, kind, name, config, mapping, scope, "
                       "health, created_at) VALUES (1, 'fake', 'crm', '{}', '{}', '{}', "
                       "'unknown', '2025-01-01 00:00:00')"))
        c.execute(text("INSERT INTO write_intents (connection_id, target, surface, "
                       "idempotency_key, payload, payload_hash, status, attempts, "
                       "next_attempt_at, created_at, delivered_at) VALUES (1, 'F-1', 'fields', "
                       "'1:F-1:fields', '{\"forecast_p80\": 2.0}', 'h', 'delivered', 1, "
                       "'2025-01-01 00:00:00', '2025-01-01 00:00:00', '2025-01-02 00:00:00')"))
    migrate(engine)
    with unit_of_work(engine) as s:
        (row,) = s.query(WriteIntent).all()
        assert (row.status, row.payload, row.attempts) == ("delivered", {"forecast_p80": 2.0}, 1)
        assert row.checklist is None and row.checked_by is None and row.checked_at is None
        assert checklists.open_checklists(s) == []
    engine.dispose()


def test_only_an_open_checklist_can_be_marked_done(engine: Engine) -> None:
    with unit_of_work(engine) as s:
        conn = Connection(kind="fake", name="crm")
        s.add(conn)
        s.flush()
        plain = outbox.enqueue(s, conn.id, "F-1", "fields", {"forecast_p80": 2.0})
        steps = outbox.enqueue(s, conn.id, "D-1", "note", {
            "reason": "status", "status": "won", "subject": "s", "body": "b"})
        s.flush()
        steps.status, steps.checklist = "checklist", ["Add the note by hand."]
        ids = plain.id, steps.id
    with unit_of_work(engine) as s, pytest.raises(NotFoundError, match=f"no checklist #{ids[0]}"):
        checklists.mark_done(s, ids[0], "owner@example.com")
    with unit_of_work(engine) as s:
        done = checklists.mark_done(s, ids[1], "owner@example.com")
        assert done.proposal is None and done.connection == "crm"  # not a template write
    with unit_of_work(engine) as s, pytest.raises(LearnloopError, match="already checked off"):
        checklists.mark_done(s, ids[1], "someone@example.com")
    with unit_of_work(engine) as s:
        assert s.get_one(WriteIntent, ids[1]).checked_by == "owner@example.com"
