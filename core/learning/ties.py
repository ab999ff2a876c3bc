"""Ties as a point mass: the share of items that land exactly on plan, and the quantiles of
the mixture of that point mass with the continuous deviation of the other items.

Many teams log exactly the estimate. A quantile model fitted through such a spike puts P50 a
little below or above the plan and calls both "covered"; the mixture instead says where the
plan itself is the answer: with tie share p and the continuous part's CDF G, the mixture's
CDF is (1 - p) G(y) + p [y >= 0], so every level between (1 - p) G(0) and that plus p is
exactly the plan, the levels below come from G below the plan and the levels above from G
above it. When most items land on plan, P50 is the plan and no quantile above it falls
below the plan.

The share is shrunk per value of one column (empirical-Bayes beta-binomial, as `rates.py`),
the column (or none) chosen on time-ordered validation by Brier score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from core.learning.additive import FloatArray, IntArray
from core.learning.rates import prior_strength

TIE_EPS = 1e-9  # |log(actual/plan)| (or days) this small is "exactly as planned"
POOLED = "no column (one share for all)"


def is_tie(y: FloatArray) -> NDArray[np.bool_]:
    """Which deviations are exactly on plan."""
    return np.asarray(np.abs(y) <= TIE_EPS)


@dataclass
class TieShare:
    """The share of items landing exactly on plan, per value of one column (or pooled)."""

    name: str
    column: int | None
    p0: float
    table: FloatArray
    strength: float
    n: int

    def predict(self, codes: Sequence[IntArray]) -> FloatArray:
        """Each item's chance of landing exactly on plan."""
        n = len(codes[0]) if codes else 0
        if self.column is None:
            return np.full(n, self.p0)
        return np.asarray(self.table[codes[self.column]])


def fit_share(tie: NDArray[np.bool_], codes: Sequence[IntArray], sizes: Sequence[int],
              column: int | None, name: str = POOLED) -> TieShare:
    """The tie share pooled (`column` None) or per value of codes[column], each value's share
    shrunk toward the pooled one by a beta prior of fitted strength."""
    n, hits = len(tie), float(np.sum(tie))
    p0 = (hits + 0.5) / (n + 1)  # never exactly 0 or 1
    if column is None:
        return TieShare(name, None, p0, np.asarray([p0]), 0.0, n)
    h = np.bincount(codes[column], weights=tie.astype(np.float64), minlength=sizes[column])
    m = np.bincount(codes[column], minlength=sizes[column]).astype(np.float64)
    seen = m > 0
    strength = prior_strength(h[seen], m[seen], p0) if int(seen.sum()) >= 2 else float("inf")
    if not np.isfinite(strength):
        table = np.full(len(m), p0)
    else:
        table = (h + strength * p0) / (m + strength)
    return TieShare(name, column, p0, table, strength, n)


def choose_share(tie: NDArray[np.bool_], codes: Sequence[IntArray], sizes: Sequence[int],
                 names: Sequence[str], tie_val: NDArray[np.bool_],
                 codes_val: Sequence[IntArray]) -> tuple[TieShare, dict[str, float]]:
    """The tie-share model (pooled or by one column) with the best validation Brier score.

    Returns:
        (the chosen model fitted on `tie`, the validation Brier score of each column tried)
    """
    target = tie_val.astype(np.float64)
    scores: dict[str, float] = {}
    best: tuple[float, TieShare] | None = None
    for column in [None, *range(len(codes))]:
        name = POOLED if column is None else names[column]
        model = fit_share(tie, codes, sizes, column, name)
        score = float(np.mean((model.predict(codes_val) - target) ** 2)) if len(target) else 0.0
        scores[name] = score
        if best is None or score < best[0] - 1e-12:
            best = (score, model)
    assert best is not None
    return best[1], scores


def _extend(curve: FloatArray, levels: Sequence[float]) -> tuple[FloatArray, FloatArray]:
    """The curve (items x levels) extended linearly to levels 0 and 1."""
    ps = np.asarray(levels, dtype=np.float64)
    xs = np.maximum.accumulate(curve, axis=1)
    if len(ps) > 1:
        low_slope = (xs[:, 1] - xs[:, 0]) / (ps[1] - ps[0])
        high_slope = (xs[:, -1] - xs[:, -2]) / (ps[-1] - ps[-2])
    else:
        low_slope = high_slope = np.zeros(len(xs))
    lo = xs[:, 0] - low_slope * ps[0]
    hi = xs[:, -1] + high_slope * (1 - ps[-1])
    return np.column_stack([lo, xs, hi]), np.r_[0.0, ps, 1.0]


def _inverse(xs: FloatArray, ps: FloatArray, p: FloatArray) -> FloatArray:
    """Row-wise value of each row's curve (xs at the common levels ps) at level p[row]."""
    p = np.clip(p, 0.0, 1.0)
    idx = np.clip(np.searchsorted(ps, p, side="right") - 1, 0, len(ps) - 2)
    rows = np.arange(len(xs))
    x0, x1 = xs[rows, idx], xs[rows, idx + 1]
    p0, p1 = ps[idx], ps[idx + 1]
    return np.asarray(x0 + (x1 - x0) * (p - p0) / (p1 - p0))


def _cdf_at_zero(xs: FloatArray, ps: FloatArray) -> FloatArray:
    """Row-wise level at which each row's curve crosses 0."""
    k = np.sum(xs < 0, axis=1)
    rows = np.arange(len(xs))
    inner = (k > 0) & (k < xs.shape[1])
    out = np.where(k == 0, 0.0, 1.0)
    i = k[inner]
    x0, x1 = xs[rows[inner], i - 1], xs[rows[inner], i]
    width = np.where(x1 > x0, x1 - x0, 1.0)
    out[inner] = ps[i - 1] + (ps[i] - ps[i - 1]) * (0.0 - x0) / width
    return out


def band(share: FloatArray, curve: FloatArray, levels: Sequence[float]
         ) -> tuple[FloatArray, FloatArray]:
    """Per item, the range of levels (low, high] at which the mixture's quantile is exactly
    the plan."""
    xs, ps = _extend(curve, levels)
    low = (1 - share) * _cdf_at_zero(xs, ps)
    return low, low + share


def mixture(share: FloatArray, curve: FloatArray, levels: Sequence[float],
            out_levels: Sequence[float]) -> FloatArray:
    """Quantiles at `out_levels` of the mixture: a point mass `share` at 0 (as planned) and
    the continuous deviation whose quantiles at `levels` are `curve` (items x levels).

    Returns:
        items x out_levels
    """
    xs, ps = _extend(curve, levels)
    low = (1 - share) * _cdf_at_zero(xs, ps)
    high = low + share
    rest = np.maximum(1 - share, 1e-12)
    out = np.empty((len(curve), len(out_levels)))
    for j, q in enumerate(out_levels):
        below = np.minimum(_inverse(xs, ps, q / rest), 0.0)
        above = np.maximum(_inverse(xs, ps, (q - share) / rest), 0.0)
        out[:, j] = np.where(q <= low, below, np.where(q <= high, 0.0, above))
    return out
