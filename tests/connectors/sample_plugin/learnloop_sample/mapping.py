"""Board cards onto the core model."""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.contract import ItemRecord, MappingField

MAPPING_FIELDS = (MappingField("id", "Card id", required=True), MappingField("title", "Title"))
STATUS = {"todo": "open", "doing": "open", "done": "done"}


def _day(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC) if value else None


def to_item(card: dict[str, Any]) -> ItemRecord:
    """One card as an item."""
    return ItemRecord(external_id=str(card["id"]), title=str(card.get("title", "")),
                      status=STATUS.get(str(card.get("status")), "open"),
                      planned_estimate=card.get("estimate"), actual_effort=card.get("spent"),
                      planned_due=_day(card.get("due")), actual_end=_day(card.get("done")),
                      raw=dict(card))
