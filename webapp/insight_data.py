"""The figures behind the dashboards, computed in SQL where the store is large, cached per cycle.

Pages stay fast with 100,000+ items: heavy aggregates are computed once per learning run (or
sync) and reused until the next one; per-page queries are indexed and paged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.insights import FindingIndex
from core.learning import ledger
from core.learning.gap import gap_by_cycle
from core.learning.run import current_findings
from core.model import Deviation, Finding, Item, JobRun, LearningRun, Proposal

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
    """The latest learning run's findings (loaded once per run, read by many pages)."""
    return current_findings(session)


def finding_index(session: Session) -> FindingIndex:
    """The latest effort findings by segment, to explain any item without reloading them."""
    return FindingIndex(cached(session, "findings", findings), "effort")


def counts(session: Session) -> dict[str, int]:
    """Items by status, pending proposals and findings of the latest run."""
    by_status = dict(session.execute(select(Item.status, func.count()).where(
        Item.deleted.is_(False)).group_by(Item.status)).all())
    latest = session.scalar(select(func.max(LearningRun.id)).where(LearningRun.status == "ok"))
    return {
        "items": sum(by_status.values()), "done": by_status.get("done", 0),
        "open": by_status.get("open", 0),
        "pending_proposals": session.scalar(select(func.count()).where(
            Proposal.status == "pending").select_from(Proposal)) or 0,
        "findings": session.scalar(select(func.count()).where(
            Finding.run_id == latest).select_from(Finding)) or 0 if latest else 0,
    }


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
