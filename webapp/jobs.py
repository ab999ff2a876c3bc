"""Jobs a person asks for ("Sync now"): queued as job-run rows, run by the worker, with progress.

The web request only inserts a queued row and answers; the worker (`learnloop worker`, or
`learnloop worker --once`) claims queued rows on its next tick, syncs the connection and runs
a learning cycle, writing its progress into the row's `stats` as it goes, so the page and
`GET /api/jobs/{id}` can show it. A claim is one UPDATE of a row still queued, so of several
workers exactly one runs each job. While it syncs the job holds the connection's sync lock,
then the learning lock (waiting for a learning run that is running elsewhere to end), the
same locks `learnloop sync`/`learn` and the scheduled jobs take.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from connectors import runtime
from core import runs
from core.errors import LearnloopError
from core.model import Connection, JobRun, utcnow
from core.scheduler import (
    LEARN_LOCK,
    Busy,
    claim_job,
    finish_job,
    heartbeat,
    sync_lock,
    take_lock,
    wait_lock,
)
from core.secrets import redact_stored
from core.store import unit_of_work

log = logging.getLogger(__name__)

SYNC_NOW = "sync_now"
ACTIVE = ("queued", "running")
WAITING = "waiting to learn"
LEARN_WAIT = 600.0  # seconds a synced job waits for a running learning run before giving up


def one_line(exc: BaseException, token: str | None = None) -> str:
    """An error as one plain line, with any secret of the connection replaced by ***."""
    text = str(exc) if isinstance(exc, LearnloopError) else f"{type(exc).__name__}: {exc}"
    lines = text.strip().splitlines()
    return redact_stored(lines[0] if lines else type(exc).__name__, token)


def claim_or_busy(engine: Engine, job: str, lock: str, busy: str,
                  connection_id: int | None = None) -> int:
    """Claim `lock` for a run of `job` started here (`learnloop sync`, `learn`).

    Raises:
        Busy: with the message `busy`, while another live run holds the lock.
    """
    run_id = claim_job(engine, job, connection_id=connection_id, lock=lock)
    if run_id is None:
        raise Busy(busy)
    return run_id


@contextmanager
def holding(engine: Engine, run_id: int, token: str | None = None,
            ) -> Iterator[dict[str, Any]]:
    """Run a block under the claim `run_id`: its heartbeat renewed meanwhile, then finished
    "ok" with the stats the block put in the yielded dict, or "error" with the error's line
    (without the connection's secret `token`); the lock is released either way."""
    stats: dict[str, Any] = {}
    try:
        with heartbeat(engine, run_id):
            yield stats
    except BaseException as exc:
        finish_job(engine, run_id, "error", stats, one_line(exc, token))
        raise
    finish_job(engine, run_id, "ok", stats)


def queue_sync(session: Session, conn: Connection) -> tuple[JobRun, bool]:
    """Queue a sync (then a learning run) of `conn` for the worker.

    A sync of the same connection that is still queued is reused rather than doubled.

    Returns:
        The job run and whether it was queued by this call.
    """
    waiting = session.scalar(select(JobRun).where(
        JobRun.job == SYNC_NOW, JobRun.connection_id == conn.id, JobRun.status == "queued")
        .order_by(JobRun.id).limit(1))
    if waiting is not None:
        return waiting, False
    run = JobRun(job=SYNC_NOW, key=f"{SYNC_NOW}:{conn.id}:{uuid.uuid4().hex}",
                 connection_id=conn.id, status="queued", started_at=utcnow(),
                 stats={"phase": "queued"})
    session.add(run)
    session.flush()
    return run, True


def _claim_next(engine: Engine) -> tuple[int, int] | None:
    """Claim the oldest queued job: (run id, connection id), or None when none is left."""
    while True:
        with unit_of_work(engine) as s:
            found = s.execute(select(JobRun.id, JobRun.connection_id).where(
                JobRun.job == SYNC_NOW, JobRun.status == "queued")
                .order_by(JobRun.id).limit(1)).first()
            if found is None:
                return None
            # Another worker may claim it between the SELECT and this UPDATE: the status is
            # checked again inside the UPDATE, and then this worker tries the next one.
            got = s.scalar(update(JobRun).where(JobRun.id == found[0], JobRun.status == "queued")
                           .values(status="running", started_at=utcnow(),
                                   stats={"phase": "starting", **runs.owner()})
                           .returning(JobRun.id).execution_options(synchronize_session=False))
            if got is not None:
                return int(got), int(found[1] or 0)


def _progress(engine: Engine, run_id: int, stats: dict[str, Any]) -> None:
    with unit_of_work(engine) as s:
        # the owner stays on the row, so a killed worker's job is closed as interrupted
        s.execute(update(JobRun).where(JobRun.id == run_id)
                  .values(stats={**runs.owner(), **stats}))


def run_job(engine: Engine, run_id: int, connection_id: int) -> dict[str, Any]:
    """Sync the connection, then run a learning cycle, recording progress in the job run.

    Returns:
        id, connection, status ("ok" or "error"), stats and error.
    """
    with unit_of_work(engine) as s:
        conn = s.get(Connection, connection_id)
        name, token = (conn.name, conn.secrets) if conn else (None, None)
    result: dict[str, Any] = {"id": run_id, "connection": name, "connection_id": connection_id}
    if name is None:
        finish_job(engine, run_id, "error", {}, "the connection was removed")
        return {**result, "status": "error", "error": "the connection was removed"}
    if not take_lock(engine, run_id, sync_lock(connection_id)):
        return _failed(engine, run_id, result, {}, f"a sync of {name} is already running")
    with heartbeat(engine, run_id):
        return _sync_and_learn(engine, run_id, result, name, token)


def _sync_and_learn(engine: Engine, run_id: int, result: dict[str, Any], name: str,
                    token: str | None) -> dict[str, Any]:
    stats: dict[str, Any] = {"phase": "syncing", "items": 0, "batches": 0}
    _progress(engine, run_id, stats)

    def stored(count: int) -> None:
        stats["items"] += count
        stats["batches"] += 1
        _progress(engine, run_id, stats)

    try:
        report = runtime.sync(engine, name, stored)
        stats.update({k: v for k, v in report.as_dict().items()
                      if k not in ("problems", "connection")}, phase="learning")
        _progress(engine, run_id, stats)
    except Exception as exc:
        return _failed(engine, run_id, result, stats, f"sync failed: {one_line(exc, token)}")
    if not take_lock(engine, run_id, LEARN_LOCK):  # the sync lock is released by this too
        _progress(engine, run_id, {**stats, "phase": WAITING})
        if not wait_lock(engine, run_id, LEARN_LOCK, LEARN_WAIT):
            return _failed(engine, run_id, result, stats, "learning run not started: another "
                           f"has been running for more than {LEARN_WAIT:g} s")
        _progress(engine, run_id, stats)
    try:
        learned = runtime.learn(engine)
    except Exception as exc:
        return _failed(engine, run_id, result, stats,
                       f"learning run failed: {one_line(exc, token)}")
    stats.update(phase="done", learning_run=learned.run_id, proposals=len(learned.proposals),
                 writes_queued=learned.writes_queued)
    finish_job(engine, run_id, "ok", stats)
    log.info("sync now %s: %s new, %s updated; learning run #%s", name, report.created,
             report.updated, learned.run_id)
    return {**result, "status": "ok", "stats": stats}


def _failed(engine: Engine, run_id: int, result: dict[str, Any], stats: dict[str, Any],
            error: str) -> dict[str, Any]:
    stats["phase"] = "failed"
    finish_job(engine, run_id, "error", stats, error)
    log.warning("sync now %s: %s", result["connection"], error)
    return {**result, "status": "error", "stats": stats, "error": error}


def run_queued(engine: Engine, limit: int = 100) -> list[dict[str, Any]]:
    """Run queued jobs, oldest first, until none is left (or `limit` ran).

    Returns:
        What each job did (see `run_job`).
    """
    done = []
    for _ in range(limit):
        claimed = _claim_next(engine)
        if claimed is None:
            break
        done.append(run_job(engine, *claimed))
    return done


def summary(run: JobRun) -> str:
    """What a sync-now job is doing or did, in words."""
    st = run.stats or {}
    if run.status == "queued":
        return "queued: waiting for the worker (`learnloop worker`)"
    if run.status == "running":
        if st.get("phase") in ("learning", WAITING):
            return (f"synced {st.get('created', 0)} new, {st.get('updated', 0)} updated; "
                    + ("learning run in progress" if st.get("phase") == "learning"
                       else "waiting for the learning run that is running to end"))
        return (f"syncing: {st.get('items', 0):,} items stored in {st.get('batches', 0)} "
                "batches so far")
    synced = (f"synced: {st.get('created', 0)} new, {st.get('updated', 0)} updated, "
              f"{st.get('unchanged', 0)} unchanged, {st.get('quarantined', 0)} rows quarantined"
              if "created" in st else "")
    if run.status == "ok":
        return (f"{synced}; learning run #{st.get('learning_run')}: {st.get('proposals', 0)} "
                f"proposals, {st.get('writes_queued', 0)} write-backs queued")
    return "; ".join(p for p in (synced, run.error or run.status) if p)


def elapsed(run: JobRun, now: dt.datetime | None = None) -> float:
    """Seconds the job has run (or ran), 0 while it waits."""
    if run.status == "queued":
        return 0.0
    end = run.finished_at or now or utcnow()
    return max((end - run.started_at).total_seconds(), 0.0)
