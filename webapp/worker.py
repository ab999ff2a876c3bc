"""`learnloop worker`: scheduled syncs, learning and write-back, safe to run several at once.

The jobs are module-level functions that APScheduler fires by import string. Each is
idempotent: a sync claims "sync:<connection id>:<slot>" and a learning run "learn:<slot>"
(core.scheduler.claim_job), so of several workers sharing one database exactly one runs each
slot; each also holds its lock while it runs (the one `learnloop sync` and `learn` take), so a
slot that comes while the same sync or a learning run is running elsewhere is skipped;
deliveries go through the outbox, whose claims hand every intent to one worker. A
"Sync now" from the web app is a queued job run (`webapp.jobs`) that `queued_job` picks up
every few seconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from sqlalchemy import Engine, select

from connectors import runtime
from core import secrets
from core.errors import ConfigError
from core.model import Connection, utcnow
from core.schedule import DEFAULT_SCHEDULE, Schedule, parse_schedule
from core.scheduler import (
    LEARN_LOCK,
    JobScheduler,
    JobSpec,
    abandon_stale,
    claim_job,
    finish_job,
    heartbeat,
    record_job,
    sync_lock,
)
from core.settings import claim_timeout
from core.store import open_store, unit_of_work
from webapp import jobs

log = logging.getLogger(__name__)

SYNC_JOB = "webapp.worker:sync_job"
DELIVER_JOB = "webapp.worker:deliver_job"
QUEUED_JOB = "webapp.worker:queued_job"
QUEUED_EVERY = 2.0  # seconds between looks for queued "Sync now" jobs
RELOAD_EVERY = 60.0  # seconds between re-reads of the connections

_engine_lock = threading.Lock()
_engine: Engine | None = None


def use_engine(engine: Engine | None) -> None:
    """The store the jobs use (None: open the configured one when first needed)."""
    global _engine
    with _engine_lock:
        _engine = engine


def _store(engine: Engine | None) -> Engine:
    global _engine
    if engine is not None:
        return engine
    with _engine_lock:
        if _engine is None:
            _engine = open_store()
        return _engine


_one_line = jobs.one_line


def sync_job(connection_id: int, *, engine: Engine | None = None, learn: bool = True,
             now: dt.datetime | None = None) -> dict[str, Any]:
    """Sync one connection for the current slot of its schedule, unless another worker has.

    After a successful sync, a learning run for the same slot (`learn_job`): several syncs
    finishing together run one learning. Errors are recorded on the job run, never raised.

    Returns:
        connection, status ("ok", "error", "skipped" when the slot was claimed elsewhere or
        this connection is being synced right now, "gone" when the connection was removed),
        key, stats, error, learn.
    """
    engine = _store(engine)
    with unit_of_work(engine) as s:
        conn = s.get(Connection, connection_id)
        if conn is None:
            return {"connection_id": connection_id, "status": "gone"}
        name, text, token = conn.name, conn.schedule, conn.secrets
    result: dict[str, Any] = {"connection": name, "connection_id": connection_id}
    try:
        schedule = parse_schedule(text or DEFAULT_SCHEDULE)
    except ConfigError as exc:
        log.warning("connection %s is not synced: %s", name, exc)
        return {**result, "status": "error", "error": str(exc)}
    slot = schedule.slot(now or utcnow())
    key = f"sync:{connection_id}:{slot}"
    result.update(slot=slot, key=key)
    run_id = claim_job(engine, "sync_job", key, connection_id, lock=sync_lock(connection_id))
    if run_id is None:
        log.debug("sync %s: slot %s already claimed, or a sync of it is running", name, slot)
        return {**result, "status": "skipped"}
    try:
        with heartbeat(engine, run_id):
            report = runtime.sync(engine, name)
    except Exception as exc:
        error = _one_line(exc, token)
        finish_job(engine, run_id, "error", {}, error)
        log.warning("sync %s failed: %s", name, error)
        return {**result, "status": "error", "error": error}
    stats = {k: v for k, v in report.as_dict().items() if k != "problems"}
    finish_job(engine, run_id, "ok", stats)
    log.info("sync %s (%s): %s new, %s updated, %s quarantined", name, slot, report.created,
             report.updated, report.quarantined)
    result.update(status="ok", stats=stats)
    if learn:
        result["learn"] = learn_job(slot, engine=engine)
    return result


def learn_job(slot: str, *, engine: Engine | None = None) -> dict[str, Any]:
    """Run one learning cycle for `slot`, unless another worker already ran it.

    Returns:
        status ("ok", "error", "skipped": the slot was run, or a learning run is running),
        key, stats, error.
    """
    engine = _store(engine)
    key = f"learn:{slot}"
    run_id = claim_job(engine, "learn_job", key, lock=LEARN_LOCK)
    if run_id is None:
        return {"status": "skipped", "key": key}
    try:
        with heartbeat(engine, run_id):
            report = runtime.learn(engine)
    except Exception as exc:
        error = _one_line(exc)
        finish_job(engine, run_id, "error", {}, error)
        log.warning("learning run failed: %s", error)
        return {"status": "error", "key": key, "error": error}
    stats = {"learning_run": report.run_id, "findings": report.findings_total,
             "proposals": len(report.proposals), "forecasts_issued": report.forecasts_issued,
             "forecasts_scored": report.forecasts_scored, "writes_queued": report.writes_queued}
    finish_job(engine, run_id, "ok", stats)
    log.info("learning run #%s (%s): %s writes queued", report.run_id, slot,
             report.writes_queued)
    return {"status": "ok", "key": key, "stats": stats}


def deliver_job(*, engine: Engine | None = None) -> dict[str, Any]:
    """Deliver every due write-back intent (the outbox claims, retries and backs off).

    A pass is recorded as a job run only when it delivered, deferred or gave up on something,
    or failed: an idle pass every few seconds leaves no row.

    Returns:
        status, delivered, retrying, dead, error.
    """
    engine = _store(engine)
    try:
        report = runtime.deliver(engine)
    except Exception as exc:
        error = _one_line(exc)
        record_job(engine, "deliver_job", "error", {}, error)
        log.warning("write-back failed: %s", error)
        return {"status": "error", "delivered": 0, "retrying": 0, "dead": 0, "error": error}
    counts = report.as_dict()
    if any(counts.values()):
        record_job(engine, "deliver_job", "ok", counts)
        log.info("write-back: %(delivered)s delivered, %(retrying)s to retry, %(dead)s failed",
                 counts)
    return {"status": "ok", **counts}


def queued_job(*, engine: Engine | None = None) -> dict[str, Any]:
    """Run the jobs people queued ("Sync now"), oldest first; each records its own progress.

    Returns:
        status and the jobs run (see `webapp.jobs.run_job`).
    """
    engine = _store(engine)
    try:
        return {"status": "ok", "jobs": jobs.run_queued(engine)}
    except Exception as exc:  # the database went away: the rows stay queued for next time
        error = _one_line(exc)
        log.warning("queued jobs not run: %s", error)
        return {"status": "error", "jobs": [], "error": error}


def _connections(engine: Engine) -> list[tuple[int, str, str | None]]:
    with unit_of_work(engine) as s:
        return [(r[0], r[1], r[2]) for r in s.execute(
            select(Connection.id, Connection.name, Connection.schedule).order_by(Connection.id))]


def run_once(engine: Engine, now: dt.datetime | None = None) -> dict[str, Any]:
    """The queued "Sync now" jobs, every due sync, one learning run for the newest slot
    synced, then every due delivery.

    Returns:
        {"queued": [...], "syncs": [...], "learn": {...}, "deliver": {...}}; see the jobs.
    """
    now = now or utcnow()
    queued = queued_job(engine=engine)["jobs"]
    syncs = [sync_job(cid, engine=engine, learn=False, now=now)
             for cid, _, _ in _connections(engine)]
    slots = [r["slot"] for r in syncs if r["status"] == "ok"]
    learn = (learn_job(max(slots), engine=engine) if slots
             else {"status": "skipped", "reason": "no connection was synced"})
    return {"queued": queued, "syncs": syncs, "learn": learn,
            "deliver": deliver_job(engine=engine)}


class _Plan:
    """The jobs wanted for the stored connections (bad schedules are warned about once)."""

    def __init__(self, deliver_every: float, queued_every: float = QUEUED_EVERY) -> None:
        self.deliver = Schedule(interval=dt.timedelta(seconds=deliver_every))
        self.queued = Schedule(interval=dt.timedelta(seconds=queued_every))
        self.warned: set[tuple[str, str | None]] = set()

    def jobs(self, engine: Engine) -> dict[str, JobSpec]:
        wanted = {"deliver": JobSpec(DELIVER_JOB, (), self.deliver, run_now=True),
                  "queued": JobSpec(QUEUED_JOB, (), self.queued, run_now=True)}
        for cid, name, text in _connections(engine):
            try:
                schedule = parse_schedule(text or DEFAULT_SCHEDULE)
            except ConfigError as exc:
                if (name, text) not in self.warned:
                    self.warned.add((name, text))
                    log.error("connection %s is not scheduled: %s", name, exc)
                continue
            wanted[f"sync:{cid}"] = JobSpec(SYNC_JOB, (cid,), schedule, run_now=True)
        return wanted


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set `stop` (only the main thread can take signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping after the running jobs", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_worker(engine: Engine, *, once: bool = False, run_for: float | None = None,
               deliver_every: float = 10.0, reload_every: float = RELOAD_EVERY,
               stop: threading.Event | None = None) -> dict[str, Any]:
    """Run the scheduled jobs until SIGTERM/SIGINT, `stop` is set, or `run_for` seconds pass.

    Each connection syncs on its schedule (default every hour; a bad schedule is logged and
    that connection skipped), followed by a learning run; due write-back is delivered every
    `deliver_every` seconds, and jobs queued by "Sync now" are run within two seconds. Connections are re-read every `reload_every` seconds, so added,
    removed and rescheduled connections are picked up without a restart. With `once`, runs
    every due job one time and returns what each did (see `run_once`).

    Returns:
        A summary: for `once` the jobs' results; otherwise why it stopped, how long it ran,
        how often it re-read the connections and which jobs it had.
    """
    if deliver_every <= 0:
        raise ConfigError(f"deliver_every must be more than 0 seconds, not {deliver_every:g}")
    use_engine(engine)
    secrets.remember_store(engine)  # every log line and stored error hides them
    try:
        if once:
            return {"mode": "once", **run_once(engine)}
        return _run_scheduled(engine, run_for, deliver_every, reload_every,
                              stop or threading.Event())
    finally:
        use_engine(None)


def _run_scheduled(engine: Engine, run_for: float | None, deliver_every: float,
                   reload_every: float, stop: threading.Event) -> dict[str, Any]:
    plan = _Plan(deliver_every)
    scheduler = JobScheduler()
    started = time.monotonic()
    deadline = None if run_for is None else started + run_for
    reloads, reason = 0, "signal"
    with _stop_on_signals(stop):
        try:
            scheduler.set_jobs(plan.jobs(engine))
            log.info("worker started: %s", ", ".join(
                f"{job_id} {spec.schedule.describe()}"
                for job_id, spec in sorted(scheduler.jobs.items())))
            scheduler.start()
            while True:
                wait = reload_every
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                if wait > 0 and stop.wait(wait):
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    reason = "run_for"
                    break
                try:
                    changes = scheduler.set_jobs(plan.jobs(engine))
                    if abandoned := abandon_stale(engine, claim_timeout()):
                        log.warning("%s runs marked abandoned (their worker stopped)", abandoned)
                except Exception as exc:  # the database went away: keep the jobs we have
                    log.warning("cannot re-read the connections: %s", _one_line(exc))
                    continue
                reloads += 1
                if any(changes.values()):
                    log.info("connections re-read: %s", changes)
        finally:
            scheduler.shutdown(wait=True)
    return {"mode": "scheduled", "stopped_by": reason, "reloads": reloads,
            "seconds": round(time.monotonic() - started, 1), "jobs": sorted(scheduler.jobs)}
