"""Derive deviations (actual vs planned) from an item's planned and actual values."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core import measures as registry
from core.model import Deviation, Item

DAY = 86400.0


def measures(item: Item) -> dict[str, tuple[float, float, float]]:
    """The deviations an item supports: measure -> (planned, actual, value).

    Which measures depend on the item's kind family (see `core.measures`): tasks get
    effort_ratio, slip_days and duration_ratio; deals close_slip_days, amount_ratio and won;
    enrollments reply, meeting and conversion.
    """
    return registry.compute(item, registry.plan_of(item), registry.item_kind_map(item))


def refresh(session: Session, items: Iterable[Item]) -> int:
    """Recompute the deviations of `items` in place; returns how many rows now exist."""
    items = list(items)
    if not items:
        return 0
    ids = [i.id for i in items]
    existing = {
        (d.item_id, d.measure): d
        for d in session.scalars(select(Deviation).where(Deviation.item_id.in_(ids)))
    }
    count = 0
    for item in items:
        current = {} if item.deleted else measures(item)
        for measure, (planned, actual, value) in current.items():
            row = existing.pop((item.id, measure), None)
            if row is None:
                session.add(
                    Deviation(item_id=item.id, measure=measure, planned=planned, actual=actual,
                              value=value)
                )
            else:
                row.planned, row.actual, row.value = planned, actual, value
            count += 1
    stale = [d.id for d in existing.values()]
    if stale:
        session.execute(delete(Deviation).where(Deviation.id.in_(stale)))
    return count
