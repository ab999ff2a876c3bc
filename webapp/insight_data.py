"""The figures behind the dashboards, computed in SQL where the store is large, cached per cycle.

Pages stay fast with 100,000+ items: heavy aggregates are computed once per learning run (or
sync) and reused until the next one; per-page queries are indexed and paged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.insights import FindingIndex
from core.learning import ledger
from core.learning.gap import gap_by_cycle
from core.learning.run import current_findings
from core.measures import ALIASES, ENROLLMENT
from core.model import Deviation, Finding, Item, JobRun, LearningRun, Proposal
from webapp import review_data

SCATTER_POINTS = 1500
SEGMENT_ROWS = 20_000
TTL = 120.0

T = TypeVar("T")
_cache: dict[tuple[str, str, tuple[Any, ...]], tuple[float, Any]] = {}
_lock = threading.Lock()


def _generation(session: Session) -> tuple[Any, ...]:
    """Changes whenever a learning run or a sync finishes: the cache key of every aggregate."""
    return (session.scalar(select(func.max(LearningRun.id))),
            session.scalar(select(func.max(JobRun.id))))


def cached(session: Session, name: str, compute: Callable[[Session], T]) -> T:
    """`compute(session)`, reused until the next learning run or sync (or TTL seconds)."""
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    key = (str(engine.url), name, _generation(session))
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
    if hit and now - hit[0] < TTL:
        return hit[1]  # type: ignore[no-any-return]
    value = compute(session)
    with _lock:
        for stale in [k for k in _cache if k[:2] == key[:2] and k != key]:
            del _cache[stale]
        _cache[key] = (now, value)
    return value


def findings(session: Session) -> list[Finding]:
    """The latest learning run's findings that show a difference (loaded once per run, read by
    many pages): a segment whose items took what the other items took is not a finding."""
    return [f for f in current_findings(session) if is_difference(f)]


def is_difference(finding: Finding) -> bool:
    """False when the finding's own interval holds the other items' figure, or when the two
    read the same once rounded as shown ("took 1.0x ... other items 1.0x")."""
    rest = (finding.evidence or {}).get("rest")
    if not isinstance(rest, (int, float)) or isinstance(rest, bool):
        return True
    if finding.interval_low <= rest <= finding.interval_high:
        return False
    digits = 1 if finding.measure == "effort" else 2
    return round(finding.effect, digits) != round(float(rest), digits)


def finding_rows(session: Session) -> list[dict[str, Any]]:
    """Each finding with its proposal (if any) and a link to the items it is about."""
    found = cached(session, "findings", findings)
    ids = [f.id for f in found]
    proposals: dict[int, Proposal] = {}
    if ids:
        for p in session.scalars(select(Proposal).where(Proposal.finding_id.in_(ids))
                                 .order_by(Proposal.id)):
            proposals[p.finding_id] = p  # type: ignore[index]
    rows = []
    for f in found:
        segs = {k: v for k, v in (f.segment or {}).items() if isinstance(v, str)}
        link = None
        if segs and len(segs) == len(f.segment or {}):
            link = "/items?" + urlencode([(f"seg_{k}", v) for k, v in sorted(segs.items())])
        prop = proposals.get(f.id)
        rows.append({"finding": f, "proposal": prop, "items_link": link,
                     "story": review_data.story(prop, f) if prop is not None else None})
    return rows


def finding_index(session: Session) -> FindingIndex:
    """The latest effort findings by segment, to explain any item without reloading them."""
    return FindingIndex(cached(session, "findings", findings), "effort")


def counts(session: Session) -> dict[str, int]:
    """Items by status, pending proposals and findings of the latest run."""
    kinds = [k for k, fam in ALIASES.items() if fam == ENROLLMENT]
    by_status = dict(session.execute(select(Item.status, func.count()).where(
        Item.deleted.is_(False), func.lower(Item.kind).not_in(kinds))
        .group_by(Item.status)).all())
    latest = session.scalar(select(func.max(LearningRun.id)).where(LearningRun.status == "ok"))
    return {
        "items": sum(by_status.values()), "done": by_status.get("done", 0),
        "open": by_status.get("open", 0),
        "pending_proposals": session.scalar(select(func.count()).where(
            Proposal.status == "pending").select_from(Proposal)) or 0,
        "findings": len(cached(session, "findings", findings)) if latest else 0,
        **_enrollments(session),
    }


def _enrollments(session: Session) -> dict[str, int]:
    """Enrollments apart: they are experiment units, not planned work."""
    kinds = [k for k, fam in ALIASES.items() if fam == ENROLLMENT]
    n = session.scalar(select(func.count(Item.id)).where(
        Item.deleted.is_(False), func.lower(Item.kind).in_(kinds))) or 0
    return {"enrollments": int(n)}


def scatter_points(session: Session) -> dict[str, Any]:
    """Planned vs actual effort of the most recently finished items (a sample for big stores)."""
    rows = session.execute(
        select(Item.id, Item.external_id, Item.planned_estimate, Item.actual_effort, Item.unit)
        .where(Item.status == "done", Item.deleted.is_(False),
               Item.planned_estimate > 0, Item.actual_effort > 0)
        .order_by(Item.planned_at.desc()).limit(SCATTER_POINTS)).all()
    total = session.scalar(select(func.count()).select_from(Item).where(
        Item.status == "done", Item.deleted.is_(False), Item.planned_estimate > 0,
        Item.actual_effort > 0)) or 0
    unit = rows[0].unit if rows else "hours"
    return {"points": [(float(r.planned_estimate), float(r.actual_effort)) for r in rows],
            "labels": [f"{r.external_id}: planned {r.planned_estimate:g}, actual "
                       f"{r.actual_effort:g} {r.unit}" for r in rows],
            "n_total": total, "unit": unit}


def segment_spread(session: Session) -> dict[str, Any]:
    """Actual/planned effort ratio per value of the segment dimension that separates most."""
    rows = session.execute(
        select(Item.segments, Deviation.value).join(Deviation, Deviation.item_id == Item.id)
        .where(Deviation.measure == "effort_ratio", Deviation.against == "committed",
               Item.deleted.is_(False), Deviation.value > 0)
        .order_by(Deviation.id.desc()).limit(SEGMENT_ROWS)).all()
    by_dim: dict[str, dict[str, list[float]]] = {}
    for segments, value in rows:
        for dim, val in (segments or {}).items():
            if isinstance(val, list):
                val = val[0] if val else None
            if val is None or val == "":
                continue
            by_dim.setdefault(dim, {}).setdefault(str(val), []).append(float(value))
    best: tuple[float, str] | None = None
    for dim, groups in by_dim.items():
        medians = [float(np.median(np.log(v))) for v in groups.values() if len(v) >= 10]
        if 2 <= len(medians) <= 40:
            spread = max(medians) - min(medians)
            if best is None or spread > best[0]:
                best = (spread, dim)
    if best is None:
        return {"dimension": None, "groups": [], "n": len(rows)}
    dim = best[1]
    spreads: list[dict[str, Any]] = []
    for label, values in sorted(by_dim[dim].items(), key=lambda kv: -len(kv[1]))[:12]:
        if len(values) < 10:
            continue
        q = np.quantile(np.asarray(values), [0.1, 0.25, 0.5, 0.75, 0.9])
        spreads.append({"label": label, "n": len(values), "q": [round(float(x), 3) for x in q]})
    return {"dimension": dim, "groups": spreads, "n": len(rows)}


def calibration_cycles(session: Session) -> dict[str, Any]:
    """Coverage of the issued P50/P80/P90 per learning cycle, with 90% intervals and n."""
    rep = ledger.report(session, "effort")
    runs = dict(session.execute(select(LearningRun.id, LearningRun.started_at)).all())
    cycles = []
    for c in rep["cycles"]:
        when = runs.get(c["run_id"])
        label = when.strftime("%Y-%m-%d") if when else f"run {c['run_id']}"
        cycles.append({"label": f"#{c['run_id']} {label}", **c})
    return {"overall": rep["overall"], "cycles": cycles, "segments": rep["segments"]}


def gap(session: Session) -> dict[str, Any]:
    """The gap between plan and actual per month finished, and whether it narrows."""
    return gap_by_cycle(session)


def off_target(overall: dict[str, Any]) -> list[dict[str, Any]]:
    """Each quantile whose coverage interval excludes its target (P50 50%, P80 80%...)."""
    out = []
    for level, target in (("p50", 0.5), ("p80", 0.8), ("p90", 0.9)):
        row = overall.get(level) or {}
        interval = row.get("interval_90")
        if row.get("coverage") is None or not interval:
            continue
        if not interval[0] <= target <= interval[1]:
            out.append({"level": level.upper(), "coverage": row["coverage"], "low": interval[0],
                        "high": interval[1], "n": row["n"], "target": target})
    return out
