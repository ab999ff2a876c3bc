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
BLOCK_CELLS = 1 << 20  # draws held at once (8 MB of float64): memory stays flat in trials x days


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


def latest_finish(curves: np.ndarray[Any, Any], levels: list[float], rng: np.random.Generator,
                  trials: int) -> np.ndarray[Any, Any]:
    """Per trial, the latest of the items' sampled finishes, drawn a block of items at a time."""
    done = np.full(trials, -np.inf)
    step = max(1, BLOCK_CELLS // 4 // max(trials, 1))  # sampling holds ~7 arrays this size
    for start in range(0, len(curves), step):
        block = _sample_curves(curves[start:start + step], levels, rng, trials)
        done = np.maximum(done, block.max(axis=1))
    return done


def days_needed(daily: np.ndarray[Any, Any], target: float, rng: np.random.Generator,
                trials: int, max_days: int = MAX_DAYS) -> np.ndarray[Any, Any]:
    """Per trial, the days of resampled throughput until `target` items are done (max_days if
    never): simulated a block of days at a time, only for the trials still running."""
    needed = np.full(trials, max_days, dtype=np.int64)
    total = np.zeros(trials)
    active = np.arange(trials)
    day = 0
    while active.size and day < max_days:
        width = min(max_days - day, max(16, BLOCK_CELLS // active.size))
        cum = total[active, None] + np.cumsum(rng.choice(daily, size=(active.size, width)), axis=1)
        reached = cum >= target
        hit = reached[:, -1]  # cumulative sums only grow: reached by the block's end or not
        needed[active[hit]] = day + np.argmax(reached[hit], axis=1) + 1
        total[active] = cum[:, -1]
        active = active[~hit]
        day += width
    return needed


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
        done_at = np.maximum(latest_finish(curves, levels, rng, trials), now)
        out["bottom_up"] = {**_dates(done_at), "items_forecast": len(forecast),
                            "assumes": "items progress in parallel, finish dates independent"}
    elif not items:
        out["bottom_up"] = {"note": "nothing open in this group"}
    else:
        from core.learning.run import MIN_TRAIN

        out["bottom_up"] = {"note": f"none of the {len(items)} open items has a finish-date "
                            f"forecast yet (an item needs a due date, and at least {MIN_TRAIN} "
                            "finished items with a due date to learn from, then `learnloop "
                            "learn`)"}
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
        needed = days_needed(daily, len(items), rng, trials)
        out["throughput"] = {**_dates(now + needed.astype(np.float64)),
                             "window_days": WINDOW_DAYS, "finished_in_window": int(daily.sum()),
                             "mean_per_day": round(float(daily.mean()), 3)}
    return out
