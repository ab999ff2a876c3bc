"""Migration 0016 on a store made at 0006 (upgraded through 0012): job runs kept (no lock held), and where overlapping
learning runs left two pending proposals for one rule, the newest stays pending."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import MetaData, select

from core.model import JobRun, Proposal
from core.store import alembic_config, make_engine, migrate, unit_of_work

T0 = dt.datetime(2025, 3, 3, 9, 0)  # naive UTC, as the store holds it


def test_upgrade_from_0006_keeps_runs_and_one_pending_proposal_per_rule(
        empty_url: str) -> None:
    engine = make_engine(empty_url)
    command.upgrade(alembic_config(engine), "0006")
    meta = MetaData()
    meta.reflect(engine)
    t = meta.tables
    proposal = {"kind": "rule", "title": "t", "rationale": "", "diff": "", "evidence": {},
                "created_at": T0}
    with engine.begin() as c:
        c.execute(t["job_runs"].insert(), [
            {"id": 1, "job": "sync_job", "key": "sync:1:slot", "status": "running",
             "started_at": T0, "stats": {}},
            {"id": 2, "job": "learn_job", "key": "learn:slot", "status": "ok",
             "started_at": T0, "finished_at": T0, "stats": {"findings": 3}}])
        c.execute(t["proposals"].insert(), [
            {**proposal, "id": 1, "dedupe_key": "effort:all", "status": "pending",
             "change": {"new": {"p80": 1.5}}},
            {**proposal, "id": 2, "dedupe_key": "effort:all", "status": "pending",
             "change": {"new": {"p80": 1.5}}},
            {**proposal, "id": 3, "dedupe_key": "effort:type=Bug", "status": "pending",
             "change": {"new": {"p80": 2.0}}},
            {**proposal, "id": 4, "dedupe_key": "effort:type=Bug", "status": "accepted",
             "change": {"new": {"p80": 1.8}}}])
    migrate(engine)
    with unit_of_work(engine) as s:
        runs = [(r.id, r.status, r.lock, r.stats) for r in s.scalars(
            select(JobRun).order_by(JobRun.id))]
        proposals = [(p.id, p.status) for p in s.scalars(select(Proposal).order_by(Proposal.id))]
    engine.dispose()
    assert runs == [(1, "running", None, {}), (2, "ok", None, {"findings": 3})]
    assert proposals == [(1, "superseded"), (2, "pending"), (3, "pending"), (4, "accepted")]
