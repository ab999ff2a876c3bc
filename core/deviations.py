"""Derive deviations (actual vs planned) from an item, against its committed and current plan."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from core import measures as registry
from core import plans
from core.model import Deviation, Item

DAY = 86400.0
COMMITTED, CURRENT = "committed", "current"
AGAINST = (COMMITTED, CURRENT)
"""The plans a deviation is measured against; learning reads `committed`."""


def measures(item: Item, plan: Mapping[str, Any], kinds: Mapping[str, str]
             ) -> dict[str, tuple[float, float, float]]:
    """The deviations of a finished item against `plan`: measure -> (planned, actual, value).

    Args:
        item: the item, for its status and actual values.
        plan: the planned values by core name (`planned_due`, `planned_estimate`, ...).
        kinds: its connection's kind map (`core.measures.kind_map` of its scope).

    Which measures depend on the item's kind family (see `core.measures`): tasks get
    effort_ratio, slip_days and duration_ratio; deals close_slip_days, amount_ratio and won;
    enrollments reply, meeting and conversion.
    """
    return registry.compute(item, plan, kinds)


def against_both(item: Item, kinds: Mapping[str, str]
                 ) -> dict[tuple[str, str], tuple[float, float, float]]:
    """(measure, against) -> (planned, actual, value), for the committed and current plan."""
    out: dict[tuple[str, str], tuple[float, float, float]] = {}
    for against, plan in ((COMMITTED, plans.committed_plan(item)),
                          (CURRENT, plans.current_plan(item))):
        if plan is not None:
            for measure, values in measures(item, plan, kinds).items():
                out[(measure, against)] = values
    return out


def refresh(session: Session, items: Iterable[Item]) -> int:
    """Recompute the deviations of `items` in place; returns how many rows now exist."""
    items = list(items)
    if not items:
        return 0
    ids = [i.id for i in items]
    existing = {
        (d.item_id, d.measure, d.against): d
        for d in session.scalars(select(Deviation).where(Deviation.item_id.in_(ids)))
    }
    count = 0
    new: list[dict[str, object]] = []
    kinds: dict[int | None, dict[str, str]] = {}  # per connection: read once, not per item
    for item in items:
        if item.connection_id not in kinds:
            kinds[item.connection_id] = registry.item_kind_map(item)
        current = {} if item.deleted else against_both(item, kinds[item.connection_id])
        for (measure, against), (planned, actual, value) in current.items():
            row = existing.pop((item.id, measure, against), None)
            if row is None:
                new.append({"item_id": item.id, "measure": measure, "against": against,
                            "planned": planned, "actual": actual, "value": value})
            else:
                row.planned, row.actual, row.value = planned, actual, value
            count += 1
    if new:  # one executemany, not one INSERT per row (what add() does on SQLite)
        session.execute(insert(Deviation), new)
    stale = [d.id for d in existing.values()]
    if stale:
        session.execute(delete(Deviation).where(Deviation.id.in_(stale)))
    return count
