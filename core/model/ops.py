"""Operational tables: the write-back outbox and job runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.model.base import Base, JSONType, utcnow


class WriteIntent(Base):
    """What must be written into which tool; delivered with retries, never lost or duplicated."""

    __tablename__ = "write_intents"
    __table_args__ = (Index("ix_write_intents_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(200), doc="tool-side id of the object written to")
    surface: Mapped[str] = mapped_column(String(40), doc="fields | comment | property | ...")
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    payload_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(
        String(20), default="pending",
        doc="pending | delivering | delivered | dead | checklist (a person must act) | checked"
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    tool_ref: Mapped[str | None] = mapped_column(String(300), doc="id of what we wrote, for upsert")
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
    checklist: Mapped[list[str] | None] = mapped_column(
        JSONType, doc="steps for a person, where the tool's API cannot make the change")
    checked_by: Mapped[str | None] = mapped_column(String(254), doc="who checked the steps off")
    checked_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class JobRun(Base):
    """One run of a job (sync, learn, deliver), recorded by whoever ran it."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(50))
    key: Mapped[str | None] = mapped_column(
        String(200), unique=True, doc="job and time slot; a second worker's claim of it fails"
    )
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE")
    )
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="running")
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    lock: Mapped[str | None] = mapped_column(
        String(100), unique=True,
        doc="held while running ('sync:<connection id>', 'learn'): one holder at a time")
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(
        doc="renewed while running; a lock whose heartbeat stopped is taken over")
