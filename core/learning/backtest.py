"""Time-ordered backtest of the learner against the plan itself and one global multiplier."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.learning.model import Sample, SegmentQuantileModel, pinball

LEVELS = (0.5, 0.8, 0.9)
TRAIN_SHARE = 0.7


@dataclass(frozen=True)
class Row:
    """One finished item: when it was planned, planned and actual size, its segments."""

    time: dt.datetime
    planned: float
    actual: float
    segments: Mapping[str, str]


def _scores(y: np.ndarray[Any, Any], pred: np.ndarray[Any, Any], q: float) -> dict[str, float]:
    return {"coverage": round(float(np.mean(y <= pred + 1e-9)), 4),
            "pinball": round(pinball(y, pred, q), 4)}


def backtest(rows: Sequence[Row], levels: Sequence[float] = LEVELS,
             train_share: float = TRAIN_SHARE) -> dict[str, Any]:
    """Train on the oldest 70% (stable time order), score the newest 30%.

    Coverage is the share of test rows with actual <= forecast; pinball loss is on
    log(actual/planned). Baselines: `raw_plan` (the plan as the forecast) and
    `global_multiplier` (the train-set quantile of actual/planned).

    Raises:
        ValueError: with too few rows to split.
    """
    ordered = sorted(rows, key=lambda r: r.time)  # sorted() is stable: ties keep file order
    n_train = int(len(ordered) * train_share)
    if n_train < 10 or len(ordered) - n_train < 1:
        raise ValueError(f"{len(ordered)} usable rows; at least 15 are needed for a backtest")
    samples = [Sample(math.log(r.actual / r.planned), r.planned, dict(r.segments)) for r in ordered]
    train, test = samples[:n_train], samples[n_train:]
    y_train = np.array([s.y for s in train])
    y_test = np.array([s.y for s in test])
    model = SegmentQuantileModel.fit(train, quantiles=sorted({*levels, 0.95}))
    preds = model.predict(test)
    out: dict[str, Any] = {"n_train": len(train), "n_test": len(test), "quantiles": {},
                           "model": {"version": model.version, "pseudo_count": model.penalty,
                                     "dimensions": {d: len(v) for d, v in model.effects().items()}}}
    for q in levels:
        global_q = float(np.quantile(y_train, q))
        out["quantiles"][str(q)] = {
            "learnloop": _scores(y_test, preds[q], q),
            "raw_plan": _scores(y_test, np.zeros_like(y_test), q),
            "global_multiplier": {**_scores(y_test, np.full_like(y_test, global_q), q),
                                  "multiplier": round(math.exp(global_q), 4)},
        }
    return out
