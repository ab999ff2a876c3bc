"""Read a process experiment's panel out of the store: finished items on both sides, with
their cluster, when they began and finished, and their value on one measure."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import links, plans
from core import measures as registry
from core.learning.dataset import kind_maps
from core.model import Deviation, Event, Item
from core.model.process import ProcessExperiment
from core.process import predicate
from core.process.did import Obs
from core.process.measures import ProcessMeasure

DAY = 86400.0
CHUNK = 900
AGAINST = "committed"  # judged against the plan as committed, like learning
NOT_FINISHED = ("open", "cancelled")


def days(when: dt.datetime) -> float:
    """A time on the panel's clock: days since the epoch."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    return aware.timestamp() / DAY


@dataclass
class Panel:
    """The observations of one measure, and who is on each side."""

    obs: list[Obs]
    cluster: str
    treated_groups: list[str] = field(default_factory=list)
    comparison_groups: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)
    treated_ids: list[int] = field(default_factory=list)
    unmatched: str | None = None  # why nothing matched the treated predicate


@dataclass(frozen=True)
class _Row:
    id: int
    family: str
    segments: dict[str, Any]
    status: str
    actual_start: dt.datetime | None
    actual_end: dt.datetime | None
    committed_at: dt.datetime | None
    planned_at: dt.datetime | None


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def finished_rows(session: Session) -> list[_Row]:
    """Every live finished item with its kind family and segments (links included)."""
    maps = kind_maps(session)
    rows = session.execute(select(
        Item.id, Item.kind, Item.connection_id, Item.segments, Item.status, Item.actual_start,
        Item.actual_end, Item.committed_at, Item.planned_at).where(
        Item.deleted.is_(False), Item.status.not_in(NOT_FINISHED),
        Item.actual_end.is_not(None))).all()
    merged = links.inherited_segments(session, [r.id for r in rows],
                                      known={r.id: dict(r.segments or {}) for r in rows})
    return [_Row(r.id, registry.family(r.kind, maps.get(r.connection_id)),
                 merged.get(r.id, dict(r.segments or {})), r.status, r.actual_start,
                 r.actual_end, r.committed_at, r.planned_at) for r in rows]


def _values(session: Session, measure: ProcessMeasure, rows: list[_Row]) -> dict[int, float]:
    """Item id -> its value on `measure` (model scale); items without one are absent."""
    out: dict[int, float] = {}
    if measure.deviations:
        wanted = {r.id: measure.deviations.get(r.family) for r in rows}
        names = sorted({n for n in wanted.values() if n})
        ids = [i for i, n in wanted.items() if n]
        for chunk in _chunks(ids):
            for item_id, name, value in session.execute(
                    select(Deviation.item_id, Deviation.measure, Deviation.value).where(
                        Deviation.item_id.in_(chunk), Deviation.measure.in_(names),
                        Deviation.against == AGAINST)):
                if name == wanted[item_id] and math.isfinite(value):
                    if measure.log:
                        if value > 0:
                            out[item_id] = math.log(value)
                    else:
                        out[item_id] = float(value)
        return out
    if measure.name == "replanning":
        committed = {r.id: r.committed_at for r in rows if r.committed_at is not None}
        counts = dict.fromkeys(committed, 0.0)
        for chunk in _chunks(list(committed)):
            for item_id, at, attrs in session.execute(
                    select(Event.item_id, Event.occurred_at, Event.attributes).where(
                        Event.item_id.in_(chunk), Event.kind == plans.PLAN_CHANGED)):
                since = committed[item_id]
                if at > since and (attrs or {}).get("field") in plans.PLAN_FIELDS:
                    counts[item_id] += 1.0
        return counts
    if measure.name == "cycle_time":
        for r in rows:
            if r.actual_start is not None and r.actual_end is not None \
                    and r.actual_end >= r.actual_start:
                out[r.id] = (r.actual_end - r.actual_start).total_seconds() / DAY
        return out
    return {r.id: 1.0 for r in rows}  # throughput: every finished item counts once


def cluster_of(exp: ProcessExperiment) -> str:
    """The dimension the experiment's items cluster by."""
    return exp.cluster or next(iter(exp.treated))


def load(session: Session, exp: ProcessExperiment, measure: ProcessMeasure,
         rows: list[_Row] | None = None) -> Panel:
    """The panel of `exp` on `measure`: treated items match the treated predicate; the
    comparison is the named predicate, or else every other finished item of the treated
    items' kind families that has a value for the cluster dimension."""
    rows = finished_rows(session) if rows is None else rows
    cluster = cluster_of(exp)
    treated = [r for r in rows if predicate.matches(exp.treated, r.segments)]
    panel = Panel([], cluster)
    if not treated:
        panel.unmatched = _unmatched(exp.treated, rows)
        return panel
    families = sorted({r.family for r in treated})
    if measure.deviations:
        measured = [f for f in families if f in measure.deviations]
        if not measured:
            panel.unmatched = (f"{measure.label} is measured on {' and '.join(measure.deviations)} "
                               f"items; the items of {predicate.text(exp.treated)} are "
                               f"{' and '.join(families)} items")
            return panel
        families = measured
    panel.families = families
    treated_ids = {r.id for r in treated}
    comparison = [r for r in rows if r.id not in treated_ids and r.family in families
                  and r.segments.get(cluster) not in (None, "")
                  and (exp.comparison is None or predicate.matches(exp.comparison, r.segments))]
    treated = [r for r in treated if r.family in families
               and r.segments.get(cluster) not in (None, "")]
    both = treated + comparison
    values = _values(session, measure, both)
    labels = _labels(treated, comparison, cluster)
    for r in both:
        value = values.get(r.id)
        if value is None or r.actual_end is None:
            continue
        begun = r.actual_start or r.committed_at or r.planned_at
        side = r.id in treated_ids
        panel.obs.append(Obs(labels[(side, str(r.segments[cluster]))], side, days(r.actual_end),
                             value, days(begun) if begun is not None else None))
    panel.treated_groups = sorted({o.group for o in panel.obs if o.treated})
    panel.comparison_groups = sorted({o.group for o in panel.obs if not o.treated})
    panel.treated_ids = [r.id for r in treated if r.id in values]
    return panel


def _labels(treated: list[_Row], comparison: list[_Row], cluster: str
            ) -> dict[tuple[bool, str], str]:
    """A group's name: its cluster value, marked when a value has items on both sides (an
    assignee who moved team is two groups)."""
    t = {str(r.segments[cluster]) for r in treated}
    c = {str(r.segments[cluster]) for r in comparison}
    out = {(True, v): (f"{v} (treated)" if v in c else v) for v in t}
    out.update({(False, v): v for v in c})
    return out


def _unmatched(pred: Mapping[str, list[str]], rows: list[_Row]) -> str:
    """Why no finished item matches: the values each dimension does have."""
    parts = []
    for key in pred:
        seen = sorted({str(r.segments[key]) for r in rows if r.segments.get(key) not in (None, "")})
        parts.append(f"{key}: " + (", ".join(seen[:10]) + (" ..." if len(seen) > 10 else "")
                                   if seen else "no finished item has this dimension"))
    return (f"no finished item matches {predicate.text(pred)} (values seen: "
            f"{'; '.join(parts)})")
