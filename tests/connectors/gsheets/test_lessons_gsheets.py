"""A lessons tab in the Sheets emulator, read through the real gspread client."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.gsheets import GSheetsConnector
from core.connections import add_connection
from core.errors import ConnectorError
from core.model import Lesson
from core.store import unit_of_work
from core.sync import run_sync
from tests.connectors.gsheets.harness import GSheetsHarness

ROWS = [
    ["Lessons from the Q1 retros"],
    ["Date", "Words", "Segment", "Predicts", "Behaviour"],
    ["2026-03-02", "We always underestimate integration work", "component=integration",
     "takes 1.5x", "plan 1.5x for integration tasks"],
    ["", "", "", "", ""],
    ["2026-03-09", "Bugs slip", "", "type=Bug finishes late", ""],
    ["", "Talk more", "", "", ""],
]


def _connector(h: GSheetsHarness, **over: object) -> GSheetsConnector:
    from connectors.gsheets.config import GSheetsConfig

    return GSheetsConnector(GSheetsConfig(**{**h.config(), **over}), h.mapping())


def test_a_lessons_tab_becomes_lessons_kept_even_when_unreadable(engine: Engine) -> None:
    h = GSheetsHarness()
    h.book.add("Lessons", ROWS)
    with unit_of_work(engine) as s:
        add_connection(s, GSheetsConnector, "plan", {**h.config(),
                                                     "lessons_worksheet": "Lessons"},
                       h.mapping())
    run_sync(engine, "plan", _connector(h, lessons_worksheet="Lessons"))
    with unit_of_work(engine) as s:
        rows = {x.external_id: x for x in s.scalars(select(Lesson))}
        assert set(rows) == {"Lessons row 3", "Lessons row 5", "Lessons row 6"}
        first = rows["Lessons row 3"]
        assert (first.segment, first.multiplier, first.behaviour, first.source) == (
            {"component": "integration"}, 1.5, "plan 1.5x for integration tasks", "imported")
        assert first.created_at == dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
        assert (rows["Lessons row 5"].measure, rows["Lessons row 5"].segment) == (
            "finish", {"type": "Bug"})
        assert rows["Lessons row 6"].status == "unparsed"
    sheet = h.book.sheet("Lessons")
    assert sheet is not None
    sheet.values[2][3] = "takes 2x"  # edited in the sheet: the lesson follows
    h.book.touch()
    run_sync(engine, "plan", _connector(h, lessons_worksheet="Lessons"))
    with unit_of_work(engine) as s:
        lessons = s.scalars(select(Lesson).order_by(Lesson.id)).all()
        assert len(lessons) == 3 and lessons[0].multiplier == 2.0
    assert h.unexpected() == []


def test_a_missing_lessons_tab_is_one_clear_error(engine: Engine) -> None:
    h = GSheetsHarness()
    with unit_of_work(engine) as s:
        add_connection(s, GSheetsConnector, "plan", h.config(), h.mapping())
    with pytest.raises(ConnectorError, match="no tab named 'Retros' \\(lessons_worksheet\\)"):
        run_sync(engine, "plan", _connector(h, lessons_worksheet="Retros"))


def test_lesson_dates_are_read_as_the_tab_writes_them(engine: Engine,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Day-first dates (the column shows it: 13/03) and a cell that is not a date."""
    h = GSheetsHarness()
    h.book.add("Lessons", [
        ["Date", "Words", "Predicts"],
        ["02/03/2026", "Integration overruns", "component=integration takes 1.5x"],
        ["13/03/2026", "Bugs slip", "type=Bug finishes late"],
        ["soon", "Reviews wait", "type=Review takes 2x"],
    ])
    with unit_of_work(engine) as s:
        add_connection(s, GSheetsConnector, "plan", {**h.config(),
                                                     "lessons_worksheet": "Lessons"},
                       h.mapping())
    before = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    run_sync(engine, "plan", _connector(h, lessons_worksheet="Lessons"))
    with unit_of_work(engine) as s:
        rows = {x.external_id: x for x in s.scalars(select(Lesson))}
        assert rows["Lessons row 2"].created_at == dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
        assert rows["Lessons row 3"].created_at == dt.datetime(2026, 3, 13, tzinfo=dt.UTC)
        undated = rows["Lessons row 4"].created_at
        assert undated is not None and undated.replace(tzinfo=dt.UTC) >= before
    assert "tab 'Lessons' row 4: date 'soon' is not a date" in caplog.text
    assert h.unexpected() == []
