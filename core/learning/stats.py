"""Small statistics used by findings: BH control, rank tests, distribution-free intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH-adjusted q-values, in the input order (monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(adjusted, 1.0)
    return [float(v) for v in q]


def rank_test(inside: Sequence[float], outside: Sequence[float]) -> float:
    """Two-sided Mann-Whitney p-value that `inside` is shifted against `outside` (ties safe)."""
    if len(inside) < 2 or len(outside) < 2:
        return 1.0
    return float(stats.mannwhitneyu(inside, outside, alternative="two-sided").pvalue)


def median_interval(values: Sequence[float], level: float = 0.9) -> tuple[float, float]:
    """A distribution-free confidence interval for the median (binomial order statistics)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n == 0:
        return (math.nan, math.nan)
    lo = int(stats.binom.ppf((1 - level) / 2, n, 0.5))
    hi = int(stats.binom.isf((1 - level) / 2, n, 0.5))
    return float(x[max(lo - 1, 0)]), float(x[min(hi, n - 1)])


def spread(values: Sequence[float], level: float = 0.8) -> tuple[float, float]:
    """The central `level` range of the values (where that share of items fell)."""
    x = np.asarray(values, dtype=np.float64)
    tail = (1 - level) / 2
    return float(np.quantile(x, tail)), float(np.quantile(x, 1 - tail))
