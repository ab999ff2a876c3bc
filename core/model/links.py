"""How items hang together: links between items, and enrollments of items in tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.model.base import Base, JSONType, utcnow

RELATIONS = ("contact", "company", "parent", "enrollment_of", "deal")
"""What the linked item is to the item linking it: its contact, company, parent (an issue's
epic), the contact it is an enrollment of, or the deal it belongs to."""


class ItemLink(Base):
    """A link from one item of a connection to another, by their ids in the tool.

    The target may not be stored yet (a deal's company arrives in a later batch): the link is
    then pending (`to_item_id` is None) and resolved when an item with that id arrives.
    """

    __tablename__ = "item_links"
    __table_args__ = (
        UniqueConstraint("connection_id", "from_external_id", "to_external_id", "relation",
                         name="uq_item_links_connection_from_to_relation"),
        Index("ix_item_links_pending", "connection_id", "to_external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    from_external_id: Mapped[str] = mapped_column(String(200))
    to_external_id: Mapped[str] = mapped_column(String(200))
    relation: Mapped[str] = mapped_column(String(30), doc=" | ".join(RELATIONS))
    from_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), index=True)
    to_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("items.id", ondelete="SET NULL"), index=True, doc="None while pending")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Enrollment(Base):
    """An item (a sequence enrollment, a send) assigned to one arm of one test."""

    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("item_id", "test"),
                      Index("ix_enrollments_test", "test", "arm"))

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    unit: Mapped[str | None] = mapped_column(String(200), doc="the contact or account enrolled")
    test: Mapped[str] = mapped_column(String(200))
    arm: Mapped[str] = mapped_column(String(200))
    assigned_at: Mapped[dt.datetime | None]
    random: Mapped[bool] = mapped_column(default=False, doc="the arm was assigned at random")
    expected_split: Mapped[dict[str, Any] | None] = mapped_column(
        JSONType, doc="arm -> share of units the design expects")
