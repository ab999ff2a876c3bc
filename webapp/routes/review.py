"""Findings, proposals (accept / edit / reject), the learning audit and the activity trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from core import audit, policy
from core.errors import ConfigError, LearnloopError
from core.model import Activity, Finding, Proposal
from webapp import insight_data, review_data, services
from webapp.deps import CurrentAdmin, CurrentTemplateOwner, CurrentUser, SessionDep
from webapp.routes.params import RowId
from webapp.views import redirect, render

router = APIRouter()
STATUSES = ("pending", "accepted", "applied", "rejected", "failed", "superseded")


FINDING_SORTS = {"impact": lambda r: -r["finding"].impact, "n": lambda r: -r["finding"].n,
                 "effect": lambda r: -abs(r["finding"].effect - 1)
                 if r["finding"].measure == "effort" else -abs(r["finding"].effect),
                 "q": lambda r: r["finding"].q_value}


@router.get("/findings", response_class=HTMLResponse)
def findings(request: Request, session: SessionDep, user: CurrentUser,
             kind: Annotated[str | None, Query(max_length=40)] = None,
             q: Annotated[str | None, Query(max_length=200)] = None,
             sort: Annotated[str, Query(max_length=20)] = "impact") -> Response:
    rows = insight_data.finding_rows(session)
    kinds = sorted({r["finding"].kind for r in rows})
    if kind:
        rows = [r for r in rows if r["finding"].kind == kind]
    if q:
        rows = [r for r in rows if q.strip().lower() in r["finding"].statement.lower()]
    sort = sort if sort in FINDING_SORTS else "impact"
    rows.sort(key=FINDING_SORTS[sort])
    return render(request, "findings.html", rows=rows, kinds=kinds, kind=kind or "", q=q or "",
                  sort=sort, sorts=list(FINDING_SORTS))


PROPOSAL_SORTS = {"newest": (Proposal.id.desc(),), "oldest": (Proposal.id.asc(),),
                  "decided": (Proposal.decided_at.is_(None), Proposal.decided_at.desc())}


@router.get("/proposals", response_class=HTMLResponse)
def proposals(request: Request, session: SessionDep, user: CurrentUser,
              status: Annotated[str, Query(max_length=20)] = "pending",
              kind: Annotated[str | None, Query(max_length=40)] = None,
              q: Annotated[str | None, Query(max_length=200)] = None,
              sort: Annotated[str, Query(max_length=20)] = "newest") -> Response:
    sort = sort if sort in PROPOSAL_SORTS else "newest"
    query = select(Proposal).order_by(*PROPOSAL_SORTS[sort]).limit(200)
    if status != "all":
        query = query.where(Proposal.status == status)
    if kind:
        query = query.where(Proposal.kind == kind)
    if q:
        query = query.where(Proposal.title.ilike(f"%{q.strip()}%"))
    found = session.scalars(query).all()
    findings_of = {f.id: f for f in session.scalars(select(Finding).where(
        Finding.id.in_([p.finding_id for p in found if p.finding_id])))} if found else {}
    rows = [{"proposal": p, "finding": findings_of.get(p.finding_id or 0),
             "summary": review_data.effect_summary(p, findings_of.get(p.finding_id or 0))}
            for p in found]
    kinds = list(session.scalars(select(Proposal.kind).distinct().order_by(Proposal.kind)))
    return render(request, "proposals.html", rows=rows, status=status, statuses=STATUSES,
                  kinds=kinds, kind=kind or "", q=q or "", sort=sort,
                  sorts=list(PROPOSAL_SORTS))


@router.get("/proposals/{proposal_id}", response_class=HTMLResponse)
def proposal(request: Request, session: SessionDep, user: CurrentUser,
             proposal_id: RowId) -> Response:
    detail = review_data.detail(session, proposal_id)
    session.commit()
    return render(request, "proposal.html", **detail)


@router.post("/proposals/{proposal_id}/{decision}")
async def decide(request: Request, session: SessionDep, owner: CurrentTemplateOwner,
                 proposal_id: RowId, decision: str,
                 note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    target = f"/proposals/{proposal_id}"
    try:
        edits = review_data.edited_params(policy.get_proposal(session, proposal_id),
                                          dict(await request.form())) \
            if decision == "accept" else None
        review_data.decide(session, owner, proposal_id, decision, note, edits)
    except (ConfigError, LearnloopError) as exc:
        session.rollback()
        return redirect(request, target, err=str(exc))
    session.commit()
    word = {"accept": "accepted: the change goes out through the write-back queue",
            "reject": "rejected"}[decision]
    return redirect(request, target, msg=word)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    measured = insight_data.cached(session, "audit", audit.measure)
    latest = audit.latest(session)
    measured_scores = {k: m.score for k, m in measured.items()}
    total = sum(measured_scores.values())
    return render(request, "audit.html", dims=audit.DIMENSIONS, measured=measured,
                  latest=latest, measured_total=total, measured_level=audit.maturity(total),
                  measured_place=audit.placement(measured_scores),
                  self_place=audit.placement(latest.self_scores) if latest else None,
                  can_score=user.role in ("admin", "template_owner"))


@router.post("/audit")
async def take_audit(request: Request, session: SessionDep, owner: CurrentTemplateOwner) -> Response:
    form = dict(await request.form())
    scores: dict[str, int] = {}
    try:
        for key in audit.KEYS:
            raw = str(form.get(key, "")).strip()
            if not raw.isdigit():
                raise ConfigError(f"score {audit.DIMENSIONS[key].title} from 1 to 5")
            scores[key] = int(raw)
        row = audit.record(session, scores, owner.email)
    except ConfigError as exc:
        session.rollback()
        return redirect(request, "/audit", err=str(exc))
    services.log(session, owner, "took the learning audit", "audit", row.id, total=row.total)
    session.commit()
    return redirect(request, "/audit", msg=f"audit saved: {row.total}/30, {row.maturity_level}")


@router.get("/activity", response_class=HTMLResponse)
def activity(request: Request, session: SessionDep, admin: CurrentAdmin,
             page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    rows = session.scalars(select(Activity).order_by(Activity.id.desc())
                           .offset((page - 1) * 100).limit(101)).all()
    return render(request, "activity.html", rows=rows[:100], more=len(rows) > 100, page=page)
