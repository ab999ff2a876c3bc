"""Items for people: a paged list, one item's timeline, and experiments by segment."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.errors import NotFoundError
from core.experiments.analyze import analyze_test, segment_findings
from core.experiments.learn import from_store
from core.learning.ledger import from_days
from core.model import Connection, Deviation, Event, Forecast, Item, WriteIntent
from webapp import insight_data

PAGE_SIZE = 50


def page(session: Session, *, status: str | None = None, q: str | None = None,
         page: int = 1, size: int = PAGE_SIZE) -> tuple[list[Any], bool]:
    """One page of items, newest first, with their latest effort P80; and whether there are more.

    The page's ids are found first (only ids are skipped over, so deep pages stay cheap), then
    those items and their forecasts are loaded.
    """
    wanted = select(Item.id).where(Item.deleted.is_(False))
    if status:
        wanted = wanted.where(Item.status == status)
    if q:
        like = f"%{q.strip()}%"
        wanted = wanted.where(or_(Item.title.ilike(like), Item.external_id.ilike(like)))
    found = list(session.scalars(wanted.order_by(Item.id.desc()).offset((page - 1) * size)
                                 .limit(size + 1)))
    more, found = len(found) > size, found[:size]
    rows = session.execute(
        select(Item, Connection.name).join(Connection, Connection.id == Item.connection_id)
        .where(Item.id.in_(found)).order_by(Item.id.desc())).all() if found else []
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
    return {"item": item, "timeline": timeline, "forecasts": forecasts,
            "deviations": deviations, "finding": finding, "writes": writes}


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
