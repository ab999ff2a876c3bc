"""The learner's candidate quantile curves: the plan, one global multiplier, one shrunk
multiplier per value of one column, and the additive model over every column.

A curve gives each item its quantiles of the deviation at a fixed tuple of levels (an items x
levels array). The simple curves are what a careful analyst would do by hand; the additive
model pools every column at once (`additive.py`). Which of them forecasts is decided on
time-ordered validation (`select.py`), never by their names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from core.learning.additive import FloatArray, IntArray, fit_additive

COLUMN_SHRINK = 20.0  # pseudo-count pulling a column value's quantile toward the global one
PSEUDO_COUNTS = (3.0, 6.0, 12.0, 25.0, 50.0)
SIZE_PSEUDO_COUNTS = (1.0, 3.0, 6.0, 12.0, 25.0, 50.0)


def pinball(y: FloatArray, pred: FloatArray, q: float) -> float:
    """Mean pinball (quantile) loss of `pred` at level q."""
    diff = y - pred
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff))) if len(y) else float("nan")


def group_quantiles(y: FloatArray, codes: IntArray, n_values: int, levels: Sequence[float]
                    ) -> tuple[FloatArray, IntArray]:
    """Per value of a column, the quantiles of y at `levels` (linear interpolation, as
    numpy's default) and the count: (values x levels, counts); NaN where a value has none."""
    counts = np.bincount(codes, minlength=n_values)
    out = np.full((n_values, len(levels)), np.nan)
    if len(y) == 0:
        return out, counts
    order = np.lexsort((y, codes))
    ranked = y[order]
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    has = counts > 0
    for j, q in enumerate(levels):
        h = (counts[has] - 1) * q
        lo, hi = np.floor(h).astype(np.intp), np.ceil(h).astype(np.intp)
        a, b = ranked[starts[has] + lo], ranked[starts[has] + hi]
        out[has, j] = a + (b - a) * (h - lo)
    return out, counts


@dataclass
class ColumnCurve:
    """Shrunk quantiles per value of one column (`column` None: one global curve; `table`
    all zeros and no column: the plan itself)."""

    name: str
    levels: tuple[float, ...]
    column: int | None
    table: FloatArray
    counts: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))

    def predict(self, codes: Sequence[IntArray]) -> FloatArray:
        """Items x levels."""
        n = len(codes[0]) if codes else 0
        if self.column is None:
            return np.tile(self.table[0], (n, 1))
        return np.asarray(self.table[codes[self.column]])

    def refit(self, y: FloatArray, codes: Sequence[IntArray], sizes: Sequence[int]
              ) -> ColumnCurve:
        """The same curve fitted on other data."""
        if self.name == PLAN:
            return self
        return fit_column(self.name, y, codes, sizes, self.levels, self.column)


PLAN = "the plan itself"


def plan_curve(levels: Sequence[float]) -> ColumnCurve:
    """The plan as the forecast at every level (a deviation of 0)."""
    return ColumnCurve(PLAN, tuple(levels), None, np.zeros((1, len(levels))))


def fit_column(name: str, y: FloatArray, codes: Sequence[IntArray], sizes: Sequence[int],
               levels: Sequence[float], column: int | None,
               shrink: float = COLUMN_SHRINK) -> ColumnCurve:
    """One global curve (`column` None), or per value of codes[column] the value's quantiles
    shrunk toward the global ones: (n q_value + shrink q_global) / (n + shrink)."""
    levels = tuple(levels)
    glob = np.quantile(y, levels) if len(y) else np.zeros(len(levels))
    glob = np.maximum.accumulate(np.asarray(glob, dtype=np.float64))
    if column is None:
        return ColumnCurve(name, levels, None, glob[None, :])
    per, counts = group_quantiles(y, codes[column], sizes[column], levels)
    n = counts[:, None].astype(np.float64)
    table = np.where(n > 0, (n * np.nan_to_num(per) + shrink * glob) / (n + shrink), glob)
    return ColumnCurve(name, levels, column, np.maximum.accumulate(table, axis=1), counts)


@dataclass
class AdditiveCurve:
    """The additive quantile model at each level, with its penalties (segments, plan size)."""

    name: str
    levels: tuple[float, ...]
    penalties: tuple[float, ...]  # one per dimension
    fits: dict[float, tuple[float, list[FloatArray]]] = field(default_factory=dict)

    def predict(self, codes: Sequence[IntArray]) -> FloatArray:
        """Items x levels, non-crossing."""
        n = len(codes[0]) if codes else 0
        out = np.empty((n, len(self.levels)))
        for j, q in enumerate(self.levels):
            intercept, effects = self.fits[q]
            col = np.full(n, intercept)
            for eff, c in zip(effects, codes, strict=True):
                col += eff[c]
            out[:, j] = col
        return np.maximum.accumulate(out, axis=1)

    def refit(self, y: FloatArray, codes: Sequence[IntArray], sizes: Sequence[int]
              ) -> AdditiveCurve:
        """The same model (same penalties) fitted on other data, warm-started from this one."""
        return fit_additive_curve(self.name, y, codes, sizes, self.levels, self.penalties,
                                  warm=self)


def fit_additive_curve(name: str, y: FloatArray, codes: Sequence[IntArray],
                       sizes: Sequence[int], levels: Sequence[float],
                       penalties: Sequence[float],
                       warm: AdditiveCurve | None = None) -> AdditiveCurve:
    """The additive model at every level of `levels` with per-dimension `penalties`."""
    curve = AdditiveCurve(name, tuple(levels), tuple(penalties))
    for q in curve.levels:
        # Warm starts only from the same level: across levels the fit stalls elsewhere.
        init = warm.fits.get(q) if warm is not None else None
        curve.fits[q] = fit_additive(y, list(codes), list(sizes), q, list(penalties), init=init)
    return curve


def choose_penalties(y: FloatArray, codes: Sequence[IntArray], sizes: Sequence[int],
                     y_val: FloatArray, codes_val: Sequence[IntArray], size_dim: int | None,
                     q: float = 0.8) -> tuple[tuple[float, ...], dict[str, float]]:
    """The additive model's penalties, chosen by pinball at level q on validation data: one
    shared by the segment columns, then one of the plan size's own (so that many irrelevant
    columns, which push the shared penalty up, cannot shrink a real size effect away).

    Returns:
        (one penalty per dimension, the validation pinball of each penalty tried)
    """
    dims = len(codes)

    def per_dim(k_seg: float, k_size: float) -> list[float]:
        return [k_size if d == size_dim else k_seg for d in range(dims)]

    tried: dict[str, float] = {}
    best: tuple[float, float, float] | None = None
    warm: tuple[float, list[FloatArray]] | None = None
    for k in PSEUDO_COUNTS:
        warm = fit_additive(y, list(codes), list(sizes), q, per_dim(k, k), init=warm)
        loss = pinball(y_val, _at(warm, codes_val), q)
        tried[f"{k:g}"] = loss
        if best is None or loss < best[0] - 1e-12:
            best = (loss, k, k)
    assert best is not None
    if size_dim is not None:
        k_seg = best[1]
        start = fit_additive(y, list(codes), list(sizes), q, per_dim(k_seg, best[2]))
        for k_size in SIZE_PSEUDO_COUNTS:
            if k_size == best[2]:
                continue
            fit = fit_additive(y, list(codes), list(sizes), q, per_dim(k_seg, k_size),
                               init=start)
            loss = pinball(y_val, _at(fit, codes_val), q)
            tried[f"{k_seg:g}, plan size {k_size:g}"] = loss
            if loss < best[0] - 1e-12:
                best = (loss, k_seg, k_size)
    return tuple(per_dim(best[1], best[2])), tried


def _at(fit: tuple[float, list[FloatArray]], codes: Sequence[IntArray]) -> FloatArray:
    intercept, effects = fit
    out = np.full(len(codes[0]) if codes else 0, intercept)
    for eff, c in zip(effects, codes, strict=True):
        out += eff[c]
    return out
