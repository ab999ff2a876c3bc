"""What learning produces: forecasts (the ledger), findings, learning runs, audits."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.model.base import Base, utcnow


class LearningRun(Base):
    """One learning cycle: inputs, model versions, outputs and timings."""

    __tablename__ = "learning_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="running")
    model_version: Mapped[str] = mapped_column(String(50))
    policy_version: Mapped[int | None]
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    outputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class Forecast(Base):
    """One forecast issued for an open item, kept and scored when the actual arrives."""

    __tablename__ = "forecasts"
    __table_args__ = (Index("ix_forecasts_item_measure", "item_id", "measure"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("learning_runs.id", ondelete="SET NULL"))
    measure: Mapped[str] = mapped_column(String(40), doc="effort | finish | win")
    issued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    model_version: Mapped[str] = mapped_column(String(50))
    segment: Mapped[str] = mapped_column(String(300), default="")
    planned: Mapped[float | None]
    p50: Mapped[float | None] = mapped_column(doc="quantile forecasts (effort, finish)")
    p80: Mapped[float | None]
    p90: Mapped[float | None]
    p95: Mapped[float | None]
    probability: Mapped[float | None] = mapped_column(doc="probability forecasts (win)")
    actual: Mapped[float | None]
    scored_at: Mapped[dt.datetime | None]
    score: Mapped[dict[str, Any] | None] = mapped_column(
        doc="coverage per quantile, pinball, pit; or brier for a probability")


class Finding(Base):
    """A statement with its evidence: n, effect, interval, confidence, the items concerned."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("learning_runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40), default="estimation")
    measure: Mapped[str] = mapped_column(String(40))
    segment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    statement: Mapped[str] = mapped_column(Text)
    n: Mapped[int]
    effect: Mapped[float]
    interval_low: Mapped[float] = mapped_column(doc="confidence interval of the effect")
    interval_high: Mapped[float]
    interval_level: Mapped[float] = mapped_column(default=0.9, doc="of the confidence interval")
    spread_low: Mapped[float | None] = mapped_column(
        doc="the central 80% of the segment's own items (a spread, not a confidence interval)")
    spread_high: Mapped[float | None]
    p_value: Mapped[float] = mapped_column(doc="the test's own p-value")
    q_value: Mapped[float] = mapped_column(doc="Benjamini-Hochberg adjusted over the run")
    impact: Mapped[float] = mapped_column(default=0.0)
    item_ids: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="{'ids': [...]} only")
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict,
                                                     doc="the numbers behind the statement")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Audit(Base):
    """The six-dimension learning audit: self-scored and measured, with maturity and quadrant."""

    __tablename__ = "audits"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))
    self_scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    measured_scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    total: Mapped[int | None]
    maturity_level: Mapped[str | None] = mapped_column(String(50))
    quadrant: Mapped[str | None] = mapped_column(String(50))
