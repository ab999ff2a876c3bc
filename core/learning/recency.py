"""Recency weights, weighted quantiles, and a weighted sample of a history too big to hold.

Every finished item counts, the newer ones more: an item planned `age` days before the
newest one weighs 0.5 ** (age / half_life), never less than FLOOR (a process that changed
long ago still informs values seen nowhere else). The half-life is chosen on time-ordered
validation among HALF_LIVES (`model.py`); no decay at all is always one of the options.

A history bigger than a memory budget is thinned rather than cut at its newest items: each
row is kept with probability min(1, c w) for its weight w (c chosen so that about `budget`
rows are kept) and a kept row then weighs max(w, 1 / c). This is probability-proportional-to-
weight sampling: the weighted sample stands, without bias, for the whole weighted history,
and every row had its chance. Which rows are kept depends only on a stable key per row
(the item id), so consecutive runs keep the same ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

DAY = 86400.0
FLOOR = 0.05
HALF_LIVES: tuple[float | None, ...] = (None, 730.0, 365.0, 182.0)  # days; None: no decay
GOLDEN = 0.6180339887498949


def weights(when: FloatArray, ref: float, half_life: float | None,
            floor: float = FLOOR) -> FloatArray:
    """Recency weights of rows planned at `when` (epoch seconds) seen from `ref`: 1 for the
    newest, halving every `half_life` days, at least `floor` (all 1 without a half-life)."""
    if half_life is None:
        return np.ones(len(when))
    age = np.maximum(ref - when, 0.0) / DAY
    return np.asarray(np.maximum(np.power(0.5, age / half_life), floor))


def stable_uniform(keys: NDArray[np.int64]) -> FloatArray:
    """A number in [0, 1) per integer key, the same on every run (a Weyl sequence)."""
    return np.asarray(np.mod(keys.astype(np.float64) * GOLDEN, 1.0))


def thin(w: FloatArray, budget: int, keys: NDArray[np.int64] | None = None
         ) -> tuple[IntArray, FloatArray]:
    """A weighted sample of about `budget` rows standing for all of them (see the module).

    Args:
        w: every row's weight (positive).
        budget: how many rows to keep at most (about: the sample size is random, its
            expectation is `budget`).
        keys: a stable integer per row deciding which rows are kept (default: the position).

    Returns:
        (the indices kept, in their order; their weights)
    """
    n = len(w)
    if n <= budget:
        return np.arange(n), np.asarray(w, dtype=np.float64)
    c = _rate(w, budget)
    p = np.minimum(1.0, c * w)
    u = stable_uniform(np.arange(n, dtype=np.int64) if keys is None else keys)
    idx = np.flatnonzero(u < p)
    return idx, np.maximum(w[idx], 1.0 / c)


def _rate(w: FloatArray, budget: int) -> float:
    """c with sum(min(1, c w)) = budget (bisection on the sorted weights)."""
    lo, hi = 0.0, 1.0 / float(np.min(w))
    for _ in range(60):
        mid = (lo + hi) / 2
        if float(np.minimum(1.0, mid * w).sum()) > budget:
            hi = mid
        else:
            lo = mid
    return lo


def quantile(y: FloatArray, q: float, w: FloatArray | None = None) -> float:
    """The inverted-CDF q-quantile of y (weighted: the smallest y whose cumulative weight
    reaches q of the total)."""
    if w is None:
        return float(np.quantile(y, q, method="inverted_cdf"))
    order = np.argsort(y, kind="stable")
    cum = np.cumsum(w[order])
    pos = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return float(y[order][min(pos, len(y) - 1)])


def interpolated(y: FloatArray, levels: Sequence[float], w: FloatArray | None = None
                 ) -> FloatArray:
    """Quantiles of y at `levels` by linear interpolation (numpy's default; weighted, each
    sorted value sits at the middle of its weight, which is numpy's rule for equal weights)."""
    if w is None:
        return np.asarray(np.quantile(y, list(levels)), dtype=np.float64)
    order = np.argsort(y, kind="stable")
    table = group_interpolated(y[order], w[order], np.zeros(len(y), dtype=np.intp), 1, levels)
    return np.asarray(table[0])


def group_interpolated(ranked: FloatArray, w: FloatArray, codes: IntArray, n_values: int,
                       levels: Sequence[float]) -> FloatArray:
    """Per group, weighted linearly interpolated quantiles of values already sorted by
    (group, value): values x levels, NaN where a group has none.

    The i-th value of a group with cumulative weight C_i (its own w_i included) and total W
    sits at level (C_i - w_i / 2 - w_first / 2) / (W - w_first / 2 - w_last / 2): with equal
    weights, i / (n - 1), numpy's linear rule.
    """
    out = np.full((n_values, len(levels)), np.nan)
    if len(ranked) == 0:
        return out
    counts = np.bincount(codes, minlength=n_values)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    ends = starts + counts - 1
    cum = np.cumsum(w)
    before = np.r_[0.0, cum][starts]  # weight of the groups before each group
    g = codes
    first = w[starts[g]]
    last = w[ends[g]]
    total = cum[ends[g]] - before[g]
    span = total - first / 2 - last / 2
    pos = np.where(span > 0, (cum - before[g] - w / 2 - first / 2) / np.where(span > 0, span, 1.0),
                   0.0)
    key = 2.0 * g + np.clip(pos, 0.0, 1.0)  # groups apart, levels increasing inside each
    has = counts > 0
    gs = np.flatnonzero(has)
    for j, q in enumerate(levels):
        target = 2.0 * gs + q
        hi = np.searchsorted(key, target, side="left")
        hi = np.clip(hi, starts[gs], ends[gs])
        lo = np.clip(hi - 1, starts[gs], ends[gs])
        k_lo, k_hi = key[lo], key[hi]
        width = k_hi - k_lo
        frac = np.where(width > 0, (target - k_lo) / np.where(width > 0, width, 1.0), 0.0)
        frac = np.clip(frac, 0.0, 1.0)
        out[gs, j] = ranked[lo] + (ranked[hi] - ranked[lo]) * frac
    return out
