"""Process experiments: the list with verdicts and evidence, the declaration form, one
experiment's page, and the same under /api/process-experiments."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from core.errors import ConfigError
from core.process import measures as catalogue
from core.process import store as process
from webapp.deps import CurrentTemplateOwner, CurrentUser, SessionDep
from webapp.routes.params import RowId
from webapp.views import redirect, render

router = APIRouter()
api = APIRouter(prefix="/api/process-experiments", tags=["process experiments"])
Text = Annotated[str, Form(max_length=4000)]
Short = Annotated[str, Form(max_length=300)]


class ProcessExperimentCreate(BaseModel):
    """A process experiment to declare (predicates as `team=A` text or {dim: [values]})."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200, description="the change in a few words")
    hypothesis: str = Field(max_length=4000)
    treated: str | dict[str, list[str]] = Field(description="e.g. team=A")
    start: dt.date
    measures: list[str] = Field(min_length=1, max_length=7,
                                description=", ".join(catalogue.NAMES) + "; the first decides")
    min_effect: float = Field(description="the smallest effect worth acting on, in the first "
                              "measure's units")
    comparison: str | dict[str, list[str]] | None = None
    cluster: str | None = Field(None, max_length=100)
    end: dt.date | None = None
    direction: str | None = Field(None, description="decrease or increase")
    extend_to: str | dict[str, list[str]] | None = None
    epic: str | None = Field(None, max_length=200)


def _declare(session: SessionDep, owner: Any, body: ProcessExperimentCreate) -> Any:
    return process.declare(session, owner=owner.email, **body.model_dump())


@api.get("")
def list_api(session: SessionDep, user: CurrentUser) -> list[dict[str, Any]]:
    """Every process experiment with its latest verdict and evidence, newest first."""
    return [process.public(session, r) for r in process.listing(session)]


@api.post("", status_code=201)
def declare_api(session: SessionDep, owner: CurrentTemplateOwner,
                body: ProcessExperimentCreate) -> dict[str, Any]:
    """Declare a process experiment (template owners and admins); judged every learning run."""
    row = _declare(session, owner, body)
    session.commit()
    return process.public(session, row)


@api.get("/{experiment_id}")
def show_api(session: SessionDep, user: CurrentUser, experiment_id: RowId) -> dict[str, Any]:
    """One process experiment: declaration, verdict, evidence and the proposal it led to."""
    return process.public(session, process.get(session, experiment_id))


@api.post("/{experiment_id}/stop")
def stop_api(session: SessionDep, owner: CurrentTemplateOwner,
             experiment_id: RowId) -> dict[str, Any]:
    """Stop judging it; it stays listed with its last verdict."""
    row = process.stop(session, experiment_id, owner.email)
    session.commit()
    return process.public(session, row)


def _tone(verdict: str | None) -> str:
    return {"worked": "good", "failed": "bad", "too_small": "bad", "harmed": "bad",
            "diverging": "warn"}.get(verdict or "", "")


@router.get("/process-experiments", response_class=HTMLResponse)
def listing(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    rows = [process.public(session, r) for r in process.listing(session)]
    return render(request, "process_experiments.html", rows=rows, tone=_tone,
                  measures=catalogue.CATALOGUE,
                  can_declare=user.role in ("admin", "template_owner"))


@router.post("/process-experiments")
def declare_form(request: Request, session: SessionDep, owner: CurrentTemplateOwner,
                 name: Short = "", hypothesis: Text = "", treated: Short = "",
                 start: Short = "", measure: Short = "", min_effect: Short = "",
                 also: Short = "", comparison: Short = "", end: Short = "",
                 direction: Short = "", epic: Short = "") -> Response:
    try:
        try:
            minimum = float(min_effect)
        except ValueError:
            raise ConfigError(f"minimum effect {min_effect!r}: give a number") from None
        row = process.declare(
            session, name=name, hypothesis=hypothesis, treated=treated, start=start,
            measures=[m for m in (measure, *also.split(",")) if m.strip()], min_effect=minimum,
            owner=owner.email, comparison=comparison or None, end=end or None,
            direction=direction or None, epic=epic or None)
    except ConfigError as exc:
        session.rollback()
        return redirect(request, "/process-experiments", err=str(exc))
    session.commit()
    return redirect(request, f"/process-experiments/{row.id}",
                    msg="declared: the next learning run judges it")


@router.get("/process-experiments/{experiment_id}", response_class=HTMLResponse)
def detail(request: Request, session: SessionDep, user: CurrentUser,
           experiment_id: RowId) -> Response:
    row = process.public(session, process.get(session, experiment_id))
    return render(request, "process_experiment.html", e=row, tone=_tone,
                  can_decide=user.role in ("admin", "template_owner"))


@router.post("/process-experiments/{experiment_id}/stop")
def stop_form(request: Request, session: SessionDep, owner: CurrentTemplateOwner,
              experiment_id: RowId) -> Response:
    process.stop(session, experiment_id, owner.email)
    session.commit()
    return redirect(request, f"/process-experiments/{experiment_id}",
                    msg="stopped: its last verdict stays listed")
