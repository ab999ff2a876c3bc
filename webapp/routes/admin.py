"""Admin pages: install a connector per tool, test it, map fields, schedule, sync now (queued
for the worker, its progress on the job's page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from connectors import registry
from core.connections import repair_message, unreadable_secrets
from core.errors import ConfigError
from core.model import Activity, Connection, JobRun, QuarantinedRow, WriteIntent
from webapp import admin_ops, jobs
from webapp.deps import CurrentAdmin, SessionDep
from webapp.forms import fields_of
from webapp.plain import plain
from webapp.routes.params import RowId
from webapp.views import redirect, render

router = APIRouter(prefix="/admin")
TOOL_NAMES = {"jira": "Jira Cloud", "gsheets": "Google Sheets", "file": "a CSV or XLSX file",
              "hubspot": "HubSpot", "salesforce": "Salesforce"}


def tool_name(kind: str) -> str:
    """A connector's tool as people call it."""
    return TOOL_NAMES.get(kind, kind)


def _back(request: Request, conn_id: int | None, msg: str | None = None,
          err: str | None = None) -> Response:
    where = f"/admin/connections/{conn_id}" if conn_id else "/admin/connections"
    return redirect(request, where, msg, err)


@router.get("/connections", response_class=HTMLResponse)
def connections(request: Request, session: SessionDep, admin: CurrentAdmin) -> Response:
    rows = session.execute(
        select(Connection, func.count(QuarantinedRow.id))
        .outerjoin(QuarantinedRow, QuarantinedRow.connection_id == Connection.id)
        .group_by(Connection.id).order_by(Connection.name)).all()
    return render(request, "connections.html", rows=rows, kinds=sorted(registry.available()),
                  tool_name=tool_name)


@router.get("/connections/new", response_class=HTMLResponse)
def new_connection(request: Request, admin: CurrentAdmin, kind: str) -> Response:
    factory = registry.get(kind)
    return render(request, "connection_new.html", kind=kind, factory=factory, tool=tool_name(kind),
                  fields=fields_of(factory.config_model), values={})


@router.post("/connections")
async def create_connection(request: Request, session: SessionDep, admin: CurrentAdmin,
                            kind: Annotated[str, Form()], name: Annotated[str, Form()],
                            schedule: Annotated[str, Form()] = "") -> Response:
    factory = registry.get(kind)
    form = dict(await request.form())
    untested = str(form.get("untested") or "") in ("on", "1", "true")

    def again(problem: str, offer_untested: bool = False) -> Response:
        session.rollback()  # nothing is saved
        return render(request, "connection_new.html", status_code=422, kind=kind,
                      tool=tool_name(kind),
                      factory=factory, fields=fields_of(factory.config_model, form),
                      values=form, problem=problem, offer_untested=offer_untested)

    try:
        conn = admin_ops.install(session, admin, factory, name, form, schedule)
    except ConfigError as exc:
        return again(str(exc))
    if untested:
        conn.health = "untested"
        session.commit()
        return _back(request, conn.id, f"{conn.name} saved untested: run \"Test connection\" "
                                       "before its first sync, then map its fields")
    health = admin_ops.try_connection(conn)  # tested before it is saved
    if not health.ok:
        return again(f"Connection failed, so {name.strip()} was not saved: {health.message}",
                     offer_untested=True)
    conn.health, conn.last_error = "ok", None
    session.commit()
    return _back(request, conn.id, f"{conn.name} installed; connection works: {health.message}. "
                                   "Next, map its fields")


@router.get("/connections/{conn_id}", response_class=HTMLResponse)
def connection(request: Request, session: SessionDep, admin: CurrentAdmin,
               conn_id: RowId) -> Response:
    conn = admin_ops.get(session, conn_id)
    factory = registry.get(conn.kind)
    items = session.scalar(select(func.count()).where(
        Connection.id == conn_id).select_from(Connection).join(Connection.items)) or 0
    outbox = dict(session.execute(select(WriteIntent.status, func.count()).where(
        WriteIntent.connection_id == conn_id).group_by(WriteIntent.status)).all())
    runs = session.scalars(select(JobRun).where(JobRun.connection_id == conn_id)
                           .order_by(JobRun.id.desc()).limit(8)).all()
    quarantined = session.scalars(select(QuarantinedRow).where(
        QuarantinedRow.connection_id == conn_id).order_by(QuarantinedRow.id.desc()).limit(10)).all()
    errors = session.scalars(select(WriteIntent).where(
        WriteIntent.connection_id == conn_id, WriteIntent.last_error.is_not(None))
        .order_by(WriteIntent.id.desc()).limit(5)).all()
    missing = unreadable_secrets(conn, factory)
    history = session.scalars(select(Activity).where(
        Activity.subject_type == "connection", Activity.subject_id == str(conn_id))
        .order_by(Activity.id.desc()).limit(10)).all()
    return render(request, "connection.html", conn=conn, factory=factory, items=items,
                  outbox=outbox, runs=runs, quarantined=quarantined, write_errors=errors,
                  history=history, fields=fields_of(factory.config_model, conn.config),
                  discovered=admin_ops.discovered(conn), schedule=admin_ops.schedule_text(conn),
                  job_summary=jobs.summary, run_rows=[admin_ops.run_row(r) for r in runs],
                  reenter=repair_message(missing) if missing else None)


@router.post("/connections/{conn_id}/{action}")
async def act(request: Request, session: SessionDep, admin: CurrentAdmin, conn_id: RowId,
              action: str) -> Response:
    conn = admin_ops.get(session, conn_id)
    form = dict(await request.form())
    if action == "sync":
        run = admin_ops.sync_now(session, admin, conn)
        session.commit()
        return redirect(request, f"/admin/jobs/{run.id}", msg=f"sync queued as job #{run.id}")
    try:
        message = admin_ops.run_action(session, admin, conn, action, form)
    except ConfigError as exc:
        session.rollback()
        return _back(request, conn_id, err=str(exc))
    session.commit()
    if action == "delete":
        return _back(request, None, message)
    if action == "test" and not message.startswith("Connection works"):
        return _back(request, conn_id, err=message)
    return _back(request, conn_id, message)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job(request: Request, session: SessionDep, admin: CurrentAdmin, job_id: RowId) -> Response:
    run = admin_ops.get_job(session, job_id)
    conn = session.get(Connection, run.connection_id) if run.connection_id else None
    summary = jobs.summary(run)
    if run.error:  # the tool's raw error is folded away below, its plain words here
        summary = summary.replace(run.error, plain(run.error).headline)
    return render(request, "job.html", run=run, conn=conn, summary=summary,
                  seconds=jobs.elapsed(run), active=run.status in jobs.ACTIVE)
