"""A thin adapter over APScheduler 3.x, and the job-run claims that keep workers from doubling up.

The scheduler only fires jobs: module-level functions named by import string
("webapp.worker:sync_job"), each of which records its own run. Several workers may fire the
same job at the same moment; `claim_job` lets exactly one of them run a given time slot, by
inserting a job-run row whose unique key names the job and the slot. A worker that dies holding
a claim only loses that slot: the next slot has a new key and runs normally
(`abandon_stale` marks such leftovers so they do not read as running forever).

Whoever runs a sync or a learning run (a worker's slot, `learnloop sync`/`learn`, a queued
"Sync now") also holds its lock while it runs: `sync:<connection id>` or `learn`, a unique
column of the running job-run row, renewed by a `heartbeat`. A second one at the same time is
refused (`Busy`); a lock whose heartbeat stopped for a claim timeout (its process died) is
taken over, and the dead run marked abandoned.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, delete, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import runs
from core.errors import LearnloopError
from core.model import JobRun, utcnow
from core.schedule import EPOCH, Schedule
from core.secrets import redact
from core.settings import claim_timeout
from core.store import unit_of_work

log = logging.getLogger(__name__)


def trigger_for(schedule: Schedule) -> Any:
    """The APScheduler trigger of a schedule; intervals fire on multiples of the epoch, so the
    fire times of every worker fall on the same slot boundaries."""
    if schedule.interval is not None:
        return IntervalTrigger(seconds=schedule.interval.total_seconds(), start_date=EPOCH,
                               timezone=dt.UTC)
    return schedule.cron_trigger()


@dataclass(frozen=True)
class JobSpec:
    """One job to schedule: an import string, its arguments, and when it fires.

    `run_now` also fires it once right away (a worker that starts mid-slot catches up; the
    claim makes that harmless when another worker already ran the slot).
    """

    func: str
    args: tuple[Any, ...]
    schedule: Schedule
    run_now: bool = False


class JobScheduler:
    """APScheduler's BackgroundScheduler, holding exactly the jobs it was last given."""

    def __init__(self, threads: int = 8) -> None:
        self._scheduler = BackgroundScheduler(
            timezone=dt.UTC,
            executors={"default": {"type": "threadpool", "max_workers": threads}},
            # One instance of a job at a time; runs missed while busy collapse into one.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._specs: dict[str, JobSpec] = {}

    @property
    def jobs(self) -> dict[str, JobSpec]:
        """The scheduled jobs by id."""
        return dict(self._specs)

    def start(self) -> None:
        """Start firing jobs (in background threads)."""
        self._scheduler.start()

    def shutdown(self, wait: bool = True) -> None:
        """Stop firing; with `wait`, let running jobs finish first."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)

    def set_jobs(self, wanted: Mapping[str, JobSpec]) -> dict[str, list[str]]:
        """Make the scheduled jobs exactly `wanted`: add new ids, replace changed, drop gone.

        Returns:
            The ids added, changed and removed.
        """
        changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
        for job_id in sorted(set(self._specs) - set(wanted)):
            self._scheduler.remove_job(job_id)
            del self._specs[job_id]
            changes["removed"].append(job_id)
        for job_id, spec in sorted(wanted.items()):
            old = self._specs.get(job_id)
            if old is not None and (old.func, old.args, old.schedule) == (
                    spec.func, spec.args, spec.schedule):
                continue
            extra: dict[str, Any] = {}
            if spec.run_now:
                extra["next_run_time"] = utcnow()
            self._scheduler.add_job(spec.func, trigger_for(spec.schedule), args=list(spec.args),
                                    id=job_id, name=job_id, replace_existing=True, **extra)
            self._specs[job_id] = spec
            changes["changed" if old is not None else "added"].append(job_id)
        return changes


LEARN_LOCK = "learn"
ABANDONED = "the process running this stopped before it finished"


def sync_lock(connection_id: int) -> str:
    """The lock a sync of one connection holds while it runs."""
    return f"sync:{connection_id}"


class Busy(LearnloopError):
    """The job is already running elsewhere (its lock is held and its holder alive)."""


def _free_dead(s: Session, lock: str, now: dt.datetime, timeout: dt.timedelta) -> None:
    """Release `lock` if its holder finished or stopped renewing it (marked abandoned)."""
    stale = func.coalesce(JobRun.heartbeat_at, JobRun.started_at) < now - timeout
    s.execute(update(JobRun).where(JobRun.lock == lock, JobRun.status == "running", stale)
              .values(status="abandoned", finished_at=now, error=ABANDONED, lock=None)
              .execution_options(synchronize_session=False))
    s.execute(update(JobRun).where(JobRun.lock == lock, JobRun.status != "running")
              .values(lock=None).execution_options(synchronize_session=False))


def claim_job(engine: Engine, job: str, key: str | None = None,
              connection_id: int | None = None, lock: str | None = None,
              timeout: dt.timedelta | None = None) -> int | None:
    """Claim the run `key` (job and time slot) and/or the `lock`, for this process.

    Inserts a running job-run row under the unique `key` and `lock`; when another worker
    already holds either, the database refuses the row and this returns None. On PostgreSQL
    a concurrent insert of the same key waits for the first to commit and then fails, so
    exactly one claim wins. A lock whose holder stopped renewing it for `timeout` (default
    the claim timeout) is taken over first.

    Returns:
        The job-run id to pass to `finish_job`, or None when the run is someone else's.
    """
    now, timeout = utcnow(), timeout or claim_timeout()
    try:
        with unit_of_work(engine) as s:
            if lock is not None:
                _free_dead(s, lock, now, timeout)
            run = JobRun(job=job, key=key, lock=lock, connection_id=connection_id,
                         status="running", started_at=now, heartbeat_at=now,
                         stats=runs.owner())
            s.add(run)
            s.flush()
            return run.id
    except IntegrityError:  # the key is taken (or the connection was removed meanwhile)
        return None


def take_lock(engine: Engine, run_id: int, lock: str,
              timeout: dt.timedelta | None = None) -> bool:
    """Let the running job-run `run_id` hold `lock` (a queued job that got its turn).

    Returns:
        Whether it holds it now; False while another live run holds it.
    """
    now, timeout = utcnow(), timeout or claim_timeout()
    try:
        with unit_of_work(engine) as s:
            _free_dead(s, lock, now, timeout)
            s.execute(update(JobRun).where(JobRun.id == run_id)
                      .values(lock=lock, heartbeat_at=now))
        return True
    except IntegrityError:
        return False


def wait_lock(engine: Engine, run_id: int, lock: str, seconds: float,
              every: float = 1.0) -> bool:
    """`take_lock`, retried every `every` seconds for up to `seconds`.

    Returns:
        Whether the lock was taken.
    """
    deadline = time.monotonic() + seconds
    while not take_lock(engine, run_id, lock):
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)
    return True


def drop_claim(engine: Engine, run_id: int) -> None:
    """Give back a claim before anything ran under it (its row is removed)."""
    with unit_of_work(engine) as s:
        s.execute(delete(JobRun).where(JobRun.id == run_id))


@contextmanager
def heartbeat(engine: Engine, run_id: int, timeout: dt.timedelta | None = None,
              ) -> Iterator[None]:
    """Renew the run's heartbeat every third of the claim timeout while the block runs, so
    its lock is not taken over; a process that dies stops renewing it."""
    every = (timeout or claim_timeout()).total_seconds() / 3
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(every):
            try:
                with unit_of_work(engine) as s:
                    s.execute(update(JobRun).where(JobRun.id == run_id,
                                                   JobRun.status == "running")
                              .values(heartbeat_at=utcnow()))
            except Exception as exc:  # the database went away for a moment: try again
                log.warning("cannot renew job run %s: %s: %s", run_id, type(exc).__name__, exc)

    thread = threading.Thread(target=renew, name=f"job-run-{run_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def finish_job(engine: Engine, run_id: int, status: str, stats: Mapping[str, Any] | None = None,
               error: str | None = None) -> None:
    """Record how a claimed run ended: its status ("ok" or "error"), counts and error line;
    its lock is released."""
    with unit_of_work(engine) as s:
        s.execute(update(JobRun).where(JobRun.id == run_id).values(
            status=status, finished_at=utcnow(), stats=dict(stats or {}),
            error=None if error is None else redact(error), lock=None))


def record_job(engine: Engine, job: str, status: str, stats: Mapping[str, Any] | None = None,
               error: str | None = None, connection_id: int | None = None) -> int:
    """Record a finished run that needed no claim (e.g. an outbox pass; the outbox claims its
    own rows)."""
    now = utcnow()
    with unit_of_work(engine) as s:
        run = JobRun(job=job, connection_id=connection_id, status=status, started_at=now,
                     finished_at=now, stats=dict(stats or {}),
                     error=None if error is None else redact(error))
        s.add(run)
        s.flush()
        return run.id


def abandon_stale(engine: Engine, older_than: dt.timedelta) -> int:
    """Mark claims whose heartbeat (else start) is older than `older_than` as abandoned
    (their process died), releasing their locks.

    This does not re-run them: the slot is lost and the next slot runs as usual.

    Returns:
        How many claims were marked.
    """
    now = utcnow()
    with unit_of_work(engine) as s:
        ids = s.scalars(
            update(JobRun)
            .where(JobRun.status == "running",
                   or_(JobRun.key.is_not(None), JobRun.lock.is_not(None)),
                   func.coalesce(JobRun.heartbeat_at, JobRun.started_at) < now - older_than)
            .values(status="abandoned", finished_at=now, error=ABANDONED, lock=None)
            .returning(JobRun.id)
            .execution_options(synchronize_session=False)
        ).all()
    return len(ids)
