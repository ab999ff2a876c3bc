"""What an admin does to a connection, shared by the pages and the JSON API."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from fastapi import Path
from sqlalchemy.orm import Session, object_session

from connectors import registry, runtime
from core import secrets
from core.connections import add_connection, merge_secrets, validate_config, validate_mapping
from core.contract import ConnectorFactory, FieldInfo, Health
from core.errors import ConfigError, NotFoundError
from core.model import Connection, JobRun, User
from core.schedule import parse_schedule
from webapp import jobs, services
from webapp.forms import check_urls, config_from_form
from webapp.plain import plain

ACTIONS = ("test", "install", "uninstall", "deliver")  # "sync" is queued: see sync_now
ACTION_PATH = Path(pattern="^(" + "|".join(ACTIONS) + ")$")
_FIELDS_TTL = 300.0
# (connection id, fingerprint) -> when read, what was found: a connection whose setup changed,
# or another store's connection with the same id, is never served another's fields.
_fields_cache: dict[tuple[int, str], tuple[float, list[FieldInfo] | str]] = {}
_cache_lock = threading.Lock()


def get(session: Session, conn_id: int) -> Connection:
    """The connection with this id.

    Raises:
        NotFoundError: when there is none.
    """
    conn = session.get(Connection, conn_id)
    if conn is None:
        raise NotFoundError(f"there is no connection #{conn_id}")
    return conn


def check_schedule(text: str | None) -> str | None:
    """A validated schedule ('every 15m' or a crontab line), or None for the default."""
    text = (text or "").strip()
    if not text:
        return None
    parse_schedule(text)
    return text


def schedule_text(conn: Connection) -> str:
    """The connection's schedule in words."""
    return parse_schedule(conn.schedule or "every 1h").describe()


def install(session: Session, user: User, factory: ConnectorFactory, name: str,
            form: Mapping[str, Any], schedule: str | None = None,
            mapping: Mapping[str, Any] | None = None, from_form: bool = True) -> Connection:
    """Validate and store a new connection (secrets encrypted) from form or JSON values.

    Local paths are confined to LEARNLOOP_FILE_ROOTS: whoever uses the web app or the API
    reaches only the files the operator allowed.

    Raises:
        ConfigError: naming what is wrong.
    """
    config = config_from_form(factory.config_model, form) if from_form else dict(form)
    check_urls(factory.config_model, config)
    conn = add_connection(session, factory, name.strip(), config, mapping or {},
                          check_schedule(schedule), confined=True)
    services.log(session, user, "installed a connection", "connection", conn.id,
                 kind=factory.name, name=conn.name)
    return conn


def update_config(session: Session, user: User, conn: Connection,
                  values: Mapping[str, Any], from_form: bool = True) -> None:
    """Change a connection's settings; secrets left blank keep their stored value.

    Raises:
        ConfigError: naming what is wrong.
    """
    factory = registry.get(conn.kind)
    given = config_from_form(factory.config_model, values, keep_secrets=True) \
        if from_form else dict(values)
    check_urls(factory.config_model, given)
    model = validate_config(factory, merge_secrets(conn, factory, given), confined=True)
    plain, secret_values = secrets.split_config(model)
    conn.config, conn.secrets = plain, secrets.encrypt(secret_values)
    _forget(conn.id)
    services.log(session, user, "changed the settings", "connection", conn.id,
                 fields=sorted(k for k in given if k not in secret_values),
                 secrets_changed=sorted(k for k in given if k in secret_values))


def discovered(conn: Connection) -> list[FieldInfo] | str:
    """The fields the tool reports, for the mapping editor (or why they could not be read)."""
    now = time.monotonic()
    try:
        key = (conn.id, runtime.fingerprint(conn, registry.get(conn.kind)))
    except ConfigError as exc:  # its connector is not installed (any more)
        return f"could not read the tool's fields: {exc}"
    with _cache_lock:
        hit = _fields_cache.get(key)
    if hit and now - hit[0] < _FIELDS_TTL:
        return hit[1]
    session = object_session(conn)
    engine: Any = session.get_bind() if session is not None else None
    try:
        found: list[FieldInfo] | str = runtime.connector_for(conn, engine).discover_fields()
    except Exception as exc:
        found = secrets.redact_stored(f"could not read the tool's fields: {exc}", conn.secrets)
    with _cache_lock:
        _fields_cache[key] = (now, found)
    return found


def _forget(conn_id: int) -> None:
    with _cache_lock:
        for key in [k for k in _fields_cache if k[0] == conn_id]:
            del _fields_cache[key]


def mapping_from_form(conn: Connection, form: Mapping[str, Any]) -> dict[str, Any]:
    """A mapping from the editor's inputs: one tool field per core field, and segment fields."""
    factory = registry.get(conn.kind)
    mapping: dict[str, Any] = {}
    for f in factory.mapping_fields:
        value = str(form.get(f"map_{f.name}") or "").strip()
        if value:
            mapping[f.name] = value
    segments = form.get("segments")
    if isinstance(segments, str):
        mapping["segments"] = [s.strip() for s in segments.split(",") if s.strip()]
    elif isinstance(segments, list):
        mapping["segments"] = [str(s) for s in segments]
    return mapping


def set_mapping(session: Session, user: User, conn: Connection, mapping: Mapping[str, Any]) -> None:
    """Store a validated field mapping.

    Raises:
        ConfigError: for unknown or missing fields.
    """
    conn.mapping = validate_mapping(registry.get(conn.kind), mapping)
    services.log(session, user, "changed the field mapping", "connection", conn.id,
                 mapping=conn.mapping)


def sync_now(session: Session, user: User, conn: Connection) -> JobRun:
    """Queue a sync of `conn` (then a learning run) for the worker; a sync still waiting in
    the queue is reused. Returns the job run, whose progress the worker records."""
    run, new = jobs.queue_sync(session, conn)
    if new:
        services.log(session, user, "queued a sync", "connection", conn.id, job=run.id)
    return run


def get_job(session: Session, job_id: int) -> JobRun:
    """The job run with this id.

    Raises:
        NotFoundError: when there is none.
    """
    run = session.get(JobRun, job_id)
    if run is None:
        raise NotFoundError(f"there is no job #{job_id}")
    return run


def try_connection(conn: Connection) -> Health:
    """Check a connection not saved yet against its tool (a new connector, not the store's)."""
    try:
        health = runtime.connector_for(conn).check()
    except Exception as exc:  # a connector that raises instead of reporting: still one message
        health = Health(ok=False, message=str(exc))
    health.message = secrets.redact_stored(health.message, conn.secrets)
    return health


_RUN_NAMES = {"sync_now": "Sync now", "sync": "Scheduled sync", "learn": "Learning run",
              "deliver": "Write-back"}
_COUNTS = (("created", "new"), ("updated", "updated"), ("unchanged", "unchanged"),
           ("deleted", "deleted"), ("quarantined", "quarantined"), ("events", "events"))


def run_row(run: JobRun) -> dict[str, Any]:
    """One row of a connection's run history, in words: what ran, when, how long, what it did."""
    st = run.stats or {}
    counts = ", ".join(f"{int(st[k]):,} {word}" for k, word in _COUNTS
                       if isinstance(st.get(k), int | float) and not isinstance(st.get(k), bool)
                       and (st[k] or k in ("created", "updated")))
    seconds = jobs.elapsed(run) if run.finished_at or run.status in jobs.ACTIVE else None
    took = "-" if seconds is None else (f"{seconds:,.0f} s" if seconds < 120
                                        else f"{seconds / 60:,.0f} min")
    if run.error:
        result = plain(run.error).headline
    elif run.job == "sync_now":
        result = jobs.summary(run)
    else:
        result = counts or run.status
    return {"id": run.id, "name": _RUN_NAMES.get(run.job, run.job.replace("_", " ")),
            "link": f"/admin/jobs/{run.id}" if run.job == "sync_now" else None,
            "started": run.started_at, "took": took, "status": run.status,
            "counts": counts or "-", "result": result}


def run_action(session: Session, user: User, conn: Connection, action: str,
               form: Mapping[str, Any]) -> str:
    """Carry out one admin action on a connection; returns what happened in words.

    Raises:
        ConfigError: for an unknown action or bad input.
    """
    engine = session.get_bind()
    if action == "config":
        update_config(session, user, conn, {k: v for k, v in form.items() if k != "csrf_token"})
        return "settings saved"
    if action == "mapping":
        set_mapping(session, user, conn, mapping_from_form(conn, form))
        return "field mapping saved"
    if action == "schedule":
        conn.schedule = check_schedule(str(form.get("schedule") or ""))
        services.log(session, user, "changed the schedule", "connection", conn.id,
                     schedule=conn.schedule)
        return f"sync schedule: {schedule_text(conn)}"
    if action == "sync":
        run = sync_now(session, user, conn)
        return f"sync queued as job #{run.id}; the worker runs it, then a learning run"
    if action == "delete":
        services.log(session, user, "removed a connection", "connection", conn.id,
                     name=conn.name)
        session.delete(conn)
        _forget(conn.id)
        runtime.connectors(engine).forget(conn.id)  # type: ignore[arg-type]
        return f"{conn.name} removed with everything synced from it"
    name, conn_id = conn.name, conn.id
    session.commit()  # the runtime works in its own transactions
    message = _tool_action(engine, name, action)
    services.log(session, user, f"ran {action}", "connection", conn_id, result=message)
    return message


def _tool_action(engine: Any, name: str, action: str) -> str:
    if action == "test":
        health = runtime.test_connection(engine, name)
        missing = f" Missing permissions: {', '.join(health.missing_permissions)}." \
            if health.missing_permissions else ""
        return ("Connection works: " if health.ok else "Connection failed: ") \
            + health.message + missing
    if action in ("install", "uninstall"):
        from core.connections import get_connection
        from core.store import unit_of_work

        with unit_of_work(engine) as s:
            connector = runtime.connector_for(get_connection(s, name), engine)
        done = connector.install() if action == "install" else connector.uninstall()
        parts = [f"{label}: {', '.join(values)}" for label, values in
                 (("created", done.created), ("already there", done.existing),
                  ("removed", done.removed), ("problems", done.problems)) if values]
        return f"{action}: " + ("; ".join(parts) or "nothing to do")
    if action == "deliver":
        result = runtime.deliver(engine)
        return (f"write-back: {result.delivered} delivered, {result.retrying} to retry, "
                f"{result.dead} given up")
    raise ConfigError(f"unknown action {action!r}")

