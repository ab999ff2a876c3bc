"""Read what learning needs out of the store: finished deviations per (kind family, measure)
(the whole history, or a recency-weighted sample standing for it) and open items."""

from __future__ import annotations

import datetime as dt
import json
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
from sqlalchemy import Executable, Subquery, case, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import sqltypes

from core import links
from core import measures as registry
from core.learning import recency
from core.learning.model import Sample
from core.learning.recency import FloatArray
from core.model import Connection, Deviation, Event, Item
from core.model.base import UTCDateTime

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
WINDOW = 100_000  # finished items read at most: a weighted sample of the history beyond it
LOAD_HALF_LIFE = 730.0  # days: the slowest recency decay the learner considers
CHUNK = 900  # ids per IN list
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
    weight: float = 1.0  # how many finished items it stands for (`history`)

    def sample(self, measure: str) -> Sample:
        """The model's view of a measure key (`task/effort`, or a bare `effort`): the log of
        a ratio, days or a 0/1 outcome as it is, with when it was planned and its weight."""
        y = registry.model_value(split(measure)[1], self.value)
        return Sample(y=y, size=self.size, segments=self.segments, when=self.when.timestamp(),
                      weight=self.weight)


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


def history(session: Session, budget: int = WINDOW) -> tuple[list[int], list[float], int]:
    """Which finished, live items learning reads: all of them up to `budget`, else a weighted
    sample of about `budget` standing for the whole history (`recency.thin`: each item kept
    with a chance that falls with its age, half-life LOAD_HALF_LIFE, never below a floor, and
    then weighing the inverse of that chance). The same items are kept run after run.

    Returns:
        (item ids oldest plan first, the weight of each: how many items it stands for, how
        many finished items there are in all)
    """
    rows = raw_rows(session, select(Item.id, Item.planned_at)
                    .where(Item.deleted.is_(False), Item.status != "open"))
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    stamps = _stamps([r[1] for r in rows])
    del rows
    order = np.lexsort((ids, stamps))
    ids, stamps = ids[order], stamps[order]
    total = len(ids)
    if total <= budget:
        return ids.tolist(), [1.0] * total, total
    w = recency.weights(stamps, float(stamps[-1]), LOAD_HALF_LIFE)
    keep, kept = recency.thin(w, budget, keys=ids)
    return ids[keep].tolist(), (kept / w[keep]).tolist(), total


def _stamps(values: list[Any]) -> FloatArray:
    """Epoch seconds of stored plan times (naive UTC text on SQLite, datetimes elsewhere;
    none: the epoch)."""
    if all(isinstance(v, str) for v in values):  # one vectorised parse
        return np.asarray(np.array(values, dtype="datetime64[us]").astype(np.int64) / 1e6)
    return np.fromiter((_stamp(v) for v in values), dtype=np.float64, count=len(values))


def _stamp(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return float(value.replace(tzinfo=dt.UTC).timestamp() if value.tzinfo is None
                 else value.timestamp())


def raw_rows(session: Session, stmt: Executable) -> list[tuple[Any, ...]]:
    """The rows of `stmt` straight from the database driver's cursor (parameters bound as
    usual, no result processing): a third of the cost on learning's big reads. Values come
    as the driver gives them (on SQLite times and JSON as text: see `_utc` and `_segments`)."""
    result = session.connection().execute(stmt)
    try:
        cursor = cast(Any, result).cursor
        return [tuple(r) for r in cursor.fetchall()]
    finally:
        result.close()


def _utc(value: Any) -> dt.datetime | None:
    """A stored time as aware UTC (naive UTC text or datetime, as the store keeps them)."""
    if value is None:
        return None
    if isinstance(value, str):
        # Naive UTC text (SQLite) parsed with its offset added costs a fifth of parsing it
        # and then setting the zone; text that already carries an offset takes the long way.
        try:
            fast = dt.datetime.fromisoformat(value + "+00:00")
        except ValueError:
            pass
        else:
            if fast.tzinfo is not None:  # (a bare date ignores the offset)
                return fast
    when: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _chunks(ids: list[int], size: int = CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def finished(session: Session, window: int = WINDOW) -> dict[str, list[Observation]]:
    """Finished, live items with a deviation, keyed `family/measure`, oldest plan first: the
    whole history when it has at most `window` finished items, else a recency-weighted
    sample of about `window` of them standing for all (`history`; each observation's
    `weight` says how many items it stands for). No key mixes kind families unless a
    connection's `kind_map` maps them together.

    Plain columns (no ORM objects) read by chunks of ids, plus the status changes of
    finished deals for their days per stage: this is the hot path.
    """
    maps = kind_maps(session)
    chosen, design, _ = history(session, window)
    weight_of = dict(zip(chosen, design, strict=True))
    # The items once each (their segments decoded once), then their deviations as numbers.
    items: dict[int, tuple[Any, ...]] = {}
    decoded: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(chosen):
        for row in raw_rows(session, select(
                Item.id, Item.kind, Item.connection_id, Item.segments, Item.planned_at,
                Item.planned_start, Item.planned_due, Item.planned_estimate,
                Item.planned_amount).where(Item.id.in_(chunk))):
            items[row[0]] = (row[1], row[2], _segments(row[3], decoded), _utc(row[4]),
                             _utc(row[5]), _utc(row[6]), row[7], row[8])
    # Segments through links: a deal's industry from its company, an enrollment's seniority
    # from its contact (the item's own values win). A store without links pays one query.
    merged = links.inherited_segments(session, list(items),
                                      known={i: row[2] for i, row in items.items()})
    items = {i: (*row[:2], merged.get(i, row[2]), *row[3:]) for i, row in items.items()}
    dev = deviations()
    by_item: dict[int, list[tuple[str, float, float, float]]] = {}
    for chunk in _chunks(chosen):
        for item_id, name, planned, actual, value in raw_rows(session, select(
                dev.c.item_id, dev.c.measure, dev.c.planned, dev.c.actual, dev.c.value)
                .where(dev.c.item_id.in_(chunk),
                       dev.c.measure.in_(sorted(registry.DEVIATIONS)))):
            by_item.setdefault(item_id, []).append((name, planned, actual, value))
    families: dict[tuple[str, int], tuple[str, dict[str, registry.Measure]]] = {}
    by_key: dict[str, list[Observation]] = {}
    deals: dict[int, tuple[dt.datetime, dict[str, Any], str]] = {}
    for item_id in chosen:  # oldest plan first
        if item_id not in by_item or item_id not in items:
            continue
        kind, conn_id, segments, at, p_start, p_due, estimate, amount = items[item_id]
        known = families.get((kind, conn_id))
        if known is None:
            fam = registry.family(kind, maps.get(conn_id))
            known = families[(kind, conn_id)] = (
                fam, {m.deviation: m for m in registry.for_family(fam)})
        fam = known[0]
        at = at or EPOCH
        for name, planned, actual, value in sorted(by_item[item_id]):
            spec = known[1].get(name)
            if spec is None:  # stored under another kind before the item's kind changed
                continue
            by_key.setdefault(key(fam, spec.name), []).append(Observation(
                item_id, at, segments, planned, actual, value,
                spec.size_of(p_start, p_due, estimate, amount), weight_of[item_id]))
            if fam == registry.DEAL:
                deals.setdefault(item_id, (at, segments, fam))
    by_key.update(_stage_days(session, deals, weight_of))
    return by_key


def left_out(session: Session) -> dict[str, dict[str, int]]:
    """Done, live items left out of each effort model, per reason (`measures.EFFORT_LEFT_OUT`):
    model key (`task/effort`) -> reason -> count. One aggregate query."""
    est, eff = Item.planned_estimate, Item.actual_effort
    reason = case((est.is_(None), registry.NO_ESTIMATE), (est <= 0, registry.PLANNED_ZERO),
                  (eff.is_(None), registry.NO_ACTUAL), (eff <= 0, registry.ACTUAL_ZERO),
                  else_=None).label("reason")
    rows = session.execute(
        select(Item.kind, Item.connection_id, reason, func.count())
        .where(Item.deleted.is_(False), Item.status == "done",
               or_(est.is_(None), est <= 0, eff.is_(None), eff <= 0))
        .group_by(Item.kind, Item.connection_id, reason))
    maps = kind_maps(session)
    out: dict[str, dict[str, int]] = {}
    for kind, conn_id, why, n in rows:
        fam = registry.family(kind, maps.get(conn_id))
        if why is None or not any(m.name == "effort" for m in registry.for_family(fam)):
            continue
        counts = out.setdefault(key(fam, "effort"), {})
        counts[why] = counts.get(why, 0) + int(n)
    return {k: {r: v[r] for r in registry.EFFORT_LEFT_OUT if r in v} for k, v in out.items()}


def left_out_words(counts: Mapping[str, int], kept: int) -> str:
    """The left-out counts of one effort model in plain words (`kept`: how many finished
    items it learned from), e.g. "477 finished with actual 0 left out of the effort model
    (6.2% of the 7,751 finished with an estimate and their effort logged: items that turned
    out to need no work); 12 finished with no estimate"."""
    parts = []
    for i, (why, n) in enumerate(counts.items()):
        text = f"{n:,} finished with {why}" + (" left out of the effort model" if i == 0 else "")
        if why == registry.ACTUAL_ZERO:
            text += (f" ({n / max(n + kept, 1):.1%} of the {n + kept:,} finished with an "
                     "estimate and their effort logged: items that turned out to need no work)")
        parts.append(text)
    return "; ".join(parts)


def _segments(raw: Any, decoded: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An item's segments from their stored JSON (decoded once per distinct text)."""
    if raw is None:
        return {}
    if not isinstance(raw, str):  # a driver that decodes JSON itself
        return dict(raw)
    got = decoded.get(raw)
    if got is None:
        got = decoded[raw] = json.loads(raw) or {}
    return got


def _stage_days(session: Session, deals: Mapping[int, tuple[dt.datetime, dict[str, Any], str]],
                weight_of: Mapping[int, float]) -> dict[str, list[Observation]]:
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
                item_id, at, {**segments, "stage": stage}, 0.0, days, days, None,
                weight_of.get(item_id, 1.0)))
    return out


ITEM_VIEW = [c for c in Item.__table__.columns if c.name != "raw"]
ItemView = namedtuple("ItemView", [c.name for c in ITEM_VIEW])  # type: ignore[misc]


def _converter(column: Any) -> Callable[[Any], Any] | None:
    """How a driver's raw value of `column` becomes what the store's type gives (None: as is)."""
    if isinstance(column.type, UTCDateTime):
        return _utc
    if isinstance(column.type, sqltypes.JSON):
        return lambda v: json.loads(v) if isinstance(v, str) else v
    if isinstance(column.type, sqltypes.Boolean):
        return lambda v: None if v is None else bool(v)
    return None


CONVERTERS = [(i, f) for i, c in enumerate(ITEM_VIEW) if (f := _converter(c)) is not None]


def item_views(session: Session, *where: Any) -> list[Item]:
    """Items matching `where` as read-only rows with the Item's attributes (no raw payload).

    Plain rows straight from the driver (`raw_rows`), each value converted as the store's
    column type would: a fraction of the cost of ORM objects; learning only reads them.
    """
    out = []
    for row in raw_rows(session, select(*ITEM_VIEW).where(*where).order_by(Item.id)):
        values = list(row)
        for i, convert in CONVERTERS:
            values[i] = convert(values[i])
        out.append(ItemView(*values))
    return cast(list[Item], out)


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
    if measure.name == "effort":  # the hot path: one field, no plan mapping
        estimate = item.planned_estimate
        if measure.forecast is None or not isinstance(estimate, int | float) or estimate <= 0:
            return None
        return Sample(y=0.0, size=float(estimate), segments=item.segments or {})
    plan = registry.plan_of(item)
    if not measure.plans_open(plan):
        return None
    return Sample(y=0.0, size=measure.size(plan), segments=dict(item.segments))
