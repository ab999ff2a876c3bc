"""Checklists: the steps a person takes where a tool's API cannot make a change, checked off."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from core import checklists
from core.errors import LearnloopError, NotFoundError
from core.model import User
from webapp import schemas as s
from webapp import services
from webapp.deps import CurrentTemplateOwner, CurrentUser, SessionDep
from webapp.routes.params import RowId
from webapp.views import redirect, render

router = APIRouter()
api = APIRouter(prefix="/api", tags=["proposals"])


def check_off(session: Session, user: User, intent_id: int) -> checklists.Checklist:
    """Mark a checklist done and log who did it (on the proposal's trail when it has one)."""
    done = checklists.mark_done(session, intent_id, user.email)
    subject = ("proposal", done.proposal.id) if done.proposal else ("write_intent", intent_id)
    services.log(session, user, "checked off a checklist", *subject, checklist=intent_id,
                 target=done.intent.target, steps=len(done.intent.checklist or []),
                 proposal_status=done.proposal.status if done.proposal else None)
    return done


def public(found: checklists.Checklist) -> s.ChecklistPublic:
    """The API view of a checklist."""
    row = found.intent
    return s.ChecklistPublic(
        id=row.id, connection=found.connection, target=row.target, surface=row.surface,
        status=row.status, steps=list(row.checklist or []), checked_by=row.checked_by,
        checked_at=row.checked_at, proposal_id=found.proposal.id if found.proposal else None,
        proposal_status=found.proposal.status if found.proposal else None)


@router.get("/checklists", response_class=HTMLResponse)
def open_list(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return render(request, "checklists.html", checklists=checklists.open_checklists(session))


@router.post("/checklists/{intent_id}/done")
def done_form(request: Request, session: SessionDep, owner: CurrentTemplateOwner,
              intent_id: RowId,
              back: Annotated[str, Form(max_length=20)] = "list") -> Response:
    try:
        done = check_off(session, owner, intent_id)
    except NotFoundError:
        raise
    except LearnloopError as exc:
        session.rollback()
        return redirect(request, "/checklists", err=str(exc))
    session.commit()
    word = "checked off" + (f"; proposal #{done.proposal.id} is {done.proposal.status}"
                            if done.proposal else "")
    target = f"/proposals/{done.proposal.id}" if back == "proposal" and done.proposal \
        else "/checklists"
    return redirect(request, target, msg=word)


@api.get("/checklists")
def list_open(session: SessionDep, user: CurrentUser) -> list[s.ChecklistPublic]:
    """Checklists waiting for a person, oldest first, with their exact steps."""
    return [public(c) for c in checklists.open_checklists(session)]


@api.post("/checklists/{intent_id}/done")
def mark_done(session: SessionDep, owner: CurrentTemplateOwner,
              intent_id: RowId) -> s.ChecklistPublic:
    """Record that you carried out the steps; the proposal becomes applied once every write
    of it is delivered or checked off."""
    done = check_off(session, owner, intent_id)
    session.commit()
    return public(done)
