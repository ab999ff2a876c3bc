"""Items for people: a paged list, one item's timeline, and experiments by segment."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.errors import NotFoundError
from core.experiments.analyze import analyze_test, segment_findings
from core.experiments.learn import from_store
from core.learning.ledger import from_days
from core.measures import ALIASES, DEAL, ENROLLMENT, TASK
from core.model import Connection, Deviation, Event, Forecast, Item, WriteIntent, utcnow
from webapp import insight_data

PAGE_SIZE = 50
FACET_SAMPLE = 5000


SORTS = {
    "newest": (Item.id.desc(),),
    "oldest": (Item.id.asc(),),
    "due": (Item.planned_due.is_(None), Item.planned_due.asc(), Item.id.desc()),
    "key": (Item.external_id.asc(), Item.id.asc()),
    "estimate": (Item.planned_estimate.is_(None), Item.planned_estimate.desc(), Item.id.desc()),
    "actual": (Item.actual_effort.is_(None), Item.actual_effort.desc(), Item.id.desc()),
    "amount": (Item.planned_amount.is_(None), Item.planned_amount.desc(), Item.id.desc()),
}
"""Sort orders of the item list (missing values last)."""

KINDS = {
    TASK: (("Estimate", "estimate"), ("Spent", "actual"), ("Forecast P80", "p80"),
           ("Due", "due")),
    DEAL: (("Amount", "amount"), ("Close date", "due"), ("Win chance", "probability"),
           ("Outcome", "outcome")),
    ENROLLMENT: (("Sent", "sent"), ("Outcome", "outcome")),
}
"""The columns each kind family is shown with: its own plan and outcome."""


@dataclass
class Filters:
    """What the item list is narrowed to (every field optional)."""

    status: str | None = None
    q: str | None = None
    connection: int | None = None
    kind: str | None = None
    overdue: bool = False
    segments: dict[str, str] = field(default_factory=dict)
    sort: str = "newest"

    def query(self) -> list[tuple[str, str]]:
        """The filters as query-string pairs (for the pager and sort links)."""
        pairs = [(k, str(v)) for k, v in (("q", self.q), ("status", self.status),
                                           ("connection", self.connection),
                                           ("kind", self.kind)) if v]
        if self.overdue:
            pairs.append(("overdue", "1"))
        pairs += [(f"seg_{k}", v) for k, v in sorted(self.segments.items())]
        return pairs


def _where(f: Filters, now: dt.datetime) -> list[Any]:
    conds: list[Any] = [Item.deleted.is_(False)]
    if f.status:
        conds.append(Item.status == f.status)
    if f.q:
        like = f"%{f.q.strip()}%"
        conds.append(or_(Item.title.ilike(like), Item.external_id.ilike(like)))
    if f.connection:
        conds.append(Item.connection_id == f.connection)
    if f.kind:
        conds.append(func.lower(Item.kind).in_(_kinds_of(f.kind)))
    if f.overdue:
        conds += [Item.status == "open", Item.planned_due < now]
    for dim, value in f.segments.items():
        conds.append(Item.segments[dim].as_string() == value)
    return conds


def _kinds_of(family: str) -> list[str]:
    """The stored kind names of a family (task: issue, bug, story...), case-folded."""
    names = [k for k, fam in ALIASES.items() if fam == family]
    return names or [family.lower()]


def family_of(kind: str) -> str:
    """A stored kind's family: task, deal, enrollment (or the kind itself)."""
    return ALIASES.get((kind or "").lower(), (kind or "").lower())


def page(session: Session, *, status: str | None = None, q: str | None = None,
         page: int = 1, size: int = PAGE_SIZE, filters: Filters | None = None,
         now: dt.datetime | None = None) -> tuple[list[Any], bool]:
    """One page of items with their latest effort P80; and whether there are more.

    The page's ids are found first (only ids are skipped over, so deep pages stay cheap), then
    those items and their forecasts are loaded.
    """
    f = filters or Filters(status=status, q=q)
    now = now or utcnow()
    order = SORTS.get(f.sort, SORTS["newest"])
    found = list(session.scalars(select(Item.id).where(*_where(f, now)).order_by(*order)
                                 .offset((page - 1) * size).limit(size + 1)))
    more, found = len(found) > size, found[:size]
    rows = session.execute(
        select(Item, Connection.name).join(Connection, Connection.id == Item.connection_id)
        .where(Item.id.in_(found))).all() if found else []
    position = {item_id: i for i, item_id in enumerate(found)}
    rows = sorted(rows, key=lambda r: position[r[0].id])
    ids = [r[0].id for r in rows]
    p80: dict[int, float] = {}
    if ids:
        for item_id, value in session.execute(
                select(Forecast.item_id, Forecast.p80).where(
                    Forecast.item_id.in_(ids), Forecast.measure == "effort")
                .order_by(Forecast.id)).all():
            if value is not None:
                p80[item_id] = value
    return [(item, name, p80.get(item.id)) for item, name in rows], more


def listing(session: Session, filters: Filters, page_no: int) -> dict[str, Any]:
    """One page of the item list as the page shows it: rows with their kind's cells and
    overdue days, the total, the page count and the query of the filters (for links)."""
    now = utcnow()
    rows, more = page(session, page=page_no, filters=filters, now=now)
    count = total(session, filters, now)
    family = filters.kind
    shown = [{"item": item, "conn": name, "family": family_of(item.kind),
              "cells": cells(item, p80, family),
              "heads": [h for h, _ in KINDS.get(family or family_of(item.kind), KINDS[TASK])],
              "overdue": overdue_days(item, now)} for item, name, p80 in rows]
    return {"rows": shown, "more": more, "page": page_no, "total": count,
            "pages": max(1, -(-count // PAGE_SIZE)), "filters": filters,
            "columns": [h for h, _ in KINDS.get(family, ())] if family else None,
            "sorts": list(SORTS), "query": urlencode(filters.query())}


def total(session: Session, filters: Filters, now: dt.datetime | None = None) -> int:
    """How many items the filters select."""
    return int(session.scalar(select(func.count(Item.id)).where(
        *_where(filters, now or utcnow()))) or 0)


def overdue_days(item: Item, now: dt.datetime) -> int | None:
    """Whole days an open item is past its due date (None when it is not overdue)."""
    if item.status != "open" or item.planned_due is None or item.planned_due >= now:
        return None
    return max(1, (now - item.planned_due).days)


def facets(session: Session) -> dict[str, Any]:
    """What the list can be filtered by: connections, kinds, and each segment dimension's
    values (from a sample of the newest items, the 40 commonest values per dimension)."""
    conns = list(session.execute(select(Connection.id, Connection.name)
                                 .order_by(Connection.name)).all())
    kinds: dict[str, int] = {}
    for kind, n in session.execute(select(Item.kind, func.count(Item.id))
                                   .where(Item.deleted.is_(False)).group_by(Item.kind)):
        kinds[family_of(kind)] = kinds.get(family_of(kind), 0) + int(n)
    counts: dict[str, dict[str, int]] = {}
    for segs in session.scalars(select(Item.segments).where(Item.deleted.is_(False))
                                .order_by(Item.id.desc()).limit(FACET_SAMPLE)):
        for dim, value in (segs or {}).items():
            if isinstance(value, str) and value:
                by = counts.setdefault(dim, {})
                by[value] = by.get(value, 0) + 1
    dims = {dim: sorted(sorted(vals, key=lambda v: -vals[v])[:40])
            for dim, vals in sorted(counts.items())}
    return {"connections": conns, "kinds": dict(sorted(kinds.items())), "segments": dims}


def cells(item: Item, p80: float | None, family: str | None) -> list[str]:
    """The item's own columns for its kind family (see KINDS), formatted for people."""
    keys = [k for _, k in KINDS.get(family or family_of(item.kind), KINDS[TASK])]
    return [_cell(item, p80, k) for k in keys]


def hours(value: float | None, unit: str) -> str:
    """An effort with its unit, always to one decimal (4.0 h beside 6.5 h)."""
    if value is None:
        return "-"
    short = {"hours": "h", "days": "d", "points": "pt"}.get(unit, unit)
    return f"{value:,.1f} {short}"


def _cell(item: Item, p80: float | None, key: str) -> str:
    if key == "estimate":
        return hours(item.planned_estimate, item.unit)
    if key == "actual":
        return hours(item.actual_effort, item.unit)
    if key == "p80":
        return hours(p80, item.unit)
    if key == "due":
        return item.planned_due.strftime("%Y-%m-%d") if item.planned_due else "-"
    if key == "amount":
        return "-" if item.planned_amount is None else f"{item.planned_amount:,.0f}"
    if key == "probability":
        return "-" if item.planned_probability is None else f"{item.planned_probability:.0%}"
    if key == "outcome":
        won = f" ({item.actual_amount:,.0f})" if item.actual_amount is not None else ""
        return (item.outcome or ("open" if item.status == "open" else "-")) + won
    if key == "sent":
        when = item.planned_start or item.estimated_at
        return when.strftime("%Y-%m-%d") if when else "-"
    raise KeyError(key)


def detail(session: Session, item_id: int) -> dict[str, Any]:
    """One item: its plan, outcome, timeline (plan changes, actions, outcome, forecasts issued),
    deviations, the finding that explains its segment, and what was written back.

    Raises:
        NotFoundError: for an unknown item.
    """
    item = session.get(Item, item_id)
    if item is None or item.deleted:
        raise NotFoundError(f"there is no item #{item_id}")
    events = session.scalars(select(Event).where(Event.item_id == item_id)
                             .order_by(Event.occurred_at).limit(500)).all()
    forecasts = session.scalars(select(Forecast).where(Forecast.item_id == item_id)
                                .order_by(Forecast.issued_at)).all()
    timeline: list[dict[str, Any]] = []
    for when, what, kind in ((item.planned_at, "planned", "plan"),
                             (item.actual_start, "work started", "action"),
                             (item.actual_end, f"finished ({item.status})", "outcome")):
        if when is not None:
            timeline.append({"at": when, "kind": kind, "text": what})
    for e in events:
        attrs = ", ".join(f"{k}: {v}" for k, v in list(e.attributes.items())[:4])
        timeline.append({"at": e.occurred_at, "kind": "action",
                         "text": f"{e.kind.replace('_', ' ')}" + (f" ({attrs})" if attrs else "")
                                 + (f" by {e.actor}" if e.actor else "")
                                 + (" [agent]" if e.actor_kind == "agent" else "")})
    for f in forecasts:
        timeline.append({"at": f.issued_at, "kind": "forecast", "text": _forecast_text(f, item)})
    timeline.sort(key=lambda t: t["at"])
    deviations = session.scalars(select(Deviation).where(Deviation.item_id == item_id)).all()
    finding = insight_data.cached(session, "finding_index", insight_data.finding_index).match(item)
    writes = session.scalars(select(WriteIntent).where(WriteIntent.item_id == item_id)
                             .order_by(WriteIntent.id)).all()
    family = family_of(item.kind)
    latest = {f.measure: f for f in forecasts}
    return {"item": item, "timeline": timeline, "forecasts": forecasts,
            "deviations": deviations, "finding": finding, "writes": writes,
            "family": family, "plan": plan_rows(item), "headline": headline(item, latest),
            "facts": list(zip([h for h, _ in KINDS.get(family, KINDS[TASK])],
                              cells(item, latest["effort"].p80 if "effort" in latest else None,
                                    family), strict=True)),
            "overdue": overdue_days(item, utcnow())}


PLAN_LABELS = {"planned_start": "start", "planned_due": "due", "planned_estimate": "estimate",
               "planned_amount": "amount", "planned_probability": "win chance",
               "expected_outcome": "expected outcome"}


def _plan_value(key: str, value: Any, unit: str) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d")
    if key == "planned_estimate" and isinstance(value, (int, float)):
        return hours(float(value), unit)
    if key == "planned_probability" and isinstance(value, (int, float)):
        return f"{value:.0%}"
    if isinstance(value, (int, float)):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    text = str(value)
    return text[:10] if key in ("planned_start", "planned_due") else text


def plan_rows(item: Item) -> list[tuple[str, str, str]]:
    """(what, committed, current) for each plan field either plan has."""
    committed = item.committed_plan or {}
    rows = []
    for key, label in PLAN_LABELS.items():
        now_value = getattr(item, key)
        then = committed.get(key)
        if now_value is None and then is None:
            continue
        rows.append((label, _plan_value(key, then, item.unit) if item.committed_plan else
                     "not committed yet", _plan_value(key, now_value, item.unit)))
    return rows


def headline(item: Item, latest: dict[str, Forecast]) -> str | None:
    """The latest forecast in one line a person reads first."""
    finish, effort, win = latest.get("finish"), latest.get("effort"), latest.get("win")
    if item.status != "open":
        return None
    parts = []
    if effort is not None and effort.p80 is not None:
        parts.append(f"plan for {hours(effort.p80, item.unit)} of effort (P80; median "
                     f"{hours(effort.p50, item.unit)})")
    if finish is not None and finish.p80 is not None:
        parts.append(f"80% chance to finish by {from_days(finish.p80):%Y-%m-%d}")
    if win is not None and win.probability is not None:
        parts.append(f"{win.probability:.0%} chance to win")
    return "Forecast: " + "; ".join(parts) + "." if parts else None


def _forecast_text(f: Forecast, item: Item) -> str:
    if f.probability is not None:
        scored = "" if not f.score else (
            f" — scored: {'won' if f.score.get('outcome') else 'lost'}, Brier score "
            f"{f.score.get('brier', 0.0):.2f}")
        return (f"{f.measure} forecast issued ({f.model_version}): {f.probability:.0%} chance "
                f"to win{scored}")
    if f.measure == "finish":
        values = ", ".join(f"{k.upper()} {from_days(v):%Y-%m-%d}"
                           for k, v in (("p50", f.p50), ("p80", f.p80), ("p90", f.p90))
                           if v is not None)
    else:
        values = ", ".join(f"{k.upper()} {v:.1f} {item.unit}"
                           for k, v in (("p50", f.p50), ("p80", f.p80), ("p90", f.p90))
                           if v is not None)
    scored = ""
    if f.score:
        covered = f.score.get("covered", {})
        scored = " — scored: " + ", ".join(
            f"{k.upper()} {'held' if covered.get(k) else 'missed'}" for k in ("p50", "p80", "p90")
            if k in covered)
    return f"{f.measure} forecast issued ({f.model_version}): {values}{scored}"


def experiments(session: Session) -> list[dict[str, Any]]:
    """Every stored test: arms with rates and lifts (intervals, n), and segment results."""
    out = []
    for stored in from_store(session):
        test = stored.experiment
        result = analyze_test(test, stored.dispersion)
        metric = result["primary_metric"]
        arms = [{"arm": arm, **row} for arm, row in result["metrics"][metric].items()]
        segments = [{"segment": f["segment"], "arm": f"{f['best_arm']} vs {f['compared_to']}",
                     "lift": f["lift"], "ci": f["ci"], "n": sum(f["n"]), "kind": f["kind"],
                     "statement": f["statement"]}
                    for f in segment_findings(test, observational=not stored.randomized,
                                              dispersion=stored.dispersion)[:15]]
        out.append({"name": test.name, "randomized": stored.randomized, "metric": metric,
                    "control": test.control, "decision": result["decision"],
                    "winner": result["winner"], "srm_p": result["srm_p"], "arms": arms,
                    "segments": segments, "n": len(stored.items)})
    return out
