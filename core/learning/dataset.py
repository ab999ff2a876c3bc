"""Read what learning needs out of the store: finished deviations and open items."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from core.learning.model import Sample
from core.model import Deviation, Item

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
WINDOW = 100_000
AGAINST = "committed"  # learning reads deviations against the plan as committed

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


def _days(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    days = (end - start).total_seconds() / 86400
    return days if days > 0 else None


def finished_all(session: Session, window: int = WINDOW) -> dict[str, list[Observation]]:
    """Finished, live items with a deviation, per measure, oldest plan first: the most
    recent `window` items (learning looks at recent evidence; a million-item history costs
    what its newest 100,000 cost).

    One query of plain columns, one row per item (no ORM objects): this is the hot path.
    """
    when = Item.planned_at
    effort, slip = aliased(Deviation), aliased(Deviation)
    newest = (
        select(Item.id, Item.segments, when, Item.planned_estimate, Item.planned_start,
               Item.planned_due, effort.planned, effort.actual, effort.value,
               slip.planned, slip.actual, slip.value)
        .outerjoin(effort, (effort.item_id == Item.id) & (effort.measure == MEASURES["effort"])
                   & (effort.against == AGAINST))
        .outerjoin(slip, (slip.item_id == Item.id) & (slip.measure == MEASURES["finish"])
                   & (slip.against == AGAINST))
        .where(Item.deleted.is_(False), Item.status == "done",
               or_(effort.id.is_not(None), slip.id.is_not(None)))
        .order_by(Item.planned_at.desc().nulls_last(), Item.id.desc())
        .limit(window)
    )
    by_measure: dict[str, list[Observation]] = {m: [] for m in MEASURES}
    for (item_id, segments, at, estimate, p_start, p_due, e_plan, e_act, e_val,
         s_plan, s_act, s_val) in session.execute(newest):
        at = at or EPOCH
        if e_val is not None:
            by_measure["effort"].append(
                Observation(item_id, at, segments, e_plan, e_act, e_val, estimate))
        if s_val is not None:
            size = _days(p_start, p_due) or estimate
            by_measure["finish"].append(
                Observation(item_id, at, segments, s_plan, s_act, s_val, size))
    for obs in by_measure.values():
        obs.reverse()
    return by_measure


def finished(session: Session, measure: str) -> list[Observation]:
    """Finished, live items with a deviation on `measure`, oldest plan first."""
    return finished_all(session)[measure]


def _size(item: Item, measure: str) -> float | None:
    if measure == "effort":
        return item.planned_estimate
    return _days(item.planned_start, item.planned_due) or item.planned_estimate


ITEM_VIEW = [c for c in Item.__table__.columns if c.name != "raw"]


def item_views(session: Session, *where: Any) -> list[Item]:
    """Items matching `where` as read-only rows with the Item's attributes (no raw payload).

    Plain rows cost a fraction of ORM objects; learning only reads them.
    """
    rows = session.execute(select(*ITEM_VIEW).where(*where).order_by(Item.id)).all()
    return cast(list[Item], rows)


def open_items(session: Session) -> list[Item]:
    """Live items that are not finished yet (read-only views)."""
    return item_views(session, Item.status == "open", Item.deleted.is_(False))


def open_sample(item: Item, measure: str) -> Sample | None:
    """The model's view of an open item, or None when it has no plan for `measure`."""
    if measure == "effort":
        if item.planned_estimate is None or item.planned_estimate <= 0:
            return None
    elif item.planned_due is None:
        return None
    return Sample(y=0.0, size=_size(item, measure), segments=dict(item.segments))
