"""The forecast ledger: every forecast issued is kept, and scored when the actual lands."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core.model import Forecast, Item, utcnow

DAY = 86400.0
LEVELS = {"p50": 0.5, "p80": 0.8, "p90": 0.9, "p95": 0.95}


def to_days(value: dt.datetime) -> float:
    """A datetime as days since the epoch (how finish-date forecasts are stored)."""
    return value.timestamp() / DAY


def from_days(days: float) -> dt.datetime:
    """Inverse of `to_days`."""
    return dt.datetime.fromtimestamp(days * DAY, tz=dt.UTC)


class ForecastLike(Protocol):
    """What readers of the ledger need of a forecast (an ORM row or a plain result row)."""

    p50: float
    p80: float
    p90: float
    p95: float | None
    model_version: str
    actual: float | None


def latest(session: Session, item_ids: list[int], measure: str) -> dict[int, ForecastLike]:
    """The newest forecast of each item for `measure` (plain rows, read in chunks)."""
    out: dict[int, ForecastLike] = {}
    for start in range(0, len(item_ids), 1000):
        chunk = item_ids[start:start + 1000]
        for row in session.execute(
            select(Forecast.item_id, Forecast.model_version, Forecast.p50, Forecast.p80,
                   Forecast.p90, Forecast.p95, Forecast.actual)
            .where(Forecast.item_id.in_(chunk), Forecast.measure == measure)
            .order_by(Forecast.issued_at, Forecast.id)
        ):
            out[row.item_id] = row
    return out


def repeats(previous: ForecastLike | None, values: Mapping[str, float], model_version: str) -> bool:
    """Whether `values` repeat the item's previous forecast (same model, within 1%)."""
    if previous is None or previous.actual is not None or previous.model_version != model_version:
        return False
    return all(math.isclose(getattr(previous, k) or 0.0, v, rel_tol=0.01, abs_tol=0.05)
               for k, v in values.items())


def issue_many(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert forecast rows in bulk; returns how many."""
    if rows:
        session.execute(insert(Forecast), rows)
    return len(rows)


def pit(actual: float, quantiles: Mapping[float, float]) -> float:
    """Approximate probability integral transform: the forecast CDF at the actual (ties -> mid)."""
    points = sorted(quantiles.items())
    levels = [0.0] + [q for q, _ in points] + [1.0]
    values = [points[0][1] - (points[-1][1] - points[0][1])] + [v for _, v in points] + [
        points[-1][1] + (points[-1][1] - points[0][1])]
    equal = [lv for lv, v in zip(levels[1:-1], values[1:-1], strict=True) if v == actual]
    if equal:
        return (min(equal) + max(equal)) / 2 if len(equal) > 1 else equal[0]
    return float(np.interp(actual, values, levels))


def score_one(forecast: Forecast, actual: float) -> dict[str, Any]:
    """Coverage per quantile, pinball loss and PIT of one forecast against its actual."""
    log_scale = forecast.measure == "effort" and actual > 0 and forecast.p50 > 0
    quantiles = {lv: getattr(forecast, k) for k, lv in LEVELS.items() if getattr(forecast, k)}
    out: dict[str, Any] = {"covered": {}, "pinball": {}}
    for k, lv in LEVELS.items():
        value = getattr(forecast, k)
        if value is None:
            continue
        out["covered"][k] = bool(actual <= value + 1e-9)
        a, v = (math.log(actual), math.log(value)) if log_scale and value > 0 else (actual, value)
        diff = a - v
        out["pinball"][k] = max(lv * diff, (lv - 1) * diff)
    out["pit"] = pit(actual, quantiles)
    return out


def score_pending(session: Session) -> int:
    """Score every unscored forecast whose item has finished since; returns how many."""
    rows = session.execute(
        select(Forecast, Item).join(Item, Item.id == Forecast.item_id).where(
            Forecast.scored_at.is_(None), Item.status == "done", Item.deleted.is_(False)
        )
    ).all()
    scored = 0
    for forecast, item in rows:
        if forecast.measure == "effort":
            actual = item.actual_effort
        else:
            actual = to_days(item.actual_end) if item.actual_end else None
        if actual is None:
            continue
        forecast.actual = actual
        forecast.score = score_one(forecast, actual)
        forecast.scored_at = utcnow()
        scored += 1
    return scored


def calibration(session: Session, measure: str = "effort") -> dict[str, Any]:
    """Coverage of each quantile over every scored forecast, with n (the ledger's report)."""
    scores = session.scalars(select(Forecast.score).where(
        Forecast.measure == measure, Forecast.scored_at.is_not(None)
    )).all()
    n = len(scores)
    out: dict[str, Any] = {"measure": measure, "n": n}
    for k in LEVELS:
        hits = [s["covered"][k] for s in scores if s and k in s.get("covered", {})]
        out[k] = {"coverage": (sum(hits) / len(hits)) if hits else None, "n": len(hits)}
    return out
