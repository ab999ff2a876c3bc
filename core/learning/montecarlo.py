"""When will a group (epic, project, milestone) be done? Two Monte Carlo answers side by side.

Bottom-up: every open item's own finish-date forecast (its quantile curve, learned from the
deviations of similar items) is sampled, and the group is done when its last item is.
Throughput: the way jira-agile-metrics and ActionableAgile do it, days of the group's recent
throughput are resampled until the open count is used up. They answer from different evidence;
showing both lets people see when they disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.learning import dataset, ledger
from core.model import Item

TRIALS = 10_000
WINDOW_DAYS = 60
LEVELS = {"p50": 0.5, "p80": 0.8, "p90": 0.9}
MAX_DAYS = 3650


def _in_group(segments: Mapping[str, Any], selector: Mapping[str, str]) -> bool:
    return all(str(segments.get(k)) == str(v) for k, v in selector.items())


def _sample_curves(curves: np.ndarray[Any, Any], levels: list[float],
                   rng: np.random.Generator, trials: int) -> np.ndarray[Any, Any]:
    """Draws (trials x items) from each item's quantile curve, tails extended linearly."""
    lo = curves[:, :1] - (curves[:, -1:] - curves[:, :1])
    hi = curves[:, -1:] + 2 * (curves[:, -1:] - curves[:, -2:-1])
    xs = np.hstack([lo, curves, hi])
    ps = np.asarray([0.0, *levels, 1.0])
    u = rng.random((trials, len(curves)))
    idx = np.clip(np.searchsorted(ps, u, side="right") - 1, 0, len(ps) - 2)
    p0, p1 = ps[idx], ps[idx + 1]
    cols = np.arange(len(curves))
    x0, x1 = xs[cols, idx], xs[cols, idx + 1]
    return np.asarray(x0 + (x1 - x0) * (u - p0) / (p1 - p0))


def _dates(days: np.ndarray[Any, Any]) -> dict[str, str]:
    return {k: ledger.from_days(float(np.quantile(days, q))).date().isoformat()
            for k, q in LEVELS.items()}


def group_forecast(session: Session, selector: Mapping[str, str], as_of: dt.datetime,
                   trials: int = TRIALS, seed: int = 0) -> dict[str, Any]:
    """Completion forecasts of the open items matching `selector` (all items if empty)."""
    rng = np.random.default_rng(seed)
    items = [i for i in dataset.open_items(session) if _in_group(i.segments, selector)]
    out: dict[str, Any] = {"group": dict(selector), "open_items": len(items), "trials": trials,
                           "as_of": as_of.date().isoformat()}
    finish = ledger.latest(session, [i.id for i in items], "finish")
    forecast = [finish[i.id] for i in items if i.id in finish]
    now = ledger.to_days(as_of)
    if forecast:
        levels = [0.5, 0.8, 0.9, 0.95]
        curves = np.asarray([[f.p50, f.p80, f.p90, f.p95 or f.p90] for f in forecast])
        curves = np.maximum.accumulate(curves, axis=1)
        done_at = np.maximum(_sample_curves(curves, levels, rng, trials).max(axis=1), now)
        out["bottom_up"] = {**_dates(done_at), "items_forecast": len(forecast),
                            "assumes": "items progress in parallel, finish dates independent"}
    else:
        out["bottom_up"] = {"note": "no open item has a finish-date forecast (no due dates?)"}
    since = as_of - dt.timedelta(days=WINDOW_DAYS)
    ends = [e for e, segs in session.execute(
        select(Item.actual_end, Item.segments).where(
            Item.deleted.is_(False), Item.status == "done", Item.actual_end >= since,
            Item.actual_end < as_of))
        if e is not None and _in_group(segs, selector)]
    daily = np.zeros(WINDOW_DAYS)
    for end in ends:
        daily[min(int((end - since).total_seconds() // 86400), WINDOW_DAYS - 1)] += 1
    if not items:
        out["throughput"] = {"note": "nothing open in this group"}
    elif daily.sum() == 0:
        out["throughput"] = {"note": f"nothing finished in the last {WINDOW_DAYS} days: "
                             "no throughput to resample"}
    else:
        draws = rng.choice(daily, size=(trials, MAX_DAYS))
        reached = np.cumsum(draws, axis=1) >= len(items)
        needed = np.where(reached[:, -1], np.argmax(reached, axis=1) + 1, MAX_DAYS)
        out["throughput"] = {**_dates(now + needed.astype(np.float64)),
                             "window_days": WINDOW_DAYS, "finished_in_window": int(daily.sum()),
                             "mean_per_day": round(float(daily.mean()), 3)}
    return out
