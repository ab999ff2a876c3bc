"""What the connectors capture: connections, items, events, deviations, quarantined rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.model.base import Base, JSONType, utcnow


class Connection(Base):
    """An installed connector for one tool instance."""

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets: Mapped[str | None] = mapped_column(Text, doc="Fernet token of the secret fields")
    mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scope: Mapped[dict[str, Any]] = mapped_column(default=dict)
    schedule: Mapped[str | None] = mapped_column(String(100))
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    health: Mapped[str] = mapped_column(String(20), default="unknown")
    last_error: Mapped[str | None] = mapped_column(Text)
    last_sync_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    items: Mapped[list[Item]] = relationship(back_populates="connection", passive_deletes=True)


class Item(Base):
    """The unit with a plan and an outcome: an issue, a task row, a deal, an enrollment."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("connection_id", "external_id"),
        Index("ix_items_connection_status", "connection_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(50), default="task")
    title: Mapped[str] = mapped_column(Text, default="")
    segments: Mapped[dict[str, Any]] = mapped_column(default=dict)
    unit: Mapped[str] = mapped_column(String(20), default="hours")
    status: Mapped[str] = mapped_column(String(20), default="open", doc="open | done | cancelled")
    planned_start: Mapped[dt.datetime | None]
    planned_due: Mapped[dt.datetime | None]
    planned_estimate: Mapped[float | None]
    planned_amount: Mapped[float | None]
    planned_probability: Mapped[float | None] = mapped_column(doc="win probability, 0 to 1")
    expected_outcome: Mapped[str | None] = mapped_column(Text)
    estimated_at: Mapped[dt.datetime | None]
    actual_start: Mapped[dt.datetime | None]
    actual_end: Mapped[dt.datetime | None]
    actual_effort: Mapped[float | None]
    actual_amount: Mapped[float | None]
    outcome: Mapped[str | None] = mapped_column(Text)
    source_updated_at: Mapped[dt.datetime | None]
    planned_at: Mapped[dt.datetime | None] = mapped_column(
        index=True, doc="when the plan was made: estimated_at, else the first known date")
    committed_plan: Mapped[dict[str, Any] | None] = mapped_column(
        JSONType, doc="the plan as committed: {core field: value}, dates in ISO 8601")
    committed_at: Mapped[dt.datetime | None] = mapped_column(
        doc="when the plan was committed (core.plans: the connection's commit_on rule)")
    deleted: Mapped[bool] = mapped_column(default=False)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    connection: Mapped[Connection] = relationship(back_populates="items")

    def plan_time(self) -> dt.datetime | None:
        """When the plan was made: estimated_at, else planned start, actual start or end."""
        for value in (self.estimated_at, self.planned_start, self.actual_start, self.actual_end):
            if value is not None:
                return value
        return None


class Event(Base):
    """An action on an item: estimate changed, due date moved, variant sent, reply received."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("connection_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(300))
    occurred_at: Mapped[dt.datetime]
    kind: Mapped[str] = mapped_column(String(50))
    actor: Mapped[str | None] = mapped_column(String(200))
    actor_kind: Mapped[str] = mapped_column(String(10), default="human", doc="human | agent")
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Deviation(Base):
    """Actual vs planned for one item and one measure, against the committed or the current plan."""

    __tablename__ = "deviations"
    __table_args__ = (UniqueConstraint("item_id", "measure", "against"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    measure: Mapped[str] = mapped_column(String(40), doc="effort_ratio | slip_days | duration_ratio")
    against: Mapped[str] = mapped_column(String(10), default="committed",
                                         doc="committed | current: which plan it is measured against")
    planned: Mapped[float]
    actual: Mapped[float]
    value: Mapped[float]
    computed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class QuarantinedRow(Base):
    """Input that could not be turned into an item, kept with its reason, never dropped."""

    __tablename__ = "quarantined_rows"
    __table_args__ = (UniqueConstraint("connection_id", "locator"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    locator: Mapped[str] = mapped_column(String(300), doc="where: file and row, issue key")
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
