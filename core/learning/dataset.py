"""Read what learning needs out of the store: finished deviations and open items."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.learning.model import Sample
from core.model import Deviation, Item

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# measure -> (deviation measure, transform of the deviation value, size of the plan)
MEASURES = {
    "effort": "effort_ratio",
    "finish": "slip_days",
}


@dataclass(frozen=True)
class Observation:
    """A finished item's deviation on one measure, with when its plan was made."""

    item_id: int
    when: dt.datetime
    segments: dict[str, Any]
    planned: float
    actual: float
    value: float
    size: float | None

    def sample(self, measure: str) -> Sample:
        """The model's view: log ratio for effort, days for finish."""
        y = math.log(self.value) if measure == "effort" else self.value
        return Sample(y=y, size=self.size, segments=self.segments)


def _plan_time(item: Item) -> dt.datetime:
    for value in (item.estimated_at, item.planned_start, item.actual_start, item.actual_end,
                  item.created_at):
        if value is not None:
            return value
    return EPOCH


def _size(item: Item, measure: str) -> float | None:
    if measure == "effort":
        return item.planned_estimate
    if item.planned_start is not None and item.planned_due is not None:
        days = (item.planned_due - item.planned_start).total_seconds() / 86400
        return days if days > 0 else None
    return item.planned_estimate


def finished(session: Session, measure: str) -> list[Observation]:
    """Finished, live items with a deviation on `measure`, oldest plan first."""
    rows = session.execute(
        select(Item, Deviation)
        .join(Deviation, Deviation.item_id == Item.id)
        .where(Deviation.measure == MEASURES[measure], Item.deleted.is_(False))
    ).all()
    obs = [
        Observation(item.id, _plan_time(item), dict(item.segments), dev.planned, dev.actual,
                    dev.value, _size(item, measure))
        for item, dev in rows
    ]
    obs.sort(key=lambda o: (o.when, o.item_id))
    return obs


def open_items(session: Session) -> list[Item]:
    """Live items that are not finished yet."""
    return list(session.scalars(
        select(Item).where(Item.status == "open", Item.deleted.is_(False)).order_by(Item.id)
    ))


def open_sample(item: Item, measure: str) -> Sample | None:
    """The model's view of an open item, or None when it has no plan for `measure`."""
    if measure == "effort":
        if item.planned_estimate is None or item.planned_estimate <= 0:
            return None
    elif item.planned_due is None:
        return None
    return Sample(y=0.0, size=_size(item, measure), segments=dict(item.segments))
