"""Lessons: the list with verdicts and evidence, the form to enter one, and the JSON API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from core.errors import ConfigError
from core.lessons import store as lessons
from core.lessons.status import evidence_lines
from core.model import Lesson, User
from webapp import services
from webapp.deps import CurrentTemplateOwner, CurrentUser, SessionDep
from webapp.routes.params import RowId
from webapp.views import redirect, render

router = APIRouter()
api = APIRouter(prefix="/api", tags=["lessons"])
TONES = {"holds": "bad", "no longer holds": "good", "untested": "untested", "unparsed": "flag"}
"""A lesson that still holds is a mistake that keeps happening."""


class LessonCreate(BaseModel):
    """A lesson to enter: its words, and its rule (segment and prediction) if not in them."""

    words: str = Field(min_length=1, max_length=lessons.MAX_WORDS,
                       description="The lesson, e.g. 'we always underestimate integration work'")
    predicts: str | None = Field(None, max_length=500,
                                 description="e.g. 'component=integration takes 1.5x'")
    segment: str | None = Field(None, max_length=500,
                                description="e.g. 'component=integration, kind=task'")
    behaviour: str | None = Field(None, max_length=2000,
                                  description="e.g. 'plan 1.5x for integration tasks'")
    date: dt.date | None = Field(None, description="The lesson's date (default today): work "
                                                   "planned after it tests it")


class LessonPublic(BaseModel):
    """A lesson, its source and the evidence of its latest test."""

    id: int
    words: str
    segment: dict[str, Any]
    kind: str
    measure: str | None
    multiplier: float | None
    direction: str | None
    predicts: str
    prediction: str | None
    behaviour: str
    source: str
    connection: str | None
    external_id: str | None
    url: str | None
    created_by: str | None
    created_at: dt.datetime
    status: str
    reason: str | None
    verdict: str | None
    evidence: dict[str, Any]
    tested_at: dt.datetime | None
    proposal_id: int | None


def _public(session: Session, lesson: Lesson,
            names: Mapping[int, str] | None = None) -> LessonPublic:
    """The lesson as the API shows it (`names`: the connections' names, read once per list)."""
    names = lessons.connection_names(session) if names is None else names
    return LessonPublic(**lessons.public(lesson, names.get(lesson.connection_id or 0)))


def _date(day: dt.date | None) -> dt.datetime | None:
    return None if day is None else dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def enter(session: Session, user: User, body: LessonCreate) -> Lesson:
    """Store an entered lesson and log who entered it."""
    lesson = lessons.add(session, body.words, segment=body.segment, predicts=body.predicts,
                         behaviour=body.behaviour, created_by=user.email,
                         created_at=_date(body.date))
    services.log(session, user, "entered a lesson", "lesson", lesson.id,
                 predicts=lesson.predicts)
    return lesson


def _row(lesson: Lesson, names: dict[int, str]) -> dict[str, Any]:
    row = lessons.public(lesson, names.get(lesson.connection_id or 0))
    row["tone"] = TONES.get(lesson.status, "")
    row["lines"] = evidence_lines(lesson.evidence or {})
    return row


@router.get("/lessons", response_class=HTMLResponse)
def lessons_page(request: Request, session: SessionDep, user: CurrentUser,
                 status: Annotated[str, Query(max_length=20)] = "all") -> Response:
    try:
        found = lessons.listed(session, status)
    except ConfigError:
        status, found = "all", lessons.listed(session)
    names = lessons.connection_names(session)
    return render(request, "lessons_list.html", rows=[_row(x, names) for x in found],
                  status=status, statuses=("all", "holds", "no longer holds", "untested",
                                           "unparsed"),
                  can_add=user.role in ("admin", "template_owner"))


@router.post("/lessons")
def add_form(request: Request, session: SessionDep, owner: CurrentTemplateOwner,
             words: Annotated[str, Form(max_length=lessons.MAX_WORDS)] = "",
             predicts: Annotated[str, Form(max_length=500)] = "",
             segment: Annotated[str, Form(max_length=500)] = "",
             behaviour: Annotated[str, Form(max_length=2000)] = "",
             date: Annotated[str, Form(max_length=20)] = "") -> Response:
    try:
        day = dt.date.fromisoformat(date.strip()) if date.strip() else None
    except ValueError:
        return redirect(request, "/lessons", err=f"date {date!r}: give it as YYYY-MM-DD")
    try:
        lesson = enter(session, owner, LessonCreate.model_construct(
            words=words, predicts=predicts or None, segment=segment or None,
            behaviour=behaviour or None, date=day))
    except ConfigError as exc:
        session.rollback()
        return redirect(request, "/lessons", err=str(exc))
    session.commit()
    return redirect(request, f"/lessons/{lesson.id}",
                    msg=f"lesson #{lesson.id} added; the next learning run tests it")


@router.get("/lessons/{lesson_id}", response_class=HTMLResponse)
def lesson_page(request: Request, session: SessionDep, user: CurrentUser,
                lesson_id: RowId) -> Response:
    lesson = lessons.get(session, lesson_id)
    return render(request, "lessons_detail.html", row=_row(lesson, lessons.connection_names(session)))


@api.get("/lessons")
def list_lessons(session: SessionDep, user: CurrentUser,
                 status: Annotated[str, Query(max_length=20)] = "all") -> list[LessonPublic]:
    """Every lesson (or those of one status: holds, no longer holds, untested, unparsed),
    newest first, with the evidence of its latest test."""
    names = lessons.connection_names(session)
    return [_public(session, x, names) for x in lessons.listed(session, status)]


@api.get("/lessons/{lesson_id}")
def get_lesson(session: SessionDep, user: CurrentUser, lesson_id: RowId) -> LessonPublic:
    """One lesson with its source and evidence."""
    return _public(session, lessons.get(session, lesson_id))


@api.post("/lessons", status_code=201)
def create_lesson(session: SessionDep, owner: CurrentTemplateOwner,
                  body: LessonCreate) -> LessonPublic:
    """Enter a lesson; a segment or prediction that cannot be read is refused (422) with the
    reason. The next learning run tests it."""
    lesson = enter(session, owner, body)
    session.commit()
    return _public(session, lesson)
