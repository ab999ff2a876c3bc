"""Lessons in the store: entered by a person, imported from a tool, listed, shown."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import bounds
from core.contract import LessonRecord
from core.errors import ConfigError, NotFoundError
from core.lessons.parse import Parsed, parse, prediction_words
from core.model import LESSON_STATUSES, Connection, Lesson, utcnow

MAX_WORDS = 20_000
UNTESTED, UNPARSED = "untested", "unparsed"


def _apply(lesson: Lesson, words: str, parsed: Parsed) -> None:
    lesson.words = words
    lesson.segment, lesson.kind = parsed.segment, parsed.kind
    lesson.measure, lesson.multiplier = parsed.measure, parsed.multiplier
    lesson.direction = parsed.direction
    lesson.predicts, lesson.behaviour = parsed.predicts, parsed.behaviour
    if not parsed.ok:
        lesson.status, lesson.reason, lesson.evidence = UNPARSED, parsed.reason, {}
    elif lesson.status == UNPARSED or not lesson.status:
        lesson.status, lesson.reason = UNTESTED, "not tested yet: the next learning run tests it"


def _date(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def add(session: Session, words: str, *, segment: str | None = None,
        predicts: str | None = None, behaviour: str | None = None,
        created_by: str | None = None, created_at: dt.datetime | None = None,
        strict: bool = True) -> Lesson:
    """Enter a lesson.

    Args:
        session: the store.
        words: the lesson in words ("we always underestimate integration work").
        segment: the segment predicate (`component=integration, kind=task`).
        predicts: what it predicts (`takes 1.5x`); may carry the segment.
        behaviour: what it asks for ("plan 1.5x for integration tasks").
        created_by: who entered it.
        created_at: the lesson's date (default now): evidence after it tests it.
        strict: refuse a lesson whose segment or prediction cannot be read (a person can
            fix it now); imported lessons are kept instead, untested with the reason.

    Raises:
        ConfigError: in one line, for empty words or (strict) an unreadable rule.
    """
    words = (words or "").strip()
    if not words:
        raise ConfigError("a lesson needs its words, e.g. 'we always underestimate "
                          "integration work'")
    if len(words) > MAX_WORDS:
        raise ConfigError(f"the lesson's words are {len(words):,} characters; at most "
                          f"{MAX_WORDS:,}")
    parsed = parse(words, segment, predicts, behaviour)
    if strict and not parsed.ok:
        raise ConfigError(f"lesson not added: {parsed.reason}")
    when = _date(created_at) or utcnow()
    if when > utcnow() + dt.timedelta(days=1):
        raise ConfigError(f"the lesson's date {when.date().isoformat()} is in the future")
    lesson = Lesson(source="entered", created_by=created_by, created_at=when, status="",
                    evidence={})
    _apply(lesson, words, parsed)
    session.add(lesson)
    session.flush()
    return lesson


def import_records(session: Session, conn: Connection, records: Iterable[LessonRecord]) -> int:
    """Store a connection's lessons, each an upsert on (connection, external id): an edited
    post-mortem updates its lesson (its test evidence kept while its rule is the same).

    Returns:
        How many lessons were created or changed.
    """
    changed = 0
    for raw in records:
        rec = _storable(raw)
        ext = bounds.shorten(rec.external_id, 200)
        row = session.scalar(select(Lesson).where(Lesson.connection_id == conn.id,
                                                  Lesson.external_id == ext))
        words = (rec.words or "").strip()[:MAX_WORDS] or f"(lesson {ext} has no text)"
        parsed = parse(words, rec.segment, rec.predicts, rec.behaviour)
        if row is None:
            row = Lesson(source="imported", connection_id=conn.id, external_id=ext,
                         created_at=_date(rec.created_at) or utcnow(), status="", evidence={},
                         writable=rec.writable)
            session.add(row)
        elif (row.words, row.segment, row.measure, row.multiplier, row.direction,
              row.behaviour, row.url, row.writable) == (words, parsed.segment, parsed.measure,
                                                        parsed.multiplier, parsed.direction,
                                                        parsed.behaviour, rec.url, rec.writable):
            continue
        elif (row.segment, row.measure, row.multiplier, row.direction) != (
                parsed.segment, parsed.measure, parsed.multiplier, parsed.direction):
            row.status, row.evidence = "", {}  # a new rule: its old test says nothing of it
        row.url, row.writable = rec.url, rec.writable
        if rec.created_at is not None:
            row.created_at = _date(rec.created_at) or row.created_at
        _apply(row, words, parsed)
        changed += 1
    session.flush()
    return changed


def _storable(rec: LessonRecord) -> LessonRecord:
    """The record with every NUL written as \\0 (PostgreSQL cannot store one in text)."""
    def fix(value: str | None) -> str | None:
        return None if value is None else value.replace("\x00", "\\0")

    return LessonRecord(str(fix(rec.external_id)), str(fix(rec.words)), fix(rec.url),
                        fix(rec.segment), fix(rec.predicts), fix(rec.behaviour), rec.created_at,
                        rec.writable)


def get(session: Session, lesson_id: int) -> Lesson:
    """The lesson with this id.

    Raises:
        NotFoundError: if there is none.
    """
    lesson = session.get(Lesson, lesson_id)
    if lesson is None:
        raise NotFoundError(f"no lesson #{lesson_id}")
    return lesson


def listed(session: Session, status: str | None = None) -> list[Lesson]:
    """Every lesson (of one status), newest first.

    Raises:
        ConfigError: for an unknown status.
    """
    query = select(Lesson).order_by(Lesson.created_at.desc(), Lesson.id.desc())
    if status not in (None, "", "all"):
        if status not in LESSON_STATUSES:
            raise ConfigError(f"unknown lesson status {status!r}; one of "
                              f"{', '.join(LESSON_STATUSES)} or all")
        query = query.where(Lesson.status == status)
    return list(session.scalars(query))


def public(lesson: Lesson, connection: str | None = None) -> dict[str, Any]:
    """A lesson as shown to people and scripts: the rule, its source and its latest test."""
    ev = lesson.evidence or {}
    return {
        "id": lesson.id, "words": lesson.words, "segment": lesson.segment, "kind": lesson.kind,
        "measure": lesson.measure, "multiplier": lesson.multiplier,
        "direction": lesson.direction, "predicts": lesson.predicts,
        "prediction": prediction_words(lesson.segment, lesson.kind, lesson.measure,
                                       lesson.multiplier, lesson.direction)
        if lesson.measure else None,
        "behaviour": lesson.behaviour, "source": lesson.source, "connection": connection,
        "external_id": lesson.external_id, "url": lesson.url,
        "created_by": lesson.created_by, "created_at": lesson.created_at,
        "status": lesson.status, "reason": lesson.reason, "verdict": ev.get("verdict"),
        "evidence": ev, "tested_at": lesson.tested_at, "proposal_id": lesson.proposal_id,
    }


def connection_names(session: Session) -> dict[int, str]:
    """Connection id -> name, for showing where imported lessons came from."""
    return {int(cid): str(name) for cid, name in
            session.execute(select(Connection.id, Connection.name))}
