"""Time-ordered backtest of the learner against the simple rules a user could adopt instead:
the plan itself, one global multiplier, and the best one-column multiplier (chosen on the
newest part of the training data, never on the test part)."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.learning.model import GLOBAL, Sample, SegmentQuantileModel, pinball

LEVELS = (0.5, 0.8, 0.9)
TRAIN_SHARE = 0.7
ZERO = "actual 0"
LATE = "training row finished after the cut-off"


@dataclass(frozen=True)
class Row:
    """One finished item: when it was planned, planned and actual size, its segments, and
    (optionally) when its actual became known."""

    time: dt.datetime
    planned: float
    actual: float
    segments: Mapping[str, str]
    known: dt.datetime | None = None


def _scores(y: np.ndarray[Any, Any], pred: np.ndarray[Any, Any], q: float) -> dict[str, float]:
    return {"coverage": round(float(np.mean(y <= pred + 1e-9)), 4),
            "pinball": round(pinball(y, pred, q), 4)}


def left_out_reason(row: Row) -> str | None:
    """Why a row cannot enter a ratio model (None when it can)."""
    if not (math.isfinite(row.planned) and math.isfinite(row.actual)):
        return "planned or actual not a finite number"
    if row.planned <= 0:
        return "planned 0" if row.planned == 0 else "planned negative"
    if row.actual <= 0:
        return ZERO if row.actual == 0 else "actual negative"
    return None


def _stamp(when: dt.datetime | None) -> float | None:
    return None if when is None else when.timestamp()


def _sample(r: Row) -> Sample:
    return Sample(math.log(r.actual / r.planned), r.planned, dict(r.segments),
                  when=_stamp(r.time), known=_stamp(r.known))


def _zero_note(zeros: Sequence[Row], cutoff: dt.datetime, n_before: int, n_after: int
               ) -> dict[str, Any]:
    before = sum(1 for r in zeros if r.time < cutoff)
    after = len(zeros) - before
    share = {"before_cutoff": round(before / max(before + n_before, 1), 4),
             "after_cutoff": round(after / max(after + n_after, 1), 4)}
    return {"n": len(zeros), "share_of_finished": share,
            "note": (f"{len(zeros):,} finished with actual 0 left out of the ratio models "
                     f"({share['before_cutoff']:.1%} of finished items before the cut-off, "
                     f"{share['after_cutoff']:.1%} after): items that needed no work")}


def backtest(rows: Sequence[Row], levels: Sequence[float] = LEVELS,
             train_share: float = TRAIN_SHARE) -> dict[str, Any]:
    """Train on the oldest 70% (stable time order), score the newest 30%.

    Rows without a ratio (planned or actual 0 or negative) are counted and left out. A
    training row counts only if its actual was known at the cut-off (the plan time of the
    first test row). Coverage is the share of test rows with actual <= forecast; pinball loss
    is on log(actual/planned). Side by side: `raw_plan` (the plan as the forecast),
    `global_multiplier` (the training quantile of actual/planned) and `best_single_column`
    (shrunk multipliers per value of the one column, or plan-size class, that did best on the
    newest part of the training rows).

    Raises:
        ValueError: with too few usable rows to split.
    """
    left_out: Counter[str] = Counter()
    usable: list[Row] = []
    zeros: list[Row] = []
    for r in rows:
        reason = left_out_reason(r)
        if reason is None:
            usable.append(r)
            continue
        left_out[reason] += 1
        if reason == ZERO:
            zeros.append(r)
    ordered = sorted(usable, key=lambda r: r.time)  # sorted() is stable: ties keep file order
    n_train = int(len(ordered) * train_share)
    if n_train < 10 or len(ordered) - n_train < 1:
        why = "; ".join(f"{k}: {v}" for k, v in sorted(left_out.items()))
        raise ValueError(f"{len(ordered)} usable rows of {len(rows)}"
                         + (f" (left out: {why})" if why else "")
                         + "; at least 15 are needed for a backtest")
    cutoff = ordered[n_train].time
    train = [r for r in ordered[:n_train] if r.known is None or r.known <= cutoff]
    left_out[LATE] += n_train - len(train)
    if len(train) < 10:
        raise ValueError(f"{len(train)} of the {n_train} training rows had finished by the "
                         f"cut-off ({cutoff.date().isoformat()}); at least 10 are needed")
    test_rows = ordered[n_train:]
    model = SegmentQuantileModel.fit([_sample(r) for r in train],
                                     quantiles=sorted({*levels, 0.95}))
    test = [_sample(r) for r in test_rows]
    y_test = np.array([s.y for s in test])
    preds = model.predict(test)
    glob = model.predict_candidate(GLOBAL, test)
    out: dict[str, Any] = {"n_train": len(train), "n_test": len(test), "quantiles": {}}
    for q in levels:
        fair = model.best_simple(q)
        fair_pred = model.predict_candidate(fair, test)[q]
        out["quantiles"][str(q)] = {
            "learnloop": _scores(y_test, preds[q], q),
            "raw_plan": _scores(y_test, np.zeros_like(y_test), q),
            "global_multiplier": {**_scores(y_test, glob[q], q),
                                  "multiplier": round(math.exp(float(glob[q][0])), 4)},
            "best_single_column": {**_scores(y_test, fair_pred, q),
                                   "column": fair.removeprefix("quantiles per ")},
        }
    described = model.describe()
    out["model"] = {"version": model.version, "pseudo_count": model.penalty,
                    "pseudo_count_size": model.penalty_size,
                    "dimensions": {d: len(v) for d, v in model.effects().items()},
                    "chosen": {k: v["uses"] for k, v in described["levels"].items()},
                    "validation": described["levels"], "ties": described["ties"],
                    "summary": described["summary"]}
    out["left_out"] = {k: v for k, v in sorted(left_out.items()) if v}
    if zeros:
        out["zero_actuals"] = _zero_note(zeros, cutoff, n_train, len(test_rows))
    return out
