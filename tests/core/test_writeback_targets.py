"""The learning run fills only the targets each connector declares; notes follow status and risk."""

from __future__ import annotations

import dataclasses
import datetime as dt
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from core import insights
from core.contract import (
    COMMENT,
    FIELDS,
    NOTE,
    PROPERTY,
    FieldsPayload,
    Intent,
    NotePayload,
    WriteTarget,
)
from core.learning.run import run_learning
from core.model import Connection, WriteIntent
from core.store import unit_of_work
from core.sync import run_sync
from tests.core.learning_data import T0, ListConnector, load, records
from tests.fakes import FakeConfig, FakeConnector, FakeTool

QUIET = (WriteTarget("forecast_p80", "number", FIELDS, "P80"),
         WriteTarget("risk", "text", FIELDS, "risk band"))
TALKY = (*QUIET, WriteTarget("comment", "text", COMMENT, "the comment"),
         WriteTarget("learnloop", "json", PROPERTY, "all values"))
NOTES = (WriteTarget("risk", "text", FIELDS, "risk band"),
         WriteTarget("note", "note", NOTE, "a note"), WriteTarget("task", "task", NOTE, "a task"))
AS_OF = T0 + dt.timedelta(days=540)  # before the open items are due


def _intents(engine: Engine, connection: str | None = None) -> list[WriteIntent]:
    with unit_of_work(engine) as s:
        query = select(WriteIntent).join(Connection).order_by(WriteIntent.id)
        if connection:
            query = query.where(Connection.name == connection)
        return list(s.scalars(query))


def test_the_run_queues_only_the_targets_a_connector_declares(engine: Engine) -> None:
    recs = records(600, seed=2)
    load(engine, recs)
    with unit_of_work(engine) as s:
        s.add(Connection(kind="talky", name="talky"))
    run_sync(engine, "talky", ListConnector(recs))
    run_learning(engine, {"list": QUIET, "talky": TALKY})
    quiet, talky = _intents(engine, "list"), _intents(engine, "talky")
    assert quiet and {w.surface for w in quiet} == {FIELDS}  # no comment, no property
    assert all(set(w.payload) == {"forecast_p80", "risk"} for w in quiet)
    assert {w.surface for w in talky} == {FIELDS, COMMENT, PROPERTY}  # same items, same run
    comments = [w for w in talky if w.surface == COMMENT]
    assert comments and all(w.payload["text"].startswith("learnloop: ") for w in comments)
    prop = next(w for w in talky if w.surface == PROPERTY)
    assert prop.payload["item_id"] == prop.item_id and "effort_factor" in prop.payload
    assert {w.target for w in quiet} == {w.target for w in talky if w.surface == FIELDS}


def test_notes_are_written_when_the_risk_turns_high_and_again_when_the_item_closes(
        engine: Engine) -> None:
    recs = records(600, seed=2, noise=0.2)  # Bugs run 2x over (high risk), the rest ~1.3x
    load(engine, recs)
    run_learning(engine, {"list": NOTES}, as_of=AS_OF)
    written = {w.target: w for w in _intents(engine) if w.surface == NOTE}
    is_open = {r.external_id for r in recs if r.status == "open"}
    fields = {w.target: w.payload for w in _intents(engine) if w.surface == FIELDS}
    high = {t for t, f in fields.items() if f["risk"] == "high"}
    bugs = {r.external_id for r in recs if r.segments["type"] == "Bug"}
    assert high == is_open & bugs  # the open Bugs are at high risk, the others not
    notes = {t: w for t, w in written.items() if t in is_open}
    assert set(notes) == high  # a task for each high-risk item, nothing for the others
    for w in notes.values():
        note = NotePayload.from_json(w.payload)
        assert (note.kind, note.reason, note.risk, note.status) == ("task", "risk", "high", "open")
        assert note.body.startswith(f"task {w.target.removeprefix('T-')}: risk is high (P80")
    recent = {t for t in written if t not in is_open}  # finished in the last 30 days
    assert recent and all(NotePayload.from_json(written[t].payload).subject
                          == "learnloop: closed as done" for t in recent)

    run_learning(engine, {"list": NOTES}, as_of=AS_OF)  # nothing changed: nothing new
    again = {w.target: w for w in _intents(engine) if w.surface == NOTE}
    assert {t: w.payload_hash for t, w in again.items()} == {
        t: w.payload_hash for t, w in written.items()}

    closed = [dataclasses.replace(r, status="done", actual_effort=2 * (r.planned_estimate or 1),
                                  actual_end=AS_OF)
              if r.external_id in notes else r for r in recs]
    load(engine, closed)
    run_learning(engine, {"list": NOTES}, as_of=AS_OF)
    after = {w.target: w for w in _intents(engine) if w.surface == NOTE}
    for target, before in notes.items():
        row = after[target]
        assert row.id == before.id  # the same note, edited in place
        note = NotePayload.from_json(row.payload)
        assert (note.kind, note.reason, note.status) == ("note", "status", "done")
        assert note.subject == "learnloop: closed as done"
        assert "took 2.0x its estimate" in note.body


def _item(**values: Any) -> Any:
    base = {"status": "open", "outcome": None, "title": "Acme renewal", "external_id": "D-1",
            "planned_estimate": 10.0, "planned_due": None}
    return SimpleNamespace(**(base | values))


def test_a_note_follows_the_outcome_and_the_types_a_tool_has() -> None:
    won = _item(status="done", outcome="won")
    insight = insights.ItemInsight(FieldsPayload(delta=1.0), None, "took 1.1x its estimate")
    note = insights.note_for(won, insight, None, frozenset({"note"}))
    assert note is not None and note.subject == "learnloop: closed as won"
    assert note.body == "Acme renewal closed as won; it took 1.1x its estimate"
    assert insights.note_for(won, insight, note, frozenset({"note"})) is None  # already said
    risky = insights.ItemInsight(FieldsPayload(risk="high"), None, "P80 for this item: 20.0")
    as_note = insights.note_for(_item(), risky, None, frozenset({"note"}))
    assert as_note is not None and as_note.kind == "note"  # no tasks in this tool: a note
    calm = insights.ItemInsight(FieldsPayload(risk="medium"), None, "")
    assert insights.note_for(_item(), calm, None, frozenset({"note"})) is None  # not worth one
    eased = insights.note_for(_item(), calm, as_note, frozenset({"note"}))
    assert eased is not None and eased.subject == "learnloop: risk is medium"  # it was noted


def test_the_fake_tool_edits_its_note_in_place() -> None:
    tool = FakeTool()
    connector = FakeConnector(FakeConfig(items=3), tool=tool)
    first = NotePayload(reason="risk", status="open", risk="high", kind="task",
                        subject="learnloop: risk is high", body="F-1: risk is high")
    (made,) = connector.deliver([Intent(1, "F-1", NOTE, first.to_json())])
    second = first.model_copy(update={"reason": "status", "status": "done", "kind": "note",
                                      "subject": "learnloop: closed as done"})
    (edited,) = connector.deliver([Intent(1, "F-1", NOTE, second.to_json(), made.tool_ref)])
    assert made.ok and edited.ok and edited.tool_ref == made.tool_ref
    assert tool.notes == {"F-1": {str(made.tool_ref): second}}
