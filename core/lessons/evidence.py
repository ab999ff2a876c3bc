"""The evidence a lesson is tested on: finished items of its segment, before and after it."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import measures
from core.deviations import COMMITTED
from core.learning.dataset import raw_rows
from core.lessons.parse import DEVIATION, FINISH, OVER, key_in, matches
from core.model import Connection, Deviation, Item, Lesson


@dataclass(frozen=True)
class Point:
    """One finished item's deviation on a lesson's measure."""

    item_id: int
    group: str
    """Its project (else its team, else its connection): what recurrence is counted over."""
    at: dt.datetime
    """When its plan was made (else when it finished): after the lesson or before it."""
    planned: float
    value: float
    segments: Mapping[str, Any]


def _utc(value: Any) -> dt.datetime | None:
    """A stored time (naive UTC text on SQLite, a datetime elsewhere) as aware UTC."""
    if value is None:
        return None
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(when, dt.datetime)
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _segments(raw: Any, decoded: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Segments from their stored JSON, decoded once per distinct text (and shared)."""
    if raw is None:
        return {}
    if not isinstance(raw, str):  # a driver that decodes JSON itself
        return dict(raw)
    if raw not in decoded:
        decoded[raw] = json.loads(raw) or {}
    return decoded[raw]


class Evidence:
    """Every finished item's committed-plan deviation per lesson measure, loaded once per run."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._rows: dict[str, list[tuple[str, Point]]] = {}
        self._kinds = {c.id: (c.name, measures.kind_map(c.scope))
                       for c in session.scalars(select(Connection))}

    def _load(self, measure: str) -> list[tuple[str, Point]]:
        if measure not in self._rows:
            stmt = (select(Item.id, Item.connection_id, Item.kind, Item.segments,
                           Item.planned_at, Item.actual_end, Deviation.planned, Deviation.value)
                    .join(Deviation, Deviation.item_id == Item.id)
                    .where(Deviation.measure == DEVIATION[measure],
                           Deviation.against == COMMITTED, Item.deleted.is_(False),
                           Item.status != "open")
                    .order_by(Item.id))
            rows = []
            decoded: dict[str, dict[str, Any]] = {}
            families: dict[tuple[int, str], str] = {}
            # Straight from the driver (a third of the cost): times and JSON may come as text.
            for iid, cid, kind, raw, planned_at, end, planned, value in raw_rows(self.session,
                                                                                stmt):
                at = _utc(planned_at) or _utc(end)
                if at is None or value is None or not math.isfinite(value):
                    continue
                name, kmap = self._kinds.get(cid, (str(cid), {}))
                if (cid, kind) not in families:
                    families[(cid, kind)] = measures.family(kind, kmap)
                segs = _segments(raw, decoded)
                group = segs.get("project") or segs.get("team") or name
                rows.append((families[(cid, kind)],
                             Point(iid, str(group), at, float(planned), float(value), segs)))
            rows.sort(key=lambda r: (r[1].at, r[1].item_id))
            self._rows[measure] = rows
        return self._rows[measure]

    def of(self, lesson: Lesson) -> list[Point]:
        """The lesson's items: its kind family, in its segment, oldest plan first."""
        assert lesson.measure is not None
        inside: dict[int, bool] = {}  # items share their decoded segments: match each once
        kind, segment = lesson.kind, dict(lesson.segment)
        got = []
        for fam, p in self._load(lesson.measure):
            if fam != kind:
                continue
            key = id(p.segments)
            if key not in inside:
                inside[key] = matches(segment, p.segments)
            if inside[key]:
                got.append(p)
        return got


def threshold(lesson: Lesson) -> float:
    """Where an item's deviation counts as the lesson's prediction coming true: closer (on
    the log scale) to the predicted multiplier than to the plan, i.e. beyond its square root;
    beyond the plan itself (1x, or 0 days late) for a prediction of a direction only."""
    if lesson.measure == FINISH:
        return 0.0
    if lesson.multiplier is not None:
        return math.sqrt(lesson.multiplier)
    return 1.0


def held(lesson: Lesson, value: float) -> bool:
    """Whether one item's deviation is what the lesson predicts (past `threshold`)."""
    t = threshold(lesson)
    return value > t if lesson.direction == OVER else value < t


def selector(lesson: Lesson, points: Sequence[Point]) -> dict[str, str]:
    """The lesson's segment under the names its items store it by (`component` ->
    `components`), for a policy rule's selector."""
    out = {}
    for name, value in lesson.segment.items():
        names = [key_in(p.segments, name) for p in points[:50]]
        out[next((n for n in names if n), name)] = value
    return out
