"""The forecast ledger: every forecast issued is kept, and scored when the actual lands."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, Protocol, cast

import numpy as np
from sqlalchemy import Table, select, text, update
from sqlalchemy.orm import Session

from core import measures as registry
from core.bulk import insert_rows
from core.model import Connection, Forecast, Item, LearningRun, utcnow

DAY = 86400.0
LEVELS = {"p50": 0.5, "p80": 0.8, "p90": 0.9, "p95": 0.95}
PROBABILITY_MEASURES = frozenset({"win"})  # forecasts of a probability, scored by Brier
RELIABILITY_BINS = 10
ISSUE_LOCK = 7_301_164  # PostgreSQL advisory lock held while a run issues (and until it commits)
VALUES = ("p50", "p80", "p90", "p95", "probability")
MAX_VALUE = 1e9
"""A forecast beyond this (hours, or days since 1970: past year 4700) is out of range."""


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
    probability: float | None
    model_version: str
    actual: float | None


def latest(session: Session, item_ids: list[int], measure: str) -> dict[int, ForecastLike]:
    """The newest forecast of each item for `measure` (plain rows, read in chunks)."""
    out: dict[int, ForecastLike] = {}
    for start in range(0, len(item_ids), 1000):
        chunk = item_ids[start:start + 1000]
        for row in session.execute(
            select(Forecast.item_id, Forecast.model_version, Forecast.p50, Forecast.p80,
                   Forecast.p90, Forecast.p95, Forecast.probability, Forecast.actual)
            .where(Forecast.item_id.in_(chunk), Forecast.measure == measure)
            .order_by(Forecast.issued_at, Forecast.id)
        ):
            out[row.item_id] = cast(ForecastLike, row)
    return out


def repeats(previous: ForecastLike | None, values: Mapping[str, float], model_version: str) -> bool:
    """Whether `values` repeat the item's previous forecast (same model, within 1%)."""
    if previous is None or previous.actual is not None or previous.model_version != model_version:
        return False
    return all(math.isclose(getattr(previous, k) or 0.0, v, rel_tol=0.01, abs_tol=0.05)
               for k, v in values.items())


def _one_issuer(session: Session) -> None:
    """Hold the ledger's write lock until this transaction ends, so two learning runs that
    overlap issue one after the other (the second then sees what the first issued)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ISSUE_LOCK})
    else:  # SQLite: a write takes the database's single write lock for the transaction
        session.execute(update(Forecast).where(Forecast.id == -1).values(run_id=None))


def _issued_meanwhile(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that do not repeat a forecast another learning run committed since this
    one started (it could not see those when it compared with the previous forecasts)."""
    runs = {r["run_id"] for r in rows if r.get("run_id") is not None}
    started = session.scalar(select(LearningRun.started_at).where(LearningRun.id.in_(runs))
                             .order_by(LearningRun.started_at).limit(1)) if runs else None
    if started is None:
        return rows
    others = list(session.scalars(select(LearningRun.id).where(
        LearningRun.id.not_in(runs), LearningRun.status == "ok",
        LearningRun.finished_at >= started)))
    if not others:
        return rows
    newer: dict[tuple[int, str], Any] = {}
    items = sorted({r["item_id"] for r in rows})
    for start in range(0, len(items), 1000):
        for row in session.execute(
            select(Forecast.item_id, Forecast.measure, Forecast.model_version, Forecast.actual,
                   *(getattr(Forecast, k) for k in VALUES))
            .where(Forecast.item_id.in_(items[start:start + 1000]), Forecast.run_id.in_(others))
            .order_by(Forecast.issued_at, Forecast.id)
        ):
            newer[(row.item_id, row.measure)] = row
    return [r for r in rows if not repeats(
        newer.get((r["item_id"], r["measure"])),
        {k: r[k] for k in VALUES if r.get(k) is not None}, r["model_version"])]


def issue_many(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert forecast rows in bulk, skipping those another learning run that overlapped
    this one has issued already; returns how many were inserted."""
    if not rows:
        return 0
    _one_issuer(session)
    rows = _issued_meanwhile(session, rows)
    if rows:  # a plain executemany: the ORM's bulk path costs more than the insert
        insert_rows(session.connection(), cast(Table, Forecast.__table__), rows)
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


def score_probability(probability: float, outcome: float) -> dict[str, Any]:
    """Brier score of one probability forecast against its 0/1 outcome."""
    return {"brier": (probability - outcome) ** 2, "probability": probability,
            "outcome": outcome}


def score_one(forecast: Forecast, actual: float) -> dict[str, Any]:
    """Coverage per quantile, pinball loss and PIT of one forecast against its actual
    (the Brier score for a probability forecast)."""
    if forecast.measure in PROBABILITY_MEASURES:
        return score_probability(float(forecast.probability or 0.0), actual)
    log_scale = forecast.measure == "effort" and actual > 0 and (forecast.p50 or 0.0) > 0
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


def _actual(forecast: Forecast, item: Item) -> float | None:
    if forecast.measure in PROBABILITY_MEASURES:
        outcome = registry.won(item)
        return None if outcome is None else float(outcome)
    if item.status != "done":
        return None
    if forecast.measure == "effort":
        return item.actual_effort
    return to_days(item.actual_end) if item.actual_end else None


def score_pending(session: Session) -> int:
    """Score every unscored forecast whose item has finished since; returns how many.

    A win probability is scored when its deal closes, won or lost (or cancelled)."""
    rows = session.execute(
        select(Forecast, Item).join(Item, Item.id == Forecast.item_id).where(
            Forecast.scored_at.is_(None), Item.status != "open", Item.deleted.is_(False)
        )
    ).all()
    scored = 0
    for forecast, item in rows:
        actual = _actual(forecast, item)
        if actual is None:
            continue
        forecast.actual = actual
        forecast.score = score_one(forecast, actual)
        forecast.scored_at = utcnow()
        scored += 1
    return scored


def calibration(session: Session, measure: str = "effort") -> dict[str, Any]:
    """Coverage of each quantile over every scored forecast, with n (the ledger's report);
    for a probability measure (win), the Brier score and the reliability table."""
    scores = session.scalars(select(Forecast.score).where(
        Forecast.measure == measure, Forecast.scored_at.is_not(None)
    )).all()
    n = len(scores)
    out: dict[str, Any] = {"measure": measure, "n": n}
    if measure in PROBABILITY_MEASURES:
        return {**out, **summarise_probabilities([s for s in scores if s])}
    for k in LEVELS:
        hits = [s["covered"][k] for s in scores if s and k in s.get("covered", {})]
        out[k] = {"coverage": (sum(hits) / len(hits)) if hits else None, "n": len(hits)}
    return out


def _segment_pairs(segment: str) -> list[str]:
    return [part for part in segment.split(",") if "=" in part]


def report(session: Session, measure: str = "effort", min_n: int = 20,
           family: str | None = None) -> dict[str, Any]:
    """How the issued forecasts fared: per cycle (learning run), per segment value, overall.

    Every figure carries its n; coverage comes with a 90% Wilson interval so a person can
    tell noise from a failing quantile. A probability measure (win) is summarised by its
    Brier score and reliability table instead. `family` keeps only the forecasts of items of
    that kind family (finish-date forecasts are issued for tasks and for deals).
    """
    rows = session.execute(
        select(Forecast.run_id, Forecast.segment, Forecast.score, Item.kind, Item.connection_id)
        .join(Item, Item.id == Forecast.item_id)
        .where(Forecast.measure == measure, Forecast.scored_at.is_not(None))
        .order_by(Forecast.run_id)
    ).all()
    if family is not None:
        maps = {c: registry.kind_map(scope)
                for c, scope in session.execute(select(Connection.id, Connection.scope))}
        rows = [r for r in rows if registry.family(r[3], maps.get(r[4])) == family]
    summary = summarise_probabilities if measure in PROBABILITY_MEASURES else summarise
    cycles: dict[int, list[dict[str, Any]]] = {}
    segments: dict[str, list[dict[str, Any]]] = {}
    for run_id, segment, score, _, _ in rows:
        cycles.setdefault(run_id or 0, []).append(score)
        for part in _segment_pairs(segment):
            segments.setdefault(part, []).append(score)
    return {
        "measure": measure,
        "family": family,
        "overall": summary([r[2] for r in rows]),
        "cycles": [{"run_id": k, **summary(v)} for k, v in sorted(cycles.items())],
        "segments": {k: summary(v) for k, v in sorted(segments.items()) if len(v) >= min_n},
    }


def summarise_probabilities(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """Brier score (with a 90% interval) and the reliability table of probability forecasts:
    per tenth of predicted probability, the mean predicted, the observed rate with its 90%
    Wilson interval, and n."""
    valid = [s for s in scores if s and "brier" in s]
    n = len(valid)
    out: dict[str, Any] = {"n": n, "brier": None, "brier_interval_90": None,
                           "base_rate": None, "reliability": []}
    if not n:
        return out
    b = np.asarray([float(s["brier"]) for s in valid])
    p = np.asarray([float(s["probability"]) for s in valid])
    y = np.asarray([float(s["outcome"]) for s in valid])
    half = 1.645 * float(np.std(b, ddof=1)) / math.sqrt(n) if n > 1 else float("nan")
    mean = float(np.mean(b))
    out.update(brier=round(mean, 4), base_rate=round(float(np.mean(y)), 4),
               brier_interval_90=[round(max(mean - half, 0.0), 4), round(min(mean + half, 1.0), 4)]
               if n > 1 else None)
    bins = np.minimum((p * RELIABILITY_BINS).astype(int), RELIABILITY_BINS - 1)
    for j in range(RELIABILITY_BINS):
        inside = bins == j
        m = int(inside.sum())
        if not m:
            continue
        hits = int(y[inside].sum())
        lo, hi = wilson(hits, m)
        out["reliability"].append({
            "bin": [j / RELIABILITY_BINS, (j + 1) / RELIABILITY_BINS], "n": m,
            "predicted": round(float(p[inside].mean()), 4), "observed": round(hits / m, 4),
            "interval_90": [round(lo, 4), round(hi, 4)]})
    return out


def in_words(summary: Mapping[str, Any], what: str = "win probabilities") -> str:
    """A probability ledger summary in one plain sentence, with n and interval."""
    if not summary.get("n"):
        return f"no {what} scored yet"
    low, high = summary["brier_interval_90"] or (summary["brier"], summary["brier"])
    base = summary["base_rate"]
    return (f"{summary['n']} {what} scored: Brier score {summary['brier']:.3f} (90% interval "
            f"{low:.3f}-{high:.3f}; 0 is perfect, {base * (1 - base):.3f} is what always "
            f"saying the observed rate of {base:.0%} would score)")


def wilson(hits: int, n: int, z: float = 1.645) -> tuple[float, float]:
    """Wilson score interval of a proportion (90% by default)."""
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarise(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """Coverage (with interval) and mean pinball per quantile, and the PIT histogram."""
    out: dict[str, Any] = {"n": len(scores)}
    for k in LEVELS:
        hits = [bool(s["covered"][k]) for s in scores if s and k in s.get("covered", {})]
        losses = [float(s["pinball"][k]) for s in scores if s and k in s.get("pinball", {})]
        lo, hi = wilson(sum(hits), len(hits))
        out[k] = {
            "n": len(hits),
            "coverage": round(sum(hits) / len(hits), 4) if hits else None,
            "interval_90": [round(lo, 4), round(hi, 4)] if hits else None,
            "pinball": round(sum(losses) / len(losses), 4) if losses else None,
        }
    pits = [float(s["pit"]) for s in scores if s and "pit" in s]
    out["pit_histogram"] = np.histogram(pits, bins=10, range=(0, 1))[0].tolist() if pits else []
    return out


def recalibration(session: Session, min_n: int = 30) -> dict[str, dict[str, float]]:
    """Segments whose issued effort P80 keeps failing (or is needlessly wide), with the
    factor that would have made it cover 80%: fed back into the next forecasts.

    A segment is recalibrated only when the 90% interval of its P80 coverage excludes 0.8.
    """
    rows = session.execute(
        select(Forecast.segment, Forecast.p80, Forecast.actual)
        .where(Forecast.measure == "effort", Forecast.scored_at.is_not(None),
               Forecast.actual.is_not(None), Forecast.p80 > 0)
    ).all()
    ratios: dict[str, list[float]] = {}
    for segment, p80, actual in rows:
        for part in _segment_pairs(segment):
            ratios.setdefault(part, []).append(float(actual or 0.0) / cast(float, p80))
    out: dict[str, dict[str, float]] = {}
    for part, values in ratios.items():
        n = len(values)
        if n < min_n:
            continue
        hits = sum(1 for v in values if v <= 1 + 1e-9)
        lo, hi = wilson(hits, n)
        if lo <= 0.8 <= hi:
            continue
        factor = float(np.quantile(values, 0.8))
        out[part] = {"factor": round(factor, 4), "n": n, "coverage": round(hits / n, 4)}
    return out
