"""Declared process experiments: a change to how a group works, judged against the others."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.model.base import Base, JSONType, utcnow

STATUSES = ("running", "worked", "failed", "stopped")
"""running: judged on every learning run; worked: a proposal to extend it was made; failed:
a published negative result (kept, never deleted); stopped: no longer judged."""


class ProcessExperiment(Base):
    """A declared change ("team A moves to 2-week sprints from March") and its latest verdict."""

    __tablename__ = "process_experiments"
    __table_args__ = (Index("ix_process_experiments_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), doc="the change in a few words")
    hypothesis: Mapped[str] = mapped_column(Text)
    treated: Mapped[dict[str, Any]] = mapped_column(doc="segment predicate {dim: [values]}")
    comparison: Mapped[dict[str, Any] | None] = mapped_column(
        JSONType, doc="segment predicate of the comparison; None: comparable untreated items")
    cluster: Mapped[str | None] = mapped_column(
        String(100), doc="the dimension items cluster by; None: the treated predicate's first")
    start: Mapped[dt.datetime]
    end: Mapped[dt.datetime | None]
    measures: Mapped[list[str]] = mapped_column(JSONType, doc="the first one decides")
    direction: Mapped[str] = mapped_column(String(10), doc="decrease | increase")
    min_effect: Mapped[float] = mapped_column(doc="in the first measure's shown units")
    extend_to: Mapped[dict[str, Any] | None] = mapped_column(
        JSONType, doc="whom a change that worked is proposed for; None: the comparison")
    epic: Mapped[str | None] = mapped_column(
        String(200), doc="tool-side id of the epic (or item) the verdict is written on")
    owner: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(20), default="running", doc=" | ".join(STATUSES))
    verdict: Mapped[str | None] = mapped_column(String(20), doc="core.process.verdict kind")
    statement: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    evaluated_at: Mapped[dt.datetime | None]
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("learning_runs.id", ondelete="SET NULL"), doc="the run that judged it last")
    finding_id: Mapped[int | None] = mapped_column(
        ForeignKey("findings.id", ondelete="SET NULL"))
    proposal_id: Mapped[int | None] = mapped_column(
        ForeignKey("proposals.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
