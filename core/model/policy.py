"""The versioned policy: rules, templates rendered from them, and proposals to change them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.model.base import Base, utcnow


class Policy(Base):
    """One version of the whole policy; rules hang off it. The highest version is current."""

    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="learnloop")
    note: Mapped[str] = mapped_column(Text, default="")

    rules: Mapped[list[Rule]] = relationship(
        back_populates="policy", cascade="all, delete-orphan", order_by="Rule.key"
    )


class Rule(Base):
    """A testable belief: a hypothesis sentence, a segment selector and parameters."""

    __tablename__ = "rules"
    __table_args__ = (UniqueConstraint("policy_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(300), doc="stable across versions")
    kind: Mapped[str] = mapped_column(String(40), default="estimation")
    hypothesis: Mapped[str] = mapped_column(Text)
    selector: Mapped[dict[str, Any]] = mapped_column(default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    owner: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="active", doc="proposed|active|retired")

    policy: Mapped[Policy] = relationship(back_populates="rules")


class Template(Base):
    """A named set of planned tasks (with estimates) or sequence steps, in some tool."""

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(default=1)
    kind: Mapped[str] = mapped_column(String(40), default="project")
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL")
    )
    external_id: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="{'tasks': [...]} or steps")
    policy_version: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Proposal(Base):
    """A change to a rule or template with its evidence, decided by a person."""

    __tablename__ = "proposals"
    # One pending proposal per rule, even when two learning runs overlap.
    __table_args__ = (Index("uq_proposals_pending_dedupe_key", "dedupe_key", unique=True,
                            sqlite_where=text("status = 'pending'"),
                            postgresql_where=text("status = 'pending'")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("learning_runs.id", ondelete="SET NULL"))
    finding_id: Mapped[int | None] = mapped_column(ForeignKey("findings.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20), default="rule", doc="rule | template")
    dedupe_key: Mapped[str] = mapped_column(String(300), index=True)
    title: Mapped[str] = mapped_column(Text)
    rationale: Mapped[str] = mapped_column(Text, default="")
    change: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="{'rule_key','old','new'}")
    diff: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(
        String(20), default="pending", doc="pending|accepted|rejected|applied|failed|superseded"
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
    policy_version: Mapped[int | None] = mapped_column(doc="version created when accepted")
