"""A thin adapter over APScheduler 3.x, and the job-run claims that keep workers from doubling up.

The scheduler only fires jobs: module-level functions named by import string
("webapp.worker:sync_job"), each of which records its own run. Several workers may fire the
same job at the same moment; `claim_job` lets exactly one of them run a given time slot, by
inserting a job-run row whose unique key names the job and the slot. A worker that dies holding
a claim only loses that slot: the next slot has a new key and runs normally
(`abandon_stale` marks such leftovers so they do not read as running forever).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError

from core.model import JobRun, utcnow
from core.schedule import EPOCH, Schedule
from core.secrets import redact
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


def claim_job(engine: Engine, job: str, key: str, connection_id: int | None = None) -> int | None:
    """Claim the run `key` (job and time slot) for this worker.

    Inserts a running job-run row under the unique `key`; when another worker already holds it,
    the database refuses the row and this returns None. On PostgreSQL a concurrent insert of
    the same key waits for the first to commit and then fails, so exactly one claim wins.

    Returns:
        The job-run id to pass to `finish_job`, or None when the run is someone else's.
    """
    try:
        with unit_of_work(engine) as s:
            run = JobRun(job=job, key=key, connection_id=connection_id, status="running",
                         started_at=utcnow(), stats={})
            s.add(run)
            s.flush()
            return run.id
    except IntegrityError:  # the key is taken (or the connection was removed meanwhile)
        return None


def finish_job(engine: Engine, run_id: int, status: str, stats: Mapping[str, Any] | None = None,
               error: str | None = None) -> None:
    """Record how a claimed run ended: its status ("ok" or "error"), counts and error line."""
    with unit_of_work(engine) as s:
        s.execute(update(JobRun).where(JobRun.id == run_id).values(
            status=status, finished_at=utcnow(), stats=dict(stats or {}),
            error=None if error is None else redact(error)))


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
    """Mark claims still running after `older_than` as abandoned (their worker died).

    This does not re-run them: the slot is lost and the next slot runs as usual.

    Returns:
        How many claims were marked.
    """
    now = utcnow()
    with unit_of_work(engine) as s:
        ids = s.scalars(
            update(JobRun)
            .where(JobRun.status == "running", JobRun.key.is_not(None),
                   JobRun.started_at < now - older_than)
            .values(status="abandoned", finished_at=now,
                    error="the worker stopped before finishing this run")
            .returning(JobRun.id)
            .execution_options(synchronize_session=False)
        ).all()
    return len(ids)
