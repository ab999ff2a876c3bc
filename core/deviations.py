"""Derive deviations (actual vs planned) from an item's planned and actual values."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from core.model import Deviation, Item

DAY = 86400.0


def measures(item: Item) -> dict[str, tuple[float, float, float]]:
    """The deviations an item supports: measure -> (planned, actual, value).

    effort_ratio: actual effort / estimate; slip_days: done date - due date in days;
    duration_ratio: actual duration / planned duration (both in days).
    """
    out: dict[str, tuple[float, float, float]] = {}
    if item.status != "done":
        return out
    est, eff = item.planned_estimate, item.actual_effort
    if est is not None and eff is not None and est > 0 and eff > 0:
        out["effort_ratio"] = (est, eff, eff / est)
    if item.planned_due is not None and item.actual_end is not None:
        slip = (item.actual_end - item.planned_due).total_seconds() / DAY
        out["slip_days"] = (0.0, slip, slip)
    if (
        item.planned_start is not None
        and item.planned_due is not None
        and item.actual_start is not None
        and item.actual_end is not None
    ):
        planned = (item.planned_due - item.planned_start).total_seconds() / DAY
        actual = (item.actual_end - item.actual_start).total_seconds() / DAY
        if planned > 0 and actual > 0:
            out["duration_ratio"] = (planned, actual, actual / planned)
    return out


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
    new: list[dict[str, object]] = []
    for item in items:
        current = {} if item.deleted else measures(item)
        for measure, (planned, actual, value) in current.items():
            row = existing.pop((item.id, measure), None)
            if row is None:
                new.append({"item_id": item.id, "measure": measure, "planned": planned,
                            "actual": actual, "value": value})
            else:
                row.planned, row.actual, row.value = planned, actual, value
            count += 1
    if new:  # one executemany, not one INSERT per row (what add() does on SQLite)
        session.execute(insert(Deviation), new)
    stale = [d.id for d in existing.values()]
    if stale:
        session.execute(delete(Deviation).where(Deviation.id.in_(stale)))
    return count
