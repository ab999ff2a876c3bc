"""Is the gap between plan and actual narrowing? Per month of finishing, with a trend test."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.model import Deviation, Item

MIN_PER_CYCLE = 10


def gap_by_cycle(session: Session) -> dict[str, Any]:
    """Median |log(actual/estimate)| and the share within 20% of plan, per month finished.

    Returns:
        {"cycles": [{"cycle": "2025-03", "n", "median_gap_factor", "within_20pct"}],
         "trend": {"kendall_tau", "p_value", "verdict"}} where verdict says in words whether
        the gap narrows, widens or shows no clear trend (p < 0.05 over months).
    """
    rows = session.execute(
        select(Item.actual_end, Deviation.value)
        .join(Deviation, Deviation.item_id == Item.id)
        .where(Deviation.measure == "effort_ratio", Deviation.against == "committed",
               Item.deleted.is_(False),
               Item.actual_end.is_not(None))
    ).all()
    months: dict[str, list[float]] = {}
    for end, value in rows:
        if end is None or value <= 0:
            continue
        months.setdefault(end.strftime("%Y-%m"), []).append(abs(math.log(value)))
    cycles = []
    for month in sorted(months):
        gaps = np.asarray(months[month])
        if len(gaps) < MIN_PER_CYCLE:
            continue
        cycles.append({
            "cycle": month, "n": len(gaps),
            "median_gap_factor": round(math.exp(float(np.median(gaps))), 3),
            "within_20pct": round(float(np.mean(gaps <= math.log(1.2))), 3),
        })
    trend: dict[str, Any] = {"verdict": "not enough cycles yet (need 4 months with "
                             f"{MIN_PER_CYCLE}+ finished items)"}
    if len(cycles) >= 4:
        tau, p = stats.kendalltau(range(len(cycles)), [c["median_gap_factor"] for c in cycles])
        verdict = "no clear trend"
        if p < 0.05:
            verdict = "narrowing" if tau < 0 else "widening"
        trend = {"kendall_tau": round(float(tau), 3), "p_value": round(float(p), 4),
                 "verdict": verdict, "cycles": len(cycles)}
    return {"cycles": cycles, "trend": trend}
