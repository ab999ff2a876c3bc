"""Lessons: what a post-mortem or a person said will happen again, as a rule that is tested."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.model.base import Base, JSONType, utcnow

LESSON_STATUSES = ("unparsed", "untested", "holds", "no longer holds")
"""unparsed: its segment or prediction could not be read (kept with the reason); untested:
not enough evidence since its date; holds: the predicted deviation is still there; no longer
holds: it is gone (the lesson was learned, or was wrong)."""


class Lesson(Base):
    """A lesson as a rule: its words, the segment it concerns, what it predicts, the behaviour
    it asks for, where it came from, and the latest test of it."""

    __tablename__ = "lessons"
    __table_args__ = (Index("ix_lessons_source", "connection_id", "external_id", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    words: Mapped[str] = mapped_column(Text, doc="the lesson as people wrote it")
    segment: Mapped[dict[str, Any]] = mapped_column(
        default=dict, doc="segment dimension -> value the items must have, e.g. components")
    kind: Mapped[str] = mapped_column(String(50), default="task", doc="item kind family")
    measure: Mapped[str | None] = mapped_column(String(40), doc="effort | finish | duration")
    multiplier: Mapped[float | None] = mapped_column(doc="predicted actual / plan (ratios)")
    direction: Mapped[str | None] = mapped_column(String(10), doc="over | under the plan")
    predicts: Mapped[str] = mapped_column(Text, default="", doc="the prediction as written")
    behaviour: Mapped[str] = mapped_column(Text, default="", doc="what it asks people to do")
    source: Mapped[str] = mapped_column(String(20), default="entered", doc="entered | imported")
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL"))
    external_id: Mapped[str | None] = mapped_column(String(200), doc="the issue key, the row")
    url: Mapped[str | None] = mapped_column(Text)
    writable: Mapped[bool] = mapped_column(
        default=False, doc="its own record in the tool (a Jira issue) can show its verdict")
    created_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, doc="the lesson's date: evidence after it tests it")
    status: Mapped[str] = mapped_column(String(20), default="untested",
                                        doc=" | ".join(LESSON_STATUSES))
    reason: Mapped[str | None] = mapped_column(Text, doc="why it is unparsed or untested")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict,
                                                     doc="the latest test, its numbers")
    tested_at: Mapped[dt.datetime | None]
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("learning_runs.id", ondelete="SET NULL"), doc="the run that tested it last")
    proposal_id: Mapped[int | None] = mapped_column(
        ForeignKey("proposals.id", ondelete="SET NULL"),
        doc="the estimation rule proposed because it kept failing")
