"""The JSON API: everything the pages do, for automation (bearer tokens) and scripts."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from connectors import registry, runtime
from core import audit, policy
from core.contract import declared_targets
from core.errors import NotFoundError
from core.model import Activity, ApiToken, Connection, Proposal, utcnow
from webapp import admin_ops, insight_data, item_data, jobs, review_data, security, services
from webapp import schemas as s
from webapp.deps import CurrentAdmin, CurrentTemplateOwner, CurrentUser, SessionDep
from webapp.routes.params import BeforeId, RowId

router = APIRouter(prefix="/api")
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/me", tags=["account"])
def me(user: CurrentUser) -> s.UserPublic:
    """Who the token or session belongs to."""
    return s.UserPublic.model_validate(user)


@router.get("/tokens", tags=["account"])
def list_tokens(session: SessionDep, user: CurrentUser) -> list[s.TokenPublic]:
    """Your API tokens (never their secrets)."""
    rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                           .order_by(ApiToken.id)).all()
    return [s.TokenPublic.model_validate(r) for r in rows]


@router.post("/tokens", tags=["account"], status_code=201)
def create_token(session: SessionDep, user: CurrentUser, body: s.TokenCreate) -> s.TokenCreated:
    """A new token acting as you; its secret is in this response only."""
    row, secret = security.create_token(session, user, body.name)
    services.log(session, user, "created an API token", "api_token", row.id, name=row.name)
    session.commit()
    return s.TokenCreated(**s.TokenPublic.model_validate(row).model_dump(), token=secret)


@router.delete("/tokens/{token_id}", tags=["account"])
def revoke_token(session: SessionDep, user: CurrentUser, token_id: RowId) -> s.TokenPublic:
    """Revoke one of your tokens."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFoundError(f"you have no token #{token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        services.log(session, user, "revoked an API token", "api_token", row.id)
    session.commit()
    return s.TokenPublic.model_validate(row)


@router.get("/connectors", tags=["admin"])
def connectors(admin: CurrentAdmin) -> list[s.ConnectorKind]:
    """The installable connectors with the JSON schema of their settings."""
    return [s.ConnectorKind(name=name, capabilities=sorted(f.capabilities),
                            targets=[s.TargetPublic(**dataclasses.asdict(t))
                                     for t in declared_targets(f)],
                            config_schema=f.config_model.model_json_schema(),
                            mapping_fields=[{"name": m.name, "description": m.description,
                                             "required": m.required} for m in f.mapping_fields])
            for name, f in sorted(registry.available().items())]


def _conn(session: Any, conn_id: int) -> Connection:
    return admin_ops.get(session, conn_id)


@router.get("/connections", tags=["admin"])
def list_connections(session: SessionDep, admin: CurrentAdmin) -> list[s.ConnectionPublic]:
    """Every connection, settings without secrets."""
    rows = session.scalars(select(Connection).order_by(Connection.name)).all()
    return [s.ConnectionPublic.model_validate(r) for r in rows]


@router.post("/connections", tags=["admin"], status_code=201)
def create_connection(session: SessionDep, admin: CurrentAdmin,
                      body: s.ConnectionCreate) -> s.ConnectionPublic:
    """Install a connection; secrets are stored encrypted."""
    conn = admin_ops.install(session, admin, registry.get(body.kind), body.name, body.config,
                             body.schedule, body.mapping, from_form=False)
    session.commit()
    return s.ConnectionPublic.model_validate(conn)


@router.get("/connections/{conn_id}", tags=["admin"])
def get_connection(session: SessionDep, admin: CurrentAdmin, conn_id: RowId) -> s.ConnectionPublic:
    """One connection."""
    return s.ConnectionPublic.model_validate(_conn(session, conn_id))


@router.delete("/connections/{conn_id}", tags=["admin"])
def delete_connection(session: SessionDep, admin: CurrentAdmin, conn_id: RowId) -> s.ActionResult:
    """Remove a connection and everything synced from it."""
    message = admin_ops.run_action(session, admin, _conn(session, conn_id), "delete", {})
    session.commit()
    return s.ActionResult(message=message)


@router.get("/connections/{conn_id}/fields", tags=["admin"])
def fields(session: SessionDep, admin: CurrentAdmin, conn_id: RowId) -> list[s.FieldPublic]:
    """The fields the tool reports, for mapping."""
    found = admin_ops.discovered(_conn(session, conn_id))
    if isinstance(found, str):
        raise NotFoundError(found)
    return [s.FieldPublic(id=f.id, name=f.name, type=f.type) for f in found]


@router.put("/connections/{conn_id}/mapping", tags=["admin"])
def put_mapping(session: SessionDep, admin: CurrentAdmin, conn_id: RowId,
                body: s.MappingUpdate) -> s.ConnectionPublic:
    """Replace the field mapping."""
    conn = _conn(session, conn_id)
    admin_ops.set_mapping(session, admin, conn, body.mapping)
    session.commit()
    return s.ConnectionPublic.model_validate(conn)


@router.put("/connections/{conn_id}/schedule", tags=["admin"])
def put_schedule(session: SessionDep, admin: CurrentAdmin, conn_id: RowId,
                 body: s.ScheduleUpdate) -> s.ConnectionPublic:
    """Set the sync schedule ('every 15m' or a crontab line; null for hourly)."""
    conn = _conn(session, conn_id)
    admin_ops.run_action(session, admin, conn, "schedule", {"schedule": body.schedule or ""})
    session.commit()
    return s.ConnectionPublic.model_validate(conn)


def _job(run: Any) -> s.JobPublic:
    return s.JobPublic.model_validate(run).model_copy(update={"message": jobs.summary(run)})


@router.post("/connections/{conn_id}/sync", tags=["admin"], status_code=202)
def sync_now(session: SessionDep, admin: CurrentAdmin, conn_id: RowId,
             response: Response) -> s.JobPublic:
    """Queue a sync (then a learning run) for the worker and answer at once with the job;
    follow it at `GET /api/jobs/{id}` (its `Location`)."""
    run = admin_ops.sync_now(session, admin, _conn(session, conn_id))
    session.commit()
    response.headers["Location"] = f"/api/jobs/{run.id}"
    return _job(run)


@router.get("/jobs/{job_id}", tags=["admin"])
def job(session: SessionDep, admin: CurrentAdmin, job_id: RowId) -> s.JobPublic:
    """One job run: status (queued, running, ok, error) and its progress counts."""
    return _job(admin_ops.get_job(session, job_id))


@router.post("/connections/{conn_id}/{action}", tags=["admin"])
def connection_action(session: SessionDep, admin: CurrentAdmin, conn_id: RowId,
                      action: Annotated[str, admin_ops.ACTION_PATH]) -> s.ActionResult:
    """test | install | uninstall (tool-side fields) | deliver (sync has its own route)."""
    message = admin_ops.run_action(session, admin, _conn(session, conn_id), action, {})
    session.commit()
    return s.ActionResult(message=message)


@router.post("/outbox/deliver", tags=["admin"])
def deliver(admin: CurrentAdmin, session: SessionDep) -> s.DeliveryResult:
    """Deliver every due write-back now (the worker does this on its own)."""
    engine = session.get_bind()
    session.close()
    report = runtime.deliver(engine)  # type: ignore[arg-type]
    return s.DeliveryResult(delivered=report.delivered, retrying=report.retrying,
                            dead=report.dead)


@router.get("/summary", tags=["insights"])
def summary(session: SessionDep, user: CurrentUser) -> s.Summary:
    """Headline counts, forecast calibration (with n and intervals) and the gap trend."""
    return s.Summary(counts=insight_data.cached(session, "counts", insight_data.counts),
                     calibration=insight_data.cached(session, "calibration",
                                                     insight_data.calibration_cycles),
                     gap=insight_data.cached(session, "gap", insight_data.gap))


@router.get("/items", tags=["insights"])
def items(session: SessionDep, user: CurrentUser,
          status: Annotated[str | None, Query(max_length=20)] = None,
          q: Annotated[str | None, Query(max_length=200)] = None,
          page: Annotated[int, Query(ge=1, le=100_000)] = 1, size: Limit = 50) -> s.ItemPage:
    """Items, newest first, with their latest effort P80 forecast."""
    rows, more = item_data.page(session, status=status, q=q, page=page, size=size)
    return s.ItemPage(page=page, more=more, items=[
        s.ItemRow(**s.ItemPublic.model_validate(item).model_dump(), forecast_p80=p80)
        for item, _, p80 in rows])


@router.get("/items/{item_id}", tags=["insights"])
def item(session: SessionDep, user: CurrentUser, item_id: RowId) -> s.ItemDetail:
    """One item with its timeline: plan, actions, outcome, forecasts issued."""
    detail = item_data.detail(session, item_id)
    return s.ItemDetail(item=s.ItemPublic.model_validate(detail["item"]),
                        timeline=[s.TimelineEntry(**t) for t in detail["timeline"]])


@router.get("/findings", tags=["insights"])
def findings(session: SessionDep, user: CurrentUser) -> list[s.FindingPublic]:
    """The findings of the latest learning run, by impact."""
    return [s.FindingPublic.model_validate(f) for f in insight_data.cached(session, "findings", insight_data.findings)]


@router.get("/proposals", tags=["proposals"])
def proposals(session: SessionDep, user: CurrentUser,
              status: Annotated[str | None, Query(max_length=20)] = None,
              limit: Limit = 100) -> list[s.ProposalPublic]:
    """Proposals, newest first."""
    query = select(Proposal).order_by(Proposal.id.desc()).limit(limit)
    if status:
        query = query.where(Proposal.status == status)
    return [s.ProposalPublic.model_validate(p) for p in session.scalars(query)]


@router.get("/proposals/{proposal_id}", tags=["proposals"])
def proposal(session: SessionDep, user: CurrentUser, proposal_id: RowId) -> s.ProposalPublic:
    """One proposal with its diff and evidence."""
    found = policy.get_proposal(session, proposal_id)
    policy.settle(session, found)
    session.commit()
    return s.ProposalPublic.model_validate(found)


@router.post("/proposals/{proposal_id}/accept", tags=["proposals"])
def accept(session: SessionDep, owner: CurrentTemplateOwner, proposal_id: RowId,
           body: s.Decision) -> s.ProposalPublic:
    """Accept (optionally with edited parameters): a new policy version, written back."""
    found = review_data.decide(session, owner, proposal_id, "accept", body.note, body.params)
    session.commit()
    return s.ProposalPublic.model_validate(found)


@router.post("/proposals/{proposal_id}/reject", tags=["proposals"])
def reject(session: SessionDep, owner: CurrentTemplateOwner, proposal_id: RowId,
           body: s.Decision) -> s.ProposalPublic:
    """Reject, with the reason."""
    found = review_data.decide(session, owner, proposal_id, "reject", body.note)
    session.commit()
    return s.ProposalPublic.model_validate(found)


def _audit_public(session: Any) -> s.AuditPublic:
    measured = insight_data.cached(session, "audit", audit.measure)
    scores = {k: m.score for k, m in measured.items()}
    total = sum(scores.values())
    out = s.AuditPublic(
        measured={k: s.MeasuredPublic(score=m.score, evidence=m.evidence, n=m.n)
                  for k, m in measured.items()},
        measured_total=total, measured_maturity=audit.maturity(total),
        measured_quadrant=audit.quadrant(scores))
    latest = audit.latest(session)
    if latest is not None:
        out.self_scores, out.self_total = dict(latest.self_scores), latest.total
        out.self_maturity, out.self_quadrant = latest.maturity_level, latest.quadrant
        out.saved_at = latest.created_at
    return out


@router.get("/audit", tags=["audit"])
def get_audit(session: SessionDep, user: CurrentUser) -> s.AuditPublic:
    """The six dimensions measured from the store, beside the latest self-scores."""
    return _audit_public(session)


@router.post("/audit", tags=["audit"], status_code=201)
def post_audit(session: SessionDep, owner: CurrentTemplateOwner,
               body: s.AuditCreate) -> s.AuditPublic:
    """Save a self-scored audit (each of the six dimensions 1-5)."""
    row = audit.record(session, body.self_scores, owner.email)
    services.log(session, owner, "took the learning audit", "audit", row.id, total=row.total)
    session.commit()
    return _audit_public(session)


@router.get("/activity", tags=["admin"])
def activity(session: SessionDep, admin: CurrentAdmin, limit: Limit = 100,
             before: BeforeId = None) -> list[s.ActivityPublic]:
    """The audit trail, newest first (page with `before`=the last id seen)."""
    query = select(Activity).order_by(Activity.id.desc()).limit(limit)
    if before:
        query = query.where(Activity.id < before)
    return [s.ActivityPublic.model_validate(a) for a in session.scalars(query)]
