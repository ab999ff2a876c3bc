"""Segment quantile model: P50/P80/P90/P95 of a deviation, pooled across segment dimensions.

Each quantile is a linear quantile regression on one-hot segment values (every dimension the
data carries: project, type, team, assignee, ...) and a piecewise-linear function of the log of
the plan's size. An L1 penalty shrinks every segment effect toward zero, so thin and new
segments fall back to the pooled level and dimensions that carry no signal drop out. The
penalty is chosen on a time-ordered split of the training data (never on what is forecast),
and each quantile's level is then recalibrated on that held-out, most recent window.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from core.learning.quantreg import FloatArray, QuantileFit, fit_quantile, pinball

QUANTILES = (0.5, 0.8, 0.9, 0.95)
# L1 penalties as pseudo-counts: a segment needs more than about k/q items before its effect
# moves away from the pooled level at all (k is divided by n when fitting).
PSEUDO_COUNTS = (3.0, 6.0, 12.0, 25.0, 50.0)
MIN_SEGMENT_COUNT = 5
MAX_TRAIN = 20_000
MODEL_VERSION = "sqm-1"
OTHER = "\x00other"  # rare, unseen and missing values of a dimension


@dataclass(frozen=True)
class Sample:
    """One finished item, as the model sees it."""

    y: float  # the deviation: log(actual/planned) or slip in days
    size: float | None  # the plan's size (estimate, planned duration), None if unknown
    segments: Mapping[str, str]


@dataclass
class SegmentQuantileModel:
    """A fitted model; `predict` gives the quantiles of the deviation for new items."""

    dims: dict[str, list[str]] = field(default_factory=dict)
    knots: list[float] = field(default_factory=list)
    size_center: float = 0.0
    fits: dict[float, QuantileFit] = field(default_factory=dict)
    shifts: dict[float, float] = field(default_factory=dict)
    penalty: float = 0.0
    n_train: int = 0
    validation: dict[str, float] = field(default_factory=dict)
    version: str = MODEL_VERSION

    # ---- design -------------------------------------------------------------------------
    def _columns(self) -> list[tuple[str, str]]:
        cols = [("", "intercept"), ("", "size")]
        cols += [("", f"size>{k:.3g}") for k in self.knots]
        for dim, values in self.dims.items():
            cols += [(dim, v) for v in values]
        return cols

    def _penalties(self, k: float) -> FloatArray:
        lam = k / max(self.n_train, 1)
        pen = [0.0, 0.2 * lam] + [0.5 * lam] * len(self.knots)
        pen += [lam] * sum(len(v) for v in self.dims.values())
        return np.asarray(pen, dtype=np.float64)

    def design(self, samples: Sequence[Sample]) -> sparse.csr_matrix:
        """The design matrix of `samples`.

        Every dimension has an OTHER column for values too rare to stand alone, unseen values
        and missing ones; so each row activates exactly one column per dimension and the
        intercept carries the common level.
        """
        index = {}
        offset = 2 + len(self.knots)
        for dim, values in self.dims.items():
            for v in values:
                index[(dim, v)] = offset
                offset += 1
        rows, cols, vals = [], [], []
        for r, s in enumerate(samples):
            ls = math.log(s.size) - self.size_center if s.size and s.size > 0 else 0.0
            entries = [(0, 1.0), (1, ls)]
            entries += [(2 + j, max(ls - k, 0.0)) for j, k in enumerate(self.knots)]
            for dim in self.dims:
                value = s.segments.get(dim)
                col = index.get((dim, str(value))) if value is not None else None
                entries.append((col if col is not None else index[(dim, OTHER)], 1.0))
            for c, val in entries:
                if val != 0.0:
                    rows.append(r)
                    cols.append(c)
                    vals.append(val)
        return sparse.csr_matrix((vals, (rows, cols)), shape=(len(samples), offset))

    # ---- fitting ------------------------------------------------------------------------
    @classmethod
    def fit(cls, samples: Sequence[Sample], quantiles: Sequence[float] = QUANTILES,
            penalties: Sequence[float] = PSEUDO_COUNTS) -> SegmentQuantileModel:
        """Fit on `samples`, which must be in time order (oldest first).

        The last quarter is held out to choose the penalty and measure calibration; the final
        fit uses every sample (the most recent MAX_TRAIN when there are more).
        """
        samples = list(samples)[-MAX_TRAIN:]
        if len(samples) < 10:
            raise ValueError("at least 10 finished items are needed to learn from")
        cut = max(int(len(samples) * 0.75), len(samples) - 2000)
        early, late = samples[:cut], samples[cut:]
        y_late = np.array([s.y for s in late])
        best: tuple[float, float, SegmentQuantileModel] | None = None
        for k in penalties:
            trial = cls._fit_at(early, [0.8], k)
            loss = pinball(y_late, trial.fits[0.8].predict(trial.design(late)), 0.8)
            if best is None or loss < best[0]:
                best = (loss, k, trial)
        assert best is not None
        loss, lam, held = best
        x_late = held.design(late)
        shifts: dict[float, float] = {}
        validation = {"n_holdout": float(len(late)), "pinball_p80": loss}
        for q in quantiles:
            fit_q = held.fits.get(q) or fit_quantile(
                held.design(early), np.array([s.y for s in early]), q, held._penalties(lam)
            )
            resid = y_late - fit_q.predict(x_late)
            coverage = float(np.mean(resid <= 1e-12))
            validation[f"coverage_p{round(q * 100)}"] = coverage
            se = math.sqrt(q * (1 - q) / len(late))
            # Shift only when the held-out coverage is clearly off: drift, not noise.
            shifts[q] = float(np.quantile(resid, q)) if abs(coverage - q) > 2 * se else 0.0
        model = cls._fit_at(samples, quantiles, lam)
        model.shifts, model.validation = shifts, validation
        return model

    @classmethod
    def _fit_at(cls, samples: Sequence[Sample], quantiles: Sequence[float],
                lam: float) -> SegmentQuantileModel:
        counts: dict[str, Counter[str]] = {}
        for s in samples:
            for dim, value in s.segments.items():
                counts.setdefault(dim, Counter())[str(value)] += 1
        dims = {
            dim: [*sorted(v for v, c in counter.items() if c >= MIN_SEGMENT_COUNT), OTHER]
            for dim, counter in sorted(counts.items())
        }
        sizes = np.log([s.size for s in samples if s.size and s.size > 0])
        center = float(np.median(sizes)) if len(sizes) else 0.0
        knots: list[float] = []
        if len(sizes) >= 40:
            knots = sorted({round(float(k), 6) for k in np.quantile(sizes - center, [0.25, 0.5, 0.75])})
        model = cls(dims=dims, knots=knots, size_center=center, penalty=lam, n_train=len(samples))
        x = model.design(samples)
        y = np.array([s.y for s in samples])
        for q in quantiles:
            model.fits[q] = fit_quantile(x, y, q, model._penalties(lam))
        return model

    # ---- prediction ---------------------------------------------------------------------
    def predict(self, samples: Sequence[Sample]) -> dict[float, FloatArray]:
        """Quantiles of the deviation per sample, non-crossing (sorted across levels)."""
        x = self.design(samples)
        levels = sorted(self.fits)
        stacked = np.vstack([self.fits[q].predict(x) + self.shifts.get(q, 0.0) for q in levels])
        stacked.sort(axis=0)
        return {q: stacked[i] for i, q in enumerate(levels)}

    def effects(self, q: float = 0.8) -> dict[str, dict[str, float]]:
        """Non-zero segment effects at level q, per dimension (what the model found matters)."""
        out: dict[str, dict[str, float]] = {}
        coef = self.fits[q].coef
        for i, (dim, value) in enumerate(self._columns()):
            if dim and value != OTHER and abs(coef[i]) > 1e-9:
                out.setdefault(dim, {})[value] = float(coef[i])
        return out
