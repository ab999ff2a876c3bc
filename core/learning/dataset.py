"""Read what learning needs out of the store: finished deviations per (kind family, measure)
and open items."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Subquery, select
from sqlalchemy.orm import Session

from core import links
from core import measures as registry
from core.learning.model import Sample
from core.model import Connection, Deviation, Event, Item

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
WINDOW = 100_000
STATUS_EVENT = "status_changed"
AGAINST = "committed"  # learning reads deviations against the plan as committed


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
        """The model's view of a measure key (`task/effort`, or a bare `effort`): the log of
        a ratio, days or a 0/1 outcome as it is."""
        y = registry.model_value(split(measure)[1], self.value)
        return Sample(y=y, size=self.size, segments=self.segments)


def key(fam: str, measure: str) -> str:
    """The key of a model: `family/measure`, e.g. `task/effort`, `deal/won`."""
    return f"{fam}/{measure}"


def split(model_key: str) -> tuple[str, str]:
    """(family, measure) of a model key; a bare measure is a task measure."""
    fam, _, name = model_key.rpartition("/")
    return (fam or registry.TASK, name)


def finding_measure(model_key: str) -> str:
    """The measure findings are stored under: the bare name for tasks (`effort`, `finish`,
    as before measures were per kind), `family/measure` for every other family."""
    fam, name = split(model_key)
    return name if fam == registry.TASK else model_key


def deviations() -> Subquery:
    """The deviations learning reads: every read of Deviation goes through here, so a filter
    on them (such as which plan baseline they are measured against) lives in one place."""
    return (select(Deviation.item_id, Deviation.measure, Deviation.planned, Deviation.actual,
                   Deviation.value).where(Deviation.against == AGAINST).subquery("dev"))


def kind_maps(session: Session) -> dict[int, dict[str, str]]:
    """Connection id -> its `kind_map` (only connections that have one)."""
    out = {}
    for conn_id, scope in session.execute(select(Connection.id, Connection.scope)):
        mapped = registry.kind_map(scope)
        if mapped:
            out[conn_id] = mapped
    return out


def finished(session: Session, window: int = WINDOW) -> dict[str, list[Observation]]:
    """Finished, live items with a deviation, keyed `family/measure`, oldest plan first: the
    deviations of the most recent `window` finished items (learning looks at recent evidence;
    a million-item history costs what its newest 100,000 cost). No key mixes kind families
    unless a connection's `kind_map` maps them together.

    One query of plain columns (no ORM objects), plus the status changes of finished deals
    for their days per stage: this is the hot path.
    """
    maps = kind_maps(session)
    newest = (
        select(Item.id, Item.planned_at)
        .where(Item.deleted.is_(False), Item.status != "open")
        .order_by(Item.planned_at.desc().nulls_last(), Item.id.desc())
        .limit(window)
        .subquery("newest")
    )
    # Two reads of the same window: the items once each (their segments decoded once), then
    # their deviations as plain numbers.
    items = {row[0]: row[1:] for row in session.execute(
        select(Item.id, Item.kind, Item.connection_id, Item.segments, Item.planned_at,
               Item.planned_start, Item.planned_due, Item.planned_estimate, Item.planned_amount)
        .join(newest, newest.c.id == Item.id))}
    # Segments through links: a deal's industry from its company, an enrollment's seniority
    # from its contact (the item's own values win). A store without links pays one query.
    merged = links.inherited_segments(session, list(items),
                                      known={i: row[2] or {} for i, row in items.items()})
    items = {i: (*row[:2], merged.get(i, row[2]), *row[3:]) for i, row in items.items()}
    dev = deviations()
    rows = session.execute(
        select(dev.c.item_id, dev.c.measure, dev.c.planned, dev.c.actual, dev.c.value)
        .join(newest, newest.c.id == dev.c.item_id)
        .where(dev.c.measure.in_(sorted(registry.DEVIATIONS)))
        .order_by(newest.c.planned_at.asc().nulls_first(), newest.c.id.asc())
    )
    families: dict[tuple[str, int], tuple[str, dict[str, registry.Measure]]] = {}
    by_key: dict[str, list[Observation]] = {}
    deals: dict[int, tuple[dt.datetime, dict[str, Any], str]] = {}
    for item_id, name, planned, actual, value in rows:
        kind, conn_id, segments, at, p_start, p_due, estimate, amount = items[item_id]
        known = families.get((kind, conn_id))
        if known is None:
            fam = registry.family(kind, maps.get(conn_id))
            known = families[(kind, conn_id)] = (
                fam, {m.deviation: m for m in registry.for_family(fam)})
        fam, spec = known[0], known[1].get(name)
        if spec is None:  # stored under another kind before the item's kind changed
            continue
        at = at or EPOCH
        by_key.setdefault(key(fam, spec.name), []).append(Observation(
            item_id, at, segments, planned, actual, value,
            spec.size_of(p_start, p_due, estimate, amount)))
        if fam == registry.DEAL:
            deals.setdefault(item_id, (at, segments, fam))
    by_key.update(_stage_days(session, deals))
    return by_key


def _stage_days(session: Session, deals: Mapping[int, tuple[dt.datetime, dict[str, Any], str]]
                ) -> dict[str, list[Observation]]:
    """Days per stage of finished deals, one observation per deal and stage it went
    through (the stage is a segment of its own), in the deals' time order."""
    deal_ids = list(deals)
    changes: dict[int, list[tuple[dt.datetime, str | None, str | None]]] = {}
    ends: dict[int, dt.datetime | None] = {}
    for start in range(0, len(deal_ids), 1000):
        chunk = deal_ids[start:start + 1000]
        for item_id, end in session.execute(
                select(Item.id, Item.actual_end).where(Item.id.in_(chunk))):
            ends[item_id] = end
        for item_id, when, attrs in session.execute(
                select(Event.item_id, Event.occurred_at, Event.attributes)
                .where(Event.item_id.in_(chunk), Event.kind == STATUS_EVENT)):
            attrs = attrs or {}
            changes.setdefault(item_id, []).append((when, attrs.get("from"), attrs.get("to")))
    out: dict[str, list[Observation]] = {}
    for item_id in deal_ids:
        at, segments, fam = deals[item_id]
        spent = registry.stage_days(changes.get(item_id, []), ends.get(item_id))
        for stage, days in sorted(spent.items()):
            out.setdefault(key(fam, "stage_days"), []).append(Observation(
                item_id, at, {**segments, "stage": stage}, 0.0, days, days, None))
    return out


ITEM_VIEW = [c for c in Item.__table__.columns if c.name != "raw"]


def item_views(session: Session, *where: Any) -> list[Item]:
    """Items matching `where` as read-only rows with the Item's attributes (no raw payload).

    Plain rows cost a fraction of ORM objects; learning only reads them.
    """
    rows = session.execute(select(*ITEM_VIEW).where(*where).order_by(Item.id)).all()
    return cast(list[Item], rows)


def open_items(session: Session) -> list[Item]:
    """Live items that are not finished yet (read-only views), their segments completed
    through their links as for finished items (`core.links.inherited_segments`)."""
    views = item_views(session, Item.status == "open", Item.deleted.is_(False))
    merged = links.inherited_segments(session, [v.id for v in views],
                                      known={v.id: v.segments or {} for v in views})
    out: list[Item] = []
    for view in views:
        segments = merged.get(view.id, view.segments)
        if segments == view.segments:
            out.append(view)
        else:  # only linked items that gained a segment pay for a copy
            row = cast(Any, view)._asdict()
            out.append(cast(Item, SimpleNamespace(**{**row, "segments": segments})))
    return out


def open_by_family(session: Session, items: list[Item]) -> dict[str, list[Item]]:
    """Open items grouped by kind family (after their connection's `kind_map`)."""
    maps = kind_maps(session)
    out: dict[str, list[Item]] = {}
    for item in items:
        out.setdefault(registry.family(item.kind, maps.get(item.connection_id)), []).append(item)
    return out


def open_sample(item: Item, measure: registry.Measure) -> Sample | None:
    """The model's view of an open item, or None when it has no plan for `measure`."""
    plan = registry.plan_of(item)
    if not measure.plans_open(plan):
        return None
    return Sample(y=0.0, size=measure.size(plan), segments=dict(item.segments))
